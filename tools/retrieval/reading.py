"""Reading a document's bytes without leaving its folder.

Links are checked when a folder is scanned, but a file (or a folder on its path) can be
swapped for a symlink between the scan and the read. So a file is opened first and the
opened file is checked afterwards: it must be a regular file, and the path the kernel
gives for the open descriptor (``/proc/self/fd/N`` on Linux, ``F_GETPATH`` on macOS) must
lie inside the folder it was found in. Whatever was swapped in before the open, what is
read is what was checked. Where neither exists, the path is walked one component at a
time from the folder's descriptor with ``O_NOFOLLOW`` (links inside the folder are then
refused too); without ``dir_fd`` support (Windows) the resolved path is checked before
the open and the opened file's identity compared with it after.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

__all__ = ["Outside", "open_inside", "read_bounded"]

_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the open
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class Outside(Exception):
    """The file is not a regular file inside its folder; the message says what it is."""


def open_inside(path: Path, root: Path) -> tuple[int, os.stat_result]:
    """An open read-only descriptor of ``path`` and its ``fstat``, checked to be a regular
    file inside ``root`` (a resolved path: the folder given, or for a file given by name,
    that file). Raises :class:`Outside`, or OSError when it cannot be opened."""
    fd = _open(path, root)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Outside("is not a regular file (it was replaced after the folder was scanned)")
        where = _fd_path(fd)
        if where is not None and not _within(where, root):
            raise Outside(
                "leads outside the indexed folder (a link swapped in after the folder was "
                "scanned); not read"
            )
        if where is None and not _supports_dir_fd():
            real = Path(os.path.realpath(path))
            now = os.stat(real)
            if not _within(str(real), root) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                raise Outside("leads outside the indexed folder; not read")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_bounded(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fd``; ValueError if it holds more (it grew)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(limit + 1 - total, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise ValueError("grew past the size limit while being read")
    return b"".join(chunks)


def _within(where: str, root: Path) -> bool:
    base = str(root)
    return where == base or where.startswith(base.rstrip(os.sep) + os.sep)


def _fd_path(fd: int) -> str | None:
    """The path the kernel gives for an open descriptor, or None where it gives none."""
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
    if sys.platform == "darwin":
        import fcntl

        try:
            raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))  # type: ignore[attr-defined]
        except (OSError, AttributeError):
            return None
        return os.fsdecode(raw.split(b"\0", 1)[0])
    return None


def _supports_dir_fd() -> bool:
    return os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")


def _open(path: Path, root: Path) -> int:
    if _fd_path_available() or not _supports_dir_fd():
        return os.open(path, _FLAGS)
    # no way to ask where a descriptor leads: walk from the folder, following no link
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise Outside("is not inside the indexed folder; not read") from None
    if not parts:  # a file given by name: its own folder is the walk's start
        root, parts = root.parent, (root.name,)
    nofollow = os.O_NOFOLLOW
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = step
        try:
            return os.open(parts[-1], _FLAGS | nofollow, dir_fd=fd)
        except OSError as exc:
            if os.path.islink(path):
                raise Outside("is a link, which is not followed on this system; not read") from exc
            raise
    finally:
        os.close(fd)


_PROBED: list[bool] = []


def _fd_path_available() -> bool:
    if not _PROBED:
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            _PROBED.append(_fd_path(fd) is not None)
        finally:
            os.close(fd)
    return _PROBED[0]
