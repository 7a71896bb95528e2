"""Cleaning up after a service that died without shutting its pool down (SIGKILL, a crash).

Its kernels died with it (bwrap runs with a parent-death signal), but its session tmpfs
mounts, cgroups and directories stay. Each pool writes ``owner`` (pid and start time) in its
root; :func:`sweep_stale_roots` reclaims the roots whose owner is gone.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from .cgroups import Cgroup
from .sandbox import unmount
from .uids import UidAllocator, kill_uid

__all__ = ["PREFIX", "write_owner", "sweep_stale_roots"]

PREFIX = "qwen-ci-"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_owner(root: str) -> None:
    """Record this process as the owner of ``root``."""
    pid = os.getpid()
    with open(os.path.join(root, "owner"), "x") as f:
        f.write(f"{pid} {_start_time(pid)}\n")


def _owner_alive(root: str) -> bool | None:
    """True/False for a root with an owner file; None for a directory that is not a pool's."""
    try:
        with open(os.path.join(root, "owner")) as f:
            pid, start = f.read().split()
    except (OSError, ValueError):
        return None
    return _start_time(int(pid)) == start


def sweep_stale_roots(uids: UidAllocator | None, base: str | None = None) -> list[str]:
    """Unmount, kill and remove what dead pools left under ``base``; return the roots."""
    base = base or tempfile.gettempdir()
    swept = []
    for name in os.listdir(base):
        root = os.path.join(base, name)
        if not name.startswith(PREFIX):
            continue
        st = os.lstat(root)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if _owner_alive(root) is not False:
            continue
        busy = False
        for entry in os.listdir(root):
            if not (entry.startswith("s") and entry[1:].isdigit()):
                continue
            uid = int(entry[1:])
            if uids is None or not uids.try_hold(uid):
                busy = True  # its uid is in use by a live service: not ours to touch
                continue
            try:
                kill_uid(uid)
                unmount(os.path.join(root, entry))
                cg = Cgroup.existing(f"u{uid}")
                if cg is not None:
                    cg.kill()
                    cg.remove()
            finally:
                uids.release(uid)
        if not busy:
            shutil.rmtree(root, ignore_errors=True)
            swept.append(root)
    return swept
