"""The BM25 index (bm25s) over chunks, persisted in a folder and refreshed incrementally.

Layout of ``index_dir``::

    manifest.json     format, settings, and per file: path, size, mtime_ns, sha256, its
                      chunks' range and notes; names the generation below. Replaced
                      atomically (written aside, then ``os.replace``).
    gen-<id>/         one complete index: ``bm25/`` (bm25s' save format), ``chunks.json``
                      (the passages and their sources) and ``tokens.json`` (each chunk's
                      tokens, so a rebuild never parses an unchanged file again)
    .lock             held (``flock``) while an index is refreshed

A refresh compares each file with the manifest: the same path, size and mtime, or failing
that the same sha256, means unchanged and its chunks are reused; other files are parsed.
bm25s cannot add or drop documents in an index, so when any file was added, changed or
removed the BM25 matrix is rebuilt from the cached tokens (fast: no parsing), written to a
new generation, and the manifest switched to it. Settings (chunk size, language, stemming,
BM25 parameters) are part of the manifest; when they differ everything is parsed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunks import Chunk, chunk_blocks
from .index import BM25_PARAMS, BM25Index, IndexReport, Tokenizer
from .parsers import DocumentError, parse_document

__all__ = ["refresh_index", "INDEX_FORMAT"]

log = logging.getLogger("qwen_agent.tools.retrieval")

#: bump when the stored layout or the parsers' output changes
INDEX_FORMAT = 1
MANIFEST = "manifest.json"


# -- refresh ----------------------------------------------------------------------------

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

#: a file modified this close to when it was last checked is hashed even if its size and
#: mtime match (the mtime may not have ticked between two writes; git's "racy" rule)
_RACY_NS = 2 * 10**9


class _DirLock:
    """A thread lock per folder plus an ``flock`` on ``.lock`` for other processes.
    ``usable`` is False when the folder cannot be made or written (the index then lives
    in memory only)."""

    def __init__(self, index_dir: Path) -> None:
        self.dir = index_dir
        with _locks_guard:
            self.lock = _locks.setdefault(str(index_dir), threading.Lock())
        self.fd: int | None = None
        self.usable = False
        self.problem = ""

    def __enter__(self) -> _DirLock:
        self.lock.acquire()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            self.problem = exc.strerror or str(exc)
            return self
        try:
            import fcntl
        except ImportError:  # Windows: the thread lock only
            pass
        else:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except OSError as exc:  # ENOLCK on some network filesystems: in memory only
                os.close(self.fd)
                self.fd = None
                self.problem = f"cannot lock the folder ({exc.strerror or exc})"
                return self
        self.usable = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
        self.lock.release()


@dataclass
class _Entry:
    path: str
    size: int
    mtime_ns: int
    sha256: str
    chunks: list[Chunk]
    tokens: list[str] | None  # space-joined tokens per chunk; None: not loaded yet
    notes: list[str]
    checked_ns: int = 0  # when size and mtime were last confirmed against the content


def _settings(tokenizer: Tokenizer, chunk_chars: int, overlap: int) -> dict[str, Any]:
    return {
        "tokenizer": tokenizer.settings,
        "chunk_chars": chunk_chars,
        "chunk_overlap": overlap,
        "bm25": BM25_PARAMS,
    }


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class _Stored:
    """The index as stored: its generation and its entries (chunks loaded, tokens not)."""

    def __init__(self, generation: str | None = None, entries: dict[str, _Entry] | None = None):
        self.generation = generation
        self.entries = entries or {}


def _load_stored(index_dir: Path, settings: dict[str, Any], report: IndexReport) -> _Stored:
    path = index_dir / MANIFEST
    if not path.exists():
        return _Stored()
    try:
        manifest = _read_json(path)
        if manifest.get("format") != INDEX_FORMAT or manifest.get("settings") != settings:
            log.info("retrieval index in %s has other settings; parsing every file", index_dir)
            return _Stored()
        gen = manifest.get("generation")
        raw = _read_json(index_dir / gen / "chunks.json") if gen else []
        chunks = [Chunk.from_json(c) for c in raw]
        entries: dict[str, _Entry] = {}
        for name, e in manifest["files"].items():
            first, count = e["first"], e["count"]
            entries[name] = _Entry(
                e["path"], e["size"], e["mtime_ns"], e["sha256"],
                chunks[first : first + count], None, e.get("notes", []), e.get("checked_ns", 0),
            )  # fmt: skip
        return _Stored(gen, entries)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.notes.append(("(index)", f"the stored index was unreadable and is rebuilt ({exc})"))
        log.warning("retrieval index in %s is unreadable (%s); rebuilding it", index_dir, exc)
        return _Stored()


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise DocumentError("grew past the size limit while being read")
    return data


def _process(
    name: str,
    path: Path,
    old: _Entry | None,
    tokenizer: Tokenizer,
    opts: dict[str, int],
    report: IndexReport,
) -> tuple[_Entry | None, bool]:
    """The entry for one file and whether it was parsed (False: reused); None: failed."""
    try:
        st = path.stat()
    except OSError as exc:
        report.failed.append((name, f"cannot be read: {exc.strerror or exc}"))
        return None, False
    same = old if old is not None and old.path == str(path) else None
    if (
        same is not None
        and (same.size, same.mtime_ns) == (st.st_size, st.st_mtime_ns)
        and st.st_mtime_ns < same.checked_ns - _RACY_NS
    ):
        return same, False
    limit = opts["max_file_bytes"]
    if st.st_size > limit:
        report.failed.append(
            (name, f"is {st.st_size / 2**20:.1f} MB, over the {limit / 2**20:.3g} MB size limit")
        )
        return None, False
    if st.st_size == 0:
        report.failed.append((name, "the file is empty"))
        return None, False
    checked = time.time_ns()
    try:
        data = _read_bounded(path, limit)
    except OSError as exc:
        report.failed.append((name, f"cannot be read: {exc.strerror or exc}"))
        return None, False
    except DocumentError as exc:
        report.failed.append((name, str(exc)))
        return None, False
    sha = hashlib.sha256(data).hexdigest()
    if same is not None and same.sha256 == sha:
        same.size, same.mtime_ns, same.checked_ns = len(data), st.st_mtime_ns, checked
        return same, False
    try:
        parsed = parse_document(name, data)
    except DocumentError as exc:
        report.failed.append((name, str(exc).removeprefix(f"{name}: ")))
        return None, False
    chunks = chunk_blocks(parsed.blocks, name, opts["chunk_chars"], opts["chunk_overlap"])
    tokens = [" ".join(tokenizer(c.text)) for c in chunks]
    if not any(tokens):
        report.failed.append((name, "has no searchable words"))
        return None, False
    entry = _Entry(str(path), len(data), st.st_mtime_ns, sha, chunks, tokens, parsed.notes)
    entry.checked_ns = checked
    return entry, True


def refresh_index(
    index_dir: Path,
    sources: Sequence[tuple[str, Path]],
    tokenizer: Tokenizer,
    *,
    chunk_chars: int = 1000,
    chunk_overlap: int = 150,
    max_file_bytes: int = 50 * 2**20,
    report: IndexReport | None = None,
) -> tuple[BM25Index, IndexReport]:
    """Bring the index in ``index_dir`` up to date with ``sources`` ((display name, path)
    pairs) and return it with a report of what was parsed, reused, removed and failed.
    If ``index_dir`` cannot be written the index is made in memory and a note says so."""
    t0 = time.perf_counter()
    report = report or IndexReport()
    report.index_dir = str(index_dir)
    settings = _settings(tokenizer, chunk_chars, chunk_overlap)
    opts = {"max_file_bytes": max_file_bytes, "chunk_chars": chunk_chars,
            "chunk_overlap": chunk_overlap}  # fmt: skip

    last_note = [t0]

    def process(name: str, path: Path, old: _Entry | None) -> _Entry | None:
        entry, parsed = _process(name, path, old, tokenizer, opts, report)
        if entry is not None:
            (report.parsed if parsed else report.reused).append(name)
        now = time.perf_counter()
        if now - last_note[0] > 5:  # a big corpus: say how far it got
            last_note[0] = now
            done = len(report.parsed) + len(report.reused) + len(report.failed)
            log.info("retrieval: %d/%d files read (%.0f s)", done, len(sources), now - t0)
        return entry

    with _DirLock(index_dir) as lock:
        if not lock.usable:
            _note_unsaved(report, index_dir, lock.problem)
        stored = _load_stored(index_dir, settings, report) if lock.usable else _Stored()
        entries = {n: e for n, p in sorted(sources) if (e := process(n, p, stored.entries.get(n)))}
        report.removed = sorted(n for n in stored.entries if n not in dict(sources))
        retriever = None
        if stored.generation and not report.parsed and set(entries) == set(stored.entries):
            retriever = _load_bm25(index_dir / stored.generation, report)
        if retriever is None and any(e.chunks for e in entries.values()):
            if any(e.tokens is None for e in entries.values()):
                _reuse_tokens(index_dir, stored, entries, report, process, dict(sources))
            retriever = _build_bm25(entries)
            report.rebuilt = True
        if lock.usable:
            _persist(index_dir, settings, stored.generation, entries, retriever, report)
    report.parsed.sort()
    report.reused.sort()
    report.notes.extend((n, note) for n, e in entries.items() for note in e.notes)
    for name, reason in report.failed:
        log.warning("retrieval: %s: %s", name, reason)
    chunks = [c for e in entries.values() for c in e.chunks]
    report.chunks = len(chunks)
    report.seconds = time.perf_counter() - t0
    log.info("retrieval index %s: %s", index_dir, report.summary())
    return BM25Index(chunks, retriever, tokenizer), report


def _load_bm25(gen_dir: Path, report: IndexReport) -> Any:
    import bm25s

    try:
        return bm25s.BM25.load(gen_dir / "bm25", show_progress=False)
    except (OSError, ValueError, KeyError) as exc:
        report.notes.append(("(index)", f"the stored BM25 matrix was unreadable ({exc})"))
        return None


def _build_bm25(entries: dict[str, _Entry]) -> Any:
    import bm25s

    retriever = bm25s.BM25(**BM25_PARAMS)
    tokens = [t.split() for e in entries.values() for t in e.tokens or ()]
    retriever.index(tokens, show_progress=False)
    return retriever


def _reuse_tokens(
    index_dir: Path,
    stored: _Stored,
    entries: dict[str, _Entry],
    report: IndexReport,
    process: Callable[[str, Path, _Entry | None], _Entry | None],
    paths: dict[str, Path],
) -> None:
    """Fill in the reused entries' tokens from the stored generation; if it cannot be read,
    parse those files again."""
    try:
        saved = _read_json(index_dir / str(stored.generation) / "tokens.json")
        position = 0
        for name, entry in stored.entries.items():  # stored in the manifest's order
            if entries.get(name) is entry:
                entry.tokens = saved[position : position + len(entry.chunks)]
            position += len(entry.chunks)
        if position != len(saved):
            raise ValueError(f"{len(saved)} token lists for {position} chunks")
        return
    except (OSError, ValueError, TypeError) as exc:
        report.notes.append(("(index)", f"stored tokens unreadable, parsing again ({exc})"))
    for name, entry in list(entries.items()):
        if entry is stored.entries.get(name):
            report.reused.remove(name)
            fresh = process(name, paths[name], None)
            if fresh is None:
                del entries[name]
            else:
                entries[name] = fresh


def _persist(
    index_dir: Path,
    settings: dict[str, Any],
    gen: str | None,
    entries: dict[str, _Entry],
    retriever: Any,
    report: IndexReport,
) -> None:
    """Write a new generation if the matrix was rebuilt, then the manifest; drop the rest.
    A failure to write leaves a working in-memory index and a note."""
    try:
        if retriever is None:
            gen = None
        elif report.rebuilt:
            gen = _write_generation(index_dir, entries, retriever)
        _write_manifest(index_dir, settings, gen, entries)
        _remove_stale(index_dir, keep=gen)
    except OSError as exc:
        _note_unsaved(report, index_dir, exc.strerror or str(exc))


def _note_unsaved(report: IndexReport, index_dir: Path, problem: str) -> None:
    report.notes.append(("(index)", f"the index could not be saved ({problem}); kept in memory"))
    log.warning("retrieval: cannot save the index in %s (%s)", index_dir, problem)


def _write_generation(index_dir: Path, entries: dict[str, _Entry], retriever: Any) -> str:
    gen = f"gen-{time.time_ns():x}-{os.urandom(3).hex()}"
    tmp = index_dir / f".tmp-{gen}"
    tmp.mkdir()
    try:
        retriever.save(tmp / "bm25", show_progress=False)
        _dump(tmp / "chunks.json", [c.to_json() for e in entries.values() for c in e.chunks])
        _dump(tmp / "tokens.json", [t for e in entries.values() for t in e.tokens or ()])
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync(f)
        os.replace(tmp, index_dir / gen)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return gen


def _write_manifest(
    index_dir: Path, settings: dict[str, Any], gen: str | None, entries: dict[str, _Entry]
) -> None:
    files: dict[str, Any] = {}
    first = 0
    for name, e in entries.items():
        files[name] = {
            "path": e.path, "size": e.size, "mtime_ns": e.mtime_ns, "sha256": e.sha256,
            "checked_ns": e.checked_ns, "first": first, "count": len(e.chunks),
            "notes": e.notes,
        }  # fmt: skip
        first += len(e.chunks)
    manifest = {"format": INDEX_FORMAT, "settings": settings, "generation": gen, "files": files}
    tmp = index_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    _dump(tmp, manifest)
    _fsync(tmp)
    os.replace(tmp, index_dir / MANIFEST)


def _remove_stale(index_dir: Path, keep: str | None) -> None:
    for child in index_dir.iterdir():
        if child.name.startswith(f".{MANIFEST}.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)
        elif child.is_dir() and (
            child.name.startswith(".tmp-") or (child.name.startswith("gen-") and child.name != keep)
        ):
            shutil.rmtree(child, ignore_errors=True)


def _dump(path: Path, obj: Any) -> None:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))  # faster than dump()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
