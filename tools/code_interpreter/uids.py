"""Uids for sessions, and killing what runs as them.

Each session's kernel runs as a uid of its own (RLIMIT_NPROC counts per uid, and files
and signals are then separated too). :class:`UidAllocator` hands them out across
processes: a uid is held by an ``flock`` on a file in a root-only directory, and a uid left
by a crashed service has its processes killed before it is used again.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import stat
import tempfile
import threading
import time

from qwen_agent.errors import SandboxError

__all__ = ["UidAllocator", "kill_uid", "uid_processes"]


class UidAllocator:
    """Hands out uids from ``[base, base + count)``, one per session, across processes.

    A uid is held by an ``flock`` on a file in a root-only directory, so two services on
    one host never share a uid (RLIMIT_NPROC counts per uid). Uids known to the system's
    user database are skipped.
    """

    def __init__(self, base: int, count: int, lock_dir: str | None = None) -> None:
        self.base, self.count = base, count
        self.lock_dir = lock_dir or _lock_dir()
        self._held: dict[int, int] = {}
        self.ever_used: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            for _ in range(self.count):
                uid = self.base + self._next
                self._next = (self._next + 1) % self.count
                if uid in self._held or _uid_exists(uid):
                    continue
                fd = self._lock_uid(uid)
                if fd is None:
                    continue
                self._held[uid] = fd
                self.ever_used.add(uid)
                kill_uid(uid)  # left over by a service that crashed
                return uid
        raise SandboxError(f"all {self.count} sandbox uids are in use; close some sessions")

    def try_hold(self, uid: int) -> bool:
        """Hold ``uid`` (any uid, for cleaning up after a crashed service) if it is free."""
        with self._lock:
            if uid in self._held:
                return False
            fd = self._lock_uid(uid)
            if fd is None:
                return False
            self._held[uid] = fd
            return True

    def _lock_uid(self, uid: int) -> int | None:
        """An exclusive lock on ``uid``'s lock file (shared with other processes), or None."""
        fd = os.open(
            os.path.join(self.lock_dir, str(uid)),
            os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def release(self, uid: int) -> None:
        with self._lock:
            fd = self._held.pop(uid, None)
        if fd is not None:
            os.close(fd)


def _uid_exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _lock_dir() -> str:
    base = "/run" if os.path.isdir("/run") and os.access("/run", os.W_OK) else tempfile.gettempdir()
    path = os.path.join(base, "qwen-agent-sandbox-uids")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SandboxError(f"{path} must be a directory owned by this user, not group-writable")
    return path


def kill_uid(uid: int, rounds: int = 50) -> int:
    """SIGKILL every process whose real or effective uid is ``uid``; return how many."""
    killed = 0
    for _ in range(rounds):
        pids = uid_processes(uid)
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, 9)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return killed


def uid_processes(uid: int) -> list[int]:
    """Pids of the processes running as ``uid`` (real or effective)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"Uid:"):
                        ids = line.split()[1:3]
                        if str(uid).encode() in ids:
                            pids.append(int(name))
                        break
        except OSError:
            continue
    return pids
