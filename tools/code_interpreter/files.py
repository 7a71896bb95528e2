"""Host-side access to a session's working directory, safe against what the code plants.

The code in the sandbox owns its working directory and can put symlinks, FIFOs or
directories anywhere in it, pointing at host paths. Everything here opens paths one
component at a time relative to a directory descriptor with ``O_NOFOLLOW``, accepts only
regular files, never blocks on a FIFO, and checks the real path stays inside as well.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from dataclasses import dataclass

from qwen_agent.errors import SandboxError

__all__ = ["FileInfo", "safe_name", "write_upload", "list_files", "read_file"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_NAME_BYTES = 200


@dataclass(frozen=True)
class FileInfo:
    """A regular file in a working directory: ``path`` is relative to it."""

    path: str
    size: int
    modified: float


def safe_name(name: str) -> str:
    """A file name that cannot leave the directory it is written to.

    Only the last component of ``name`` is kept (``/`` and ``\\`` both separate), control
    characters and characters outside letters, digits and ``._-+()@ `` become ``_``,
    leading dots are dropped (no ``..``, no hidden files), and the name is cut to 200 bytes.
    """
    if not isinstance(name, str):
        raise SandboxError(f"a file name must be a string, got {type(name).__name__}")
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    chars = [c if (c.isalnum() or c in "._-+()@ ") else "_" for c in base]
    cleaned = "".join(chars).strip().lstrip(".").strip()
    if not cleaned or set(cleaned) <= {"_"}:
        cleaned = "upload" + (cleaned if cleaned else "")
    while len(cleaned.encode()) > _MAX_NAME_BYTES:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and 0 < len(ext) <= 16 and len(stem) > 1:
            cleaned = stem[:-1] + "." + ext
        else:
            cleaned = cleaned[:-1]
    return cleaned


def write_upload(root: str, name: str, data: bytes | os.PathLike[str], owner: int) -> str:
    """Write ``data`` (bytes, or a host file given as an ``os.PathLike`` such as a
    :class:`~pathlib.Path`) to ``root/safe_name(name)``, replacing what is there (a planted
    symlink is replaced, never followed); the file is given to ``owner`` (-1: keep).
    Returns the safe name. A ``str`` is refused: it may be meant as the content or as a
    path, and taking it for a path would hand the kernel a host file."""
    safe = safe_name(name)
    if isinstance(data, str):
        raise SandboxError(
            "upload data must be bytes (for text: data.encode()) or a pathlib.Path of a host "
            "file; a str is refused because it could be read as either"
        )
    if isinstance(data, (bytes, bytearray, memoryview)):
        chunks: object = [bytes(data)]
    elif isinstance(data, os.PathLike):
        src = os.fspath(data)
        if not os.path.isfile(src):
            raise SandboxError(f"cannot upload {src!r}: not a regular file")
        chunks = None
    else:
        raise SandboxError(f"upload data must be bytes or a file path, not {type(data).__name__}")
    dfd = _open_root(root)
    tmp = f".upload-{os.urandom(8).hex()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                if chunks is None:
                    with open(src, "rb") as f:  # a host file given by the host application
                        while block := f.read(1 << 20):
                            out.write(block)
                else:
                    for block in chunks:  # type: ignore[attr-defined]
                        out.write(block)
            if owner >= 0:
                os.fchown(fd, owner, owner)
        finally:
            os.close(fd)
        os.rename(tmp, safe, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError as exc:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise SandboxError(f"cannot upload {safe!r}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)
    return safe


def list_files(root: str, max_files: int = 1000, max_depth: int = 8) -> list[FileInfo]:
    """Regular files under ``root`` (symlinks and special files are skipped), sorted."""
    out: list[FileInfo] = []
    dfd = _open_root(root)
    try:
        _walk(dfd, "", out, max_files, max_depth)
    finally:
        os.close(dfd)
    return sorted(out, key=lambda f: f.path)


def _walk(dfd: int, prefix: str, out: list[FileInfo], max_files: int, depth: int) -> None:
    with os.scandir(dfd) as it:
        for entry in it:
            if len(out) >= max_files:
                return
            if entry.name.startswith(".upload-"):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            rel = prefix + entry.name
            if stat.S_ISREG(st.st_mode):
                out.append(FileInfo(rel, st.st_size, st.st_mtime))
            elif stat.S_ISDIR(st.st_mode) and depth > 0:
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    _walk(sub, rel + "/", out, max_files, depth - 1)
                finally:
                    os.close(sub)


def read_file(root: str, path: str, max_bytes: int = 64 * 2**20) -> bytes:
    """The content of the regular file ``path`` (relative) under ``root``.

    Raises :class:`SandboxError` for an absolute path, ``..``, a symlink anywhere on the
    way, a non-regular file or one larger than ``max_bytes``.
    """
    parts = _parts(path)
    real = os.path.realpath(os.path.join(root, *parts))
    real_root = os.path.realpath(root)
    if not real.startswith(real_root + os.sep):
        raise SandboxError(f"{path!r} is outside the working directory")
    fd = _open_root(root)
    try:
        for comp in parts[:-1]:
            nfd = _open_at(comp, _DIR_FLAGS, fd, path)
            os.close(fd)
            fd = nfd
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        ffd = _open_at(parts[-1], flags, fd, path)
    finally:
        os.close(fd)
    st = os.fstat(ffd)
    if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
        os.close(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise SandboxError(f"{path!r} is not a regular file")
        raise SandboxError(f"{path!r} is larger than {max_bytes:,} bytes")
    with os.fdopen(ffd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SandboxError(f"{path!r} is larger than {max_bytes:,} bytes")
    return data


def _parts(path: str) -> list[str]:
    if not isinstance(path, str) or not path or "\0" in path:
        raise SandboxError("a file path must be a non-empty string")
    if path.startswith("/"):
        raise SandboxError(f"{path!r}: give a path relative to the working directory")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise SandboxError(f"{path!r} is outside the working directory")
    return parts


def _open_root(root: str) -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise SandboxError(f"the working directory is not available: {exc.strerror}") from None


def _open_at(name: str, flags: int, dfd: int, path: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink, or not a directory
            raise SandboxError(f"{path!r}: a symlink or non-directory is on the way") from None
        raise SandboxError(f"cannot open {path!r}: {exc.strerror}") from None
