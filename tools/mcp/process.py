"""The stdio server's process: how it is launched, its stderr, whether it still runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from pathlib import Path

from .config import StdioServer

PID_MARK = b"\0qwen-agent-mcp-pid "
# Runs before the server (exec keeps the pid): dies with this process (Linux), tells its pid.
LAUNCHER = (
    "import os,sys\n"
    "try:\n"
    " import ctypes,signal;ctypes.CDLL(None).prctl(1,signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "except Exception:pass\n"  # not Linux: the atexit stop still runs
    "if os.getppid()!=int(sys.argv[1]):os._exit(1)\n"  # the parent died before prctl
    "os.write(2,b'\\0qwen-agent-mcp-pid %d\\n'%os.getpid())\n"
    "os.execvp(sys.argv[2],sys.argv[2:])\n"
)


def launch_command(cfg: StdioServer) -> tuple[str, list[str]]:
    """The command and arguments that start the server (through the launcher on POSIX);
    FileNotFoundError when the command is not found."""
    found = which(cfg)
    if found is None:
        raise FileNotFoundError(f"command {cfg.command!r} not found")
    if os.name != "posix" or not os.path.exists(sys.executable):
        return found, list(cfg.args)
    return sys.executable, ["-I", "-S", "-c", LAUNCHER, str(os.getpid()), found, *cfg.args]


def which(cfg: StdioServer) -> str | None:
    cmd = cfg.command
    if os.sep in cmd or (os.altsep and os.altsep in cmd):
        path = Path(cmd) if os.path.isabs(cmd) else Path(cfg.cwd or ".") / cmd
        return str(path.absolute()) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(cmd, path=cfg.env.get("PATH") or os.environ.get("PATH"))


class StderrTail:
    """A stdio server's stderr, read on the loop without a thread: keeps the last 4 KiB;
    the launcher's first line gives the server's pid."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd, self.pid, self.buf = fd, None, bytearray()
        self._first = True
        if fd is not None:
            os.set_blocking(fd, False)
            asyncio.get_running_loop().add_reader(fd, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 65536) if self.fd is not None else b""
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        if self._first and data.startswith(PID_MARK):
            line, _, data = data.partition(b"\n")
            self.pid = int(line[len(PID_MARK) :])
        self._first = False
        self.buf += data
        del self.buf[:-4096]

    def drain(self) -> None:
        """Read what is in the pipe now (a server that just died wrote its last words)."""
        with contextlib.suppress(OSError):
            while self.fd is not None and (data := os.read(self.fd, 65536)):
                self._keep(data)

    def tail(self) -> str:
        kept: list[str] = []
        for line in reversed(self.buf.decode("utf-8", "replace").splitlines()):
            if line.strip():
                kept.insert(0, line.rstrip()[-800:])
            if sum(map(len, kept)) > 800:
                kept = kept[1:] if len(kept) > 1 else kept
                break
        return "; its stderr ends with:\n" + "\n".join(kept) if kept else ""

    def close(self) -> None:
        if self.fd is not None:
            self.drain()
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


async def exited(pid: int | None, wait: float = 0.5) -> bool:
    """Whether the process ``pid`` ends within ``wait`` seconds."""
    for _ in range(int(wait / 0.02)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.02)
    return not alive(pid)


def parent_of(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return None
