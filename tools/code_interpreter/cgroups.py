"""Per-session cgroups for memory, process count and CPU: v1 (one tree per controller) or v2.

Used where the cgroup filesystem is writable (root on the host, or a delegated subtree);
otherwise the sandbox relies on rlimits alone. ``QWEN_AGENT_CGROUP_ROOT`` overrides where
the cgroup filesystem is looked for (``/sys/fs/cgroup``).
"""

from __future__ import annotations

import os
import signal
import time

from .config import SandboxConfig

__all__ = ["Cgroup"]

_PARENT = "qwen-agent"
_V1 = ("memory", "pids", "cpu")


class Cgroup:
    """The cgroup(s) of one session; ``procs_files`` are written with a pid to enter."""

    def __init__(self, version: int, dirs: dict[str, str]) -> None:
        self.version = version
        self.dirs = dirs  # controller (or "unified") -> directory

    @property
    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self.dirs.values()]

    @classmethod
    def create(cls, name: str, config: SandboxConfig) -> Cgroup | None:
        """Make (or reuse) the session's cgroups with ``config``'s limits; None if unusable."""
        root = os.environ.get("QWEN_AGENT_CGROUP_ROOT", "/sys/fs/cgroup")
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            return _create_v2(root, name, config)
        return _create_v1(root, name, config)

    @classmethod
    def existing(cls, name: str) -> Cgroup | None:
        """The cgroup(s) called ``name`` made earlier (by a service that crashed), if any."""
        root = os.environ.get("QWEN_AGENT_CGROUP_ROOT", "/sys/fs/cgroup")
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            d = os.path.join(root, _PARENT, name)
            return Cgroup(2, {"unified": d}) if os.path.isdir(d) else None
        dirs = {c: os.path.join(root, c, _PARENT, name) for c in _V1}
        dirs = {c: d for c, d in dirs.items() if os.path.isdir(d)}
        return Cgroup(1, dirs) if dirs else None

    # -- state ----------------------------------------------------------------------------
    def pids(self) -> list[int]:
        out: set[int] = set()
        for f in self.procs_files:
            try:
                with open(f) as fh:
                    out.update(int(x) for x in fh.read().split())
            except OSError:
                continue
        return sorted(out)

    def oom_kills(self) -> int:
        """How many processes the kernel killed for lack of memory in this cgroup."""
        d = self.dirs.get("unified" if self.version == 2 else "memory")
        if d is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            with open(os.path.join(d, name)) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            return 0
        return 0

    # -- teardown -------------------------------------------------------------------------
    def kill(self, rounds: int = 50) -> None:
        """SIGKILL every process in the cgroup."""
        if self.version == 2:
            _try_write(os.path.join(self.dirs["unified"], "cgroup.kill"), "1")
        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self, rounds: int = 50) -> None:
        """Remove the (emptied) cgroup directories."""
        for d in self.dirs.values():
            for _ in range(rounds):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy while the last process is being reaped
                    time.sleep(0.02)


def _create_v1(root: str, name: str, config: SandboxConfig) -> Cgroup | None:
    dirs: dict[str, str] = {}
    for ctrl in _V1:
        base = os.path.join(root, ctrl)
        if not os.path.isdir(base):
            continue
        d = _make(os.path.join(base, _PARENT), os.path.join(base, _PARENT, name))
        if d is not None:
            dirs[ctrl] = d
    if "memory" in dirs:
        mem = str(config.memory_mb * 2**20)
        if not _try_write(os.path.join(dirs["memory"], "memory.limit_in_bytes"), mem):
            del dirs["memory"]
        else:  # no swap beyond the limit, where swap accounting is on
            _try_write(os.path.join(dirs["memory"], "memory.memsw.limit_in_bytes"), mem)
    if "pids" in dirs and not _try_write(
        os.path.join(dirs["pids"], "pids.max"), str(config.max_processes)
    ):
        del dirs["pids"]
    if "cpu" in dirs:
        quota = int(config.cpus * 100_000) if config.cpus else -1
        _try_write(os.path.join(dirs["cpu"], "cpu.cfs_period_us"), "100000")
        if not _try_write(os.path.join(dirs["cpu"], "cpu.cfs_quota_us"), str(quota)):
            del dirs["cpu"]
    return Cgroup(1, dirs) if dirs else None


def _create_v2(root: str, name: str, config: SandboxConfig) -> Cgroup | None:
    parent = os.path.join(root, _PARENT)
    for ctrl in _V1:  # one at a time: a controller the host lacks must not block the others
        _try_write(os.path.join(root, "cgroup.subtree_control"), f"+{ctrl}")
    d = _make(parent, os.path.join(parent, name))
    if d is None:
        return None
    for ctrl in _V1:
        _try_write(os.path.join(parent, "cgroup.subtree_control"), f"+{ctrl}")
    ok = _try_write(os.path.join(d, "memory.max"), str(config.memory_mb * 2**20))
    _try_write(os.path.join(d, "memory.swap.max"), "0")
    ok = _try_write(os.path.join(d, "pids.max"), str(config.max_processes)) or ok
    if config.cpus:
        _try_write(os.path.join(d, "cpu.max"), f"{int(config.cpus * 100_000)} 100000")
    if not ok:  # no controller could be enabled: the cgroup would limit nothing
        os.rmdir(d)
        return None
    return Cgroup(2, {"unified": d})


def _make(parent: str, leaf: str) -> str | None:
    for d in (parent, leaf):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
        except OSError:
            return None
    return leaf


def _try_write(path: str, value: str) -> bool:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError:
        return False
    return True
