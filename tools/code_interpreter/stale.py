"""Cleaning up after a service that died without shutting its pool down (SIGKILL, a crash).

Its kernels died with it (bwrap runs with a parent-death signal), but its session tmpfs
mounts, cgroups and directories stay. Each pool writes ``owner`` (pid and start time) in its
root; :func:`sweep_stale_roots` reclaims the roots whose owner is gone, the roots of this
process that no live pool holds, and roots that lost their owner file but still have
mounts (a removal that could not finish). :func:`remove_root` unmounts before it removes.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from .cgroups import Cgroup
from .sandbox import unmount
from .uids import UidAllocator, kill_uid

__all__ = ["PREFIX", "write_owner", "forget_root", "remove_root", "sweep_stale_roots"]

PREFIX = "qwen-ci-"
#: roots of the live pools of this process
_LIVE_ROOTS: set[str] = set()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def write_owner(root: str) -> None:
    """Record this process as the owner of ``root`` (a live pool's, until forget_root)."""
    pid = os.getpid()
    _LIVE_ROOTS.add(os.path.realpath(root))
    with open(os.path.join(root, "owner"), "x") as f:
        f.write(f"{pid} {_start_time(pid)}\n")


def forget_root(root: str) -> None:
    _LIVE_ROOTS.discard(os.path.realpath(root))


def mounts_under(path: str) -> list[str]:
    """Mount points at or under ``path``, deepest first."""
    real = os.path.realpath(path).rstrip("/")
    try:
        with open("/proc/self/mounts") as f:
            points = [line.split()[1].replace("\\040", " ") for line in f if line.strip()]
    except OSError:
        return []
    inside = [p for p in points if p == real or p.startswith(real + "/")]
    return sorted(set(inside), key=len, reverse=True)


def remove_root(root: str) -> None:
    """Unmount whatever is mounted under ``root``, then remove it."""
    forget_root(root)
    for point in mounts_under(root):
        try:
            unmount(point)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def _owner_alive(root: str) -> bool | None:
    """True/False for a root with an owner file; None for a directory that is not a pool's."""
    try:
        with open(os.path.join(root, "owner")) as f:
            pid, start = f.read().split()
    except (OSError, ValueError):
        return None
    if int(pid) == os.getpid() and _start_time(int(pid)) == start:
        return os.path.realpath(root) in _LIVE_ROOTS  # this process: alive if a pool has it
    return _start_time(int(pid)) == start


def _is_stale(root: str) -> bool:
    alive = _owner_alive(root)
    if alive is None:  # no owner file: a pool's only if a mount is left in it
        return bool(mounts_under(root))
    return not alive


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
        if not _is_stale(root):
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
            remove_root(root)
            swept.append(root)
    return swept
