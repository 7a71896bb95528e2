"""Where built-in tools keep their output files, how they write them (atomically), and how
many they keep (:class:`Quota`, :func:`prune`)."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError

__all__ = ["Quota", "data_dir", "prune", "save_atomic"]

logger = logging.getLogger(__name__)


def data_dir() -> Path:
    """Where tools keep files: ``$QWEN_AGENT_DATA_DIR``, else ``$XDG_DATA_HOME/qwen-agent``,
    else ``~/.local/share/qwen-agent``."""
    if os.environ.get("QWEN_AGENT_DATA_DIR"):
        return Path(os.environ["QWEN_AGENT_DATA_DIR"])
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "qwen-agent"


def save_atomic(final: Path, data: Any) -> Path:
    """Write ``data`` (bytes, or an image with ``.save(file, format="PNG")``) to ``final``
    through a hidden temporary file in the same folder, so no reader sees half a file.
    OSError on failure, with the temporary file removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return final


@dataclass(frozen=True)
class Quota:
    """How many of a tool's files to keep; a limit of None (or 0) is no limit.

    ``max_files`` and ``max_bytes`` hold for one folder (a session's), ``max_total_files``
    and ``max_total_bytes`` for all the folders beside it; files older than
    ``max_age_hours`` go whatever the counts. Past a limit, the oldest files go first."""

    max_age_hours: float | None = 7 * 24.0
    max_files: int | None = 200
    max_bytes: int | None = 256 * 2**20
    max_total_files: int | None = 2000
    max_total_bytes: int | None = 2 * 2**30

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            whole = f.name == "max_age_hours" or isinstance(value, int)
            if not number or not whole or not 0 <= value < float("inf"):
                kind = "a number of hours" if f.name == "max_age_hours" else "a whole number"
                raise ConfigError(
                    f"quota {f.name} must be {kind} (0 or None: no limit), got {value!r:.40}"
                )
            if value == 0:
                object.__setattr__(self, f.name, None)

    @classmethod
    def of(cls, value: Quota | Mapping[str, Any] | None) -> Quota:
        """``value`` as a Quota: None is the defaults, a mapping (a config file's table)
        changes the limits it names."""
        if value is None or isinstance(value, Quota):
            return value or cls()
        if not isinstance(value, Mapping):
            raise ConfigError(f"a quota is a Quota or a table of limits, not {value!r:.40}")
        unknown = set(value) - {f.name for f in fields(cls)}
        if unknown:
            known = ", ".join(f.name for f in fields(cls))
            raise ConfigError(f"unknown quota limits {sorted(unknown)} (known: {known})")
        return cls(**value)


#: one sweep at a time in this process (other processes' sweeps are tolerated: a file that
#: is gone already is skipped)
_prune_lock = threading.Lock()


@dataclass
class _File:
    path: Path
    mtime: float
    size: int


def prune(
    folder: Path,
    quota: Quota,
    names: re.Pattern[str],
    *,
    root: Path | None = None,
    keep: Path | None = None,
) -> list[Path]:
    """Delete the files in ``folder`` whose names match ``names`` that are past ``quota``,
    oldest first, and the same in the other folders of ``root`` (``folder``'s parent, the
    folder of all sessions) for the age and total limits; then remove ``root``'s empty
    folders but ``folder``. ``keep`` (the file just written) is never deleted. Files of other
    names, symlinks and anything deeper are left alone. Returns what was deleted; an error
    is logged, never raised (the tool's output is written already)."""
    with _prune_lock:
        try:
            return _prune(folder, quota, names, root, keep)
        except OSError as exc:
            logger.warning("could not clean up %s: %s", folder, exc)
            return []


def _prune(
    folder: Path, quota: Quota, names: re.Pattern[str], root: Path | None, keep: Path | None
) -> list[Path]:
    folders = {folder, *(_subfolders(root) if root is not None else ())}
    found = {d: _files(d, names) for d in folders}
    doomed: list[_File] = []
    if quota.max_age_hours is not None:
        cutoff = time.time() - quota.max_age_hours * 3600
        for d in folders:
            doomed += [f for f in found[d] if f.mtime < cutoff]
            doomed += [f for f in _files(d, names, temporary=True) if f.mtime < cutoff]
    doomed += _over(found[folder], doomed, quota.max_files, quota.max_bytes, keep)
    everything = [f for d in folders for f in found[d]]
    doomed += _over(everything, doomed, quota.max_total_files, quota.max_total_bytes, keep)
    deleted = []
    for f in doomed:
        if f.path != keep:
            f.path.unlink(missing_ok=True)
            deleted.append(f.path)
    for d in folders - {folder}:
        try:
            d.rmdir()  # only an empty one goes; a writer that lost its folder writes again
        except OSError:
            pass
    if deleted:
        logger.info("removed %d old files from %s", len(deleted), root or folder)
    return deleted


def _over(
    files: list[_File], gone: list[_File], count: int | None, size: int | None, keep: Path | None
) -> list[_File]:
    """The oldest of ``files`` (but ``keep``) to delete so that the rest fit ``count`` files
    and ``size`` bytes, counting ``gone`` as deleted already."""
    left = {id(f) for f in gone}
    kept = sorted((f for f in files if id(f) not in left), key=lambda f: (f.mtime, f.path.name))
    n, total = len(kept), sum(f.size for f in kept)
    out = []
    for f in kept:
        if (count is None or n <= count) and (size is None or total <= size):
            break
        if f.path == keep:
            continue
        out.append(f)
        n, total = n - 1, total - f.size
    return out


def _subfolders(root: Path) -> list[Path]:
    try:
        with os.scandir(root) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _files(folder: Path, names: re.Pattern[str], temporary: bool = False) -> list[_File]:
    """The regular files of ``folder`` whose names match (``temporary``: the hidden
    ``.NAME.tmp`` files :func:`save_atomic` leaves when a process dies mid-write)."""
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                name = e.name
                if temporary:
                    if not (name.startswith(".") and name.endswith(".tmp")):
                        continue
                    name = name[1:-4]
                if not names.fullmatch(name) or not e.is_file(follow_symlinks=False):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append(_File(Path(e.path), st.st_mtime, st.st_size))
    except FileNotFoundError:
        pass
    return out
