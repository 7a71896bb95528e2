"""The stdio server's process: how it is launched, its stderr, whether it still runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

from .config import StdioServer
from .supervisor import PID_MARK

#: seconds the supervisor (and close) give a server's process group between SIGTERM and SIGKILL
GRACE = 2.0
#: the program run as each stdio server's direct child on POSIX, by path (it imports nothing
#: of the package): it leads the server's process group and stops all of it on close, when
#: the server exits and when this process dies (see its docstring)
SUPERVISOR = Path(__file__).with_name("supervisor.py")


def launch_command(cfg: StdioServer) -> tuple[str, list[str]]:
    """The command and arguments that start the server (under the supervisor on POSIX);
    FileNotFoundError when the command is not found."""
    found = which(cfg)
    if found is None:
        raise FileNotFoundError(f"command {cfg.command!r} not found")
    if os.name != "posix" or not os.path.exists(sys.executable):
        return found, list(cfg.args)
    script = ["-I", "-S", str(SUPERVISOR), str(os.getpid()), str(GRACE)]
    return sys.executable, [*script, found, *cfg.args]


def which(cfg: StdioServer) -> str | None:
    cmd = cfg.command
    if os.sep in cmd or (os.altsep and os.altsep in cmd):
        path = Path(cmd) if os.path.isabs(cmd) else Path(cfg.cwd or ".") / cmd
        return str(path.absolute()) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(cmd, path=cfg.env.get("PATH") or os.environ.get("PATH"))


class StderrTail:
    """A stdio server's stderr, read on the loop without a thread: keeps the last 4 KiB;
    the supervisor's first line gives the server's pid and its process group's."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd, self.buf = fd, bytearray()
        self.pid: int | None = None
        self.pgid: int | None = None
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
            self.pid, self.pgid = map(int, line[len(PID_MARK) :].split())
        self._first = False
        self.buf += data
        del self.buf[:-4096]

    def drain(self) -> None:
        """Read what is in the pipe now (a server that just died wrote its last words)."""
        with contextlib.suppress(OSError):
            while self.fd is not None and (data := os.read(self.fd, 65536)):
                self._keep(data)

    def tail(self) -> str:
        """The last lines of stderr (about 800 characters), for the host's log."""
        kept: list[str] = []
        for line in reversed(self.buf.decode("utf-8", "replace").splitlines()):
            if line.strip():
                kept.insert(0, line.rstrip()[-800:])
            if sum(map(len, kept)) > 800:
                kept = kept[1:] if len(kept) > 1 else kept
                break
        return "\n".join(kept)

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


def group_alive(pgid: int | None) -> bool:
    """Whether the process group ``pgid`` has a live member (zombies, which only wait to be
    reaped, do not count where /proc tells them apart)."""
    if pgid is None:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    return True
    return not os.path.isdir("/proc/self")  # no /proc: the signal said it is there


def kill_group(pgid: int | None, sig: int = signal.SIGKILL) -> None:
    if pgid is not None and pgid > 1:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)


async def stop_group(pgid: int | None, grace: float = GRACE) -> None:
    """SIGTERM the process group, then SIGKILL what is left of it after ``grace`` s."""
    if not group_alive(pgid):
        return
    kill_group(pgid, signal.SIGTERM)
    for _ in range(int(grace / 0.02)):
        await asyncio.sleep(0.02)
        if not group_alive(pgid):
            return
    kill_group(pgid, signal.SIGKILL)
