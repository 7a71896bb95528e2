"""The BM25 index (bm25s) over chunks, persisted in a folder and refreshed incrementally.

Layout of ``index_dir``::

    manifest.json     format, settings, and per file: path, size, mtime_ns, sha256, its
                      chunks' range and notes; names the generation below; and the files
                      that failed to parse or passed a limit, with the reason and the
                      limits (not parsed again while they and the limits stay the same).
                      Replaced atomically (written aside, then ``os.replace``).
    gen-<id>/         one complete index: ``bm25/`` (bm25s' save format), ``chunks.json``
                      (the passages and their sources) and ``tokens.json`` (each chunk's
                      tokens, so a rebuild never parses an unchanged file again)
    .lock             held (``flock``) while the manifest is read, and while a new
                      generation is written; never while a file is parsed

A refresh compares each file with the manifest: the same path, size and mtime, or failing
that the same sha256, means unchanged and its chunks are reused; other files are parsed.
bm25s cannot add or drop documents in an index, so when any file was added, changed or
removed the BM25 matrix is rebuilt from the cached tokens (fast: no parsing), written to a
new generation, and the manifest switched to it. Settings (chunk size, language, stemming,
BM25 parameters) are part of the manifest; when they differ everything is parsed again.

A refresh runs in three steps: (1) under the lock, read the manifest; (2) without it,
compare and parse the files (:mod:`.reading` opens them inside their folder, html, pdf and
docx are parsed in a worker process with a deadline: :mod:`.isolate`); (3) under the lock
again, build and save, unless another refresh saved in between: then again from (1),
reusing what was parsed. Waiting for the lock is bounded (``lock_timeout_s``); past it the
last saved index is read without the lock and the result is kept in memory, with a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .chunks import Chunk, chunk_blocks
from .index import BM25_PARAMS, BM25Index, IndexReport, Tokenizer
from .isolate import ParseWorker
from .parsers import TEXT_TYPES, DocumentError, ParseLimits, file_type, parse_document
from .reading import Outside, open_inside, read_bounded

__all__ = ["refresh_index", "INDEX_FORMAT", "Source"]

log = logging.getLogger("qwen_agent.tools.retrieval")

#: bump when the stored layout or the parsers' output changes
INDEX_FORMAT = 1
MANIFEST = "manifest.json"

#: (display name, path, the resolved folder it must stay inside: the folder it was found
#: in, or for a file given by name, that file itself)
Source = tuple[str, Path, Path]


# -- the lock ---------------------------------------------------------------------------

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

#: a file modified this close to when it was last checked is hashed even if its size and
#: mtime match (the mtime may not have ticked between two writes; git's "racy" rule)
_RACY_NS = 2 * 10**9
#: how many times a refresh starts again when another one saved while it was parsing
_ATTEMPTS = 3


class _DirLock:
    """A thread lock per folder plus an ``flock`` on ``.lock`` for other processes, each
    waited for at most ``timeout`` seconds. ``usable`` is False when the folder cannot be
    made or written, or (``busy``) the wait ran out: the index then lives in memory."""

    def __init__(self, index_dir: Path, timeout: float) -> None:
        self.dir = index_dir
        self.timeout = timeout
        with _locks_guard:
            self.lock = _locks.setdefault(str(index_dir), threading.Lock())
        self.fd: int | None = None
        self.held = False
        self.usable = False
        self.busy = False
        self.problem = ""

    def __enter__(self) -> _DirLock:
        deadline = time.monotonic() + self.timeout
        if not self.lock.acquire(timeout=self.timeout):
            return self._busy("another refresh in this process")
        self.held = True
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
            pause = 0.005
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return self._busy("another process")
                    time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                    pause = min(pause * 2, 0.1)
                except OSError as exc:  # ENOLCK on some network filesystems: in memory only
                    os.close(self.fd)
                    self.fd = None
                    self.problem = f"cannot lock the folder ({exc.strerror or exc})"
                    return self
        self.usable = True
        return self

    def _busy(self, who: str) -> _DirLock:
        self.busy = True
        self.problem = (
            f"{who} held its lock for over {self.timeout:g} s (lock_timeout_s); the last "
            "saved index was used"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
        if self.held:
            self.held = False
            self.lock.release()


def _manifest_id(index_dir: Path) -> tuple[int, int, int] | None:
    """What changes whenever the manifest is replaced (a new file each time)."""
    try:
        st = os.stat(index_dir / MANIFEST)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


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


@dataclass(frozen=True)
class _Failure:
    """A file that could not be indexed for what it holds (a parse error, a limit), kept
    in the manifest so that it is not parsed again, up to the deadline, while it and the
    limits stay the same."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    checked_ns: int
    reason: str
    limits: list[Any]


class _Stored:
    """The index as stored: its generation and its entries (chunks loaded, tokens not),
    and the files that failed."""

    def __init__(
        self,
        generation: str | None = None,
        entries: dict[str, _Entry] | None = None,
        failures: dict[str, _Failure] | None = None,
    ):
        self.generation = generation
        self.entries = entries or {}
        self.failures = failures or {}
        #: each entry's ``checked_ns`` as stored (a refresh updates the entries in place)
        self.checked = {name: e.checked_ns for name, e in self.entries.items()}


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
        failures = {name: _Failure(**f) for name, f in manifest.get("failed", {}).items()}
        return _Stored(gen, entries, failures)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.notes.append(("(index)", f"the stored index was unreadable and is rebuilt ({exc})"))
        log.warning("retrieval index in %s is unreadable (%s); rebuilding it", index_dir, exc)
        return _Stored()


@dataclass
class _Options:
    chunk_chars: int
    chunk_overlap: int
    max_file_bytes: int
    max_chunks: int
    limits: ParseLimits

    @property
    def key(self) -> list[Any]:
        """What a stored failure depends on besides the settings and the file."""
        lim = self.limits
        return [lim.max_chars, lim.max_pages, lim.timeout_s, self.max_chunks]


def _process(
    source: Source,
    old: _Entry | _Failure | None,
    tokenizer: Tokenizer,
    opts: _Options,
    worker: ParseWorker,
) -> tuple[_Entry | _Failure | str, bool]:
    """The entry for one file, or why it failed (a :class:`_Failure` when it is worth
    remembering, else the reason), and whether it was parsed (False: ``old`` reused)."""
    name, path, root = source
    try:
        st = os.stat(path)  # only compared with the manifest: no content is read
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}", False
    same = old if old is not None and old.path == str(path) else None
    if isinstance(same, _Failure) and same.limits != opts.key:
        same = None  # other limits: try again
    if (
        same is not None
        and (same.size, same.mtime_ns) == (st.st_size, st.st_mtime_ns)
        and st.st_mtime_ns < same.checked_ns - _RACY_NS
    ):
        return same, False
    checked = time.time_ns()
    try:
        data, st = _read(path, root, opts.max_file_bytes)
    except DocumentError as exc:
        return str(exc), False
    sha = hashlib.sha256(data).hexdigest()
    if isinstance(same, _Failure) and same.sha256 == sha:
        return replace(same, size=len(data), mtime_ns=st.st_mtime_ns, checked_ns=checked), False
    if same is not None and same.sha256 == sha:
        same.size, same.mtime_ns, same.checked_ns = len(data), st.st_mtime_ns, checked
        return same, False

    def failure(reason: str) -> tuple[_Failure, bool]:
        return _Failure(str(path), st.st_size, st.st_mtime_ns, sha, checked, reason, opts.key), True

    try:
        if file_type(name) in TEXT_TYPES:  # linear and bounded: no process needed
            parsed = parse_document(name, data, opts.limits)
        else:
            parsed = worker.parse(name, data, opts.limits)
    except DocumentError as exc:
        return failure(str(exc).removeprefix(f"{name}: "))
    del data
    chunks = chunk_blocks(parsed.blocks, name, opts.chunk_chars, opts.chunk_overlap)
    if len(chunks) > opts.max_chunks:
        return failure(
            f"makes {len(chunks):,} passages, over the limit of {opts.max_chunks:,} per file "
            "(max_chunks_per_file); split it or raise the limit"
        )
    tokens = [" ".join(tokenizer(c.text)) for c in chunks]
    if not any(tokens):
        return failure("has no searchable words")
    entry = _Entry(str(path), st.st_size, st.st_mtime_ns, sha, chunks, tokens, parsed.notes)
    entry.checked_ns = checked
    return entry, True


def _read(path: Path, root: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` (opened inside ``root``) and its ``fstat``; DocumentError
    with the reason when it cannot or must not be read."""
    try:
        fd, st = open_inside(path, root)
    except Outside as exc:
        raise DocumentError(str(exc)) from None
    except OSError as exc:
        raise DocumentError(f"cannot be read: {exc.strerror or exc}") from None
    try:
        if st.st_size > limit:
            raise DocumentError(
                f"is {st.st_size / 2**20:.1f} MB, over the {limit / 2**20:.3g} MB size limit"
            )
        data = read_bounded(fd, limit)
    except OSError as exc:
        raise DocumentError(f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DocumentError(str(exc)) from None
    finally:
        os.close(fd)
    if not data:
        raise DocumentError("the file is empty")
    return data, st


def refresh_index(
    index_dir: Path,
    sources: Sequence[Source | tuple[str, Path]],
    tokenizer: Tokenizer,
    *,
    chunk_chars: int = 1000,
    chunk_overlap: int = 150,
    max_file_bytes: int = 50 * 2**20,
    max_chunks: int = 20_000,
    limits: ParseLimits | None = None,
    lock_timeout_s: float = 60.0,
    report: IndexReport | None = None,
) -> tuple[BM25Index, IndexReport]:
    """Bring the index in ``index_dir`` up to date with ``sources`` and return it with a
    report of what was parsed, reused, removed and failed. A source is (display name,
    path, the resolved folder it must stay inside); a (name, path) pair stays inside
    ``path`` itself. ``limits`` bound what one file may cost to parse, ``max_chunks`` the
    passages it may make. If ``index_dir`` cannot be written, or another refresh holds it
    past ``lock_timeout_s``, the index is made in memory and a note says so."""
    t0 = time.perf_counter()
    report = report or IndexReport()
    report.index_dir = str(index_dir)
    opts = _Options(chunk_chars, chunk_overlap, max_file_bytes, max_chunks,
                    limits or ParseLimits())  # fmt: skip
    run = _Refresh(index_dir, [_as_source(s) for s in sources], tokenizer, opts, report)
    start_failed = list(report.failed)
    trust_stored = True
    with ParseWorker() as run.worker:
        for attempt in range(_ATTEMPTS + 1):
            report.parsed, report.reused, report.removed = [], [], []
            report.failed = list(start_failed)
            with _DirLock(index_dir, lock_timeout_s) as lock:
                ident = _manifest_id(index_dir) if lock.usable else None
                stored = run.load_stored() if lock.usable else _Stored()
            if lock.busy:  # the last good index, read without the lock (written atomically)
                stored = run.load_stored()
            if not trust_stored:
                stored = _Stored(stored.generation)
            entries = run.read_files(stored)
            force = attempt == _ATTEMPTS  # others kept saving: save what there is
            if force and not _fill_tokens(index_dir, stored, entries, report):
                run.reparse_untokenised(entries)
            status, retriever = _commit(run, stored, ident, entries, lock_timeout_s, force)
            if status == "done":
                break
            if status == "tokens lost":
                trust_stored = False
    report.parsed.sort()
    report.reused.sort()
    report.notes.extend((n, note) for n, e in entries.items() for note in e.notes)
    report.notes[:] = list(dict.fromkeys(report.notes))  # an attempt may repeat a note
    for name, reason in report.failed:
        log.warning("retrieval: %s: %s", name, reason)
    chunks = [c for e in entries.values() for c in e.chunks]
    report.chunks = len(chunks)
    report.seconds = time.perf_counter() - t0
    log.info("retrieval index %s: %s", index_dir, report.summary())
    return BM25Index(chunks, retriever, tokenizer), report


class _Refresh:
    """What one refresh reads the files with, and the entries it parsed so far (kept
    when an attempt starts again)."""

    def __init__(
        self,
        index_dir: Path,
        sources: list[Source],
        tokenizer: Tokenizer,
        opts: _Options,
        report: IndexReport,
    ) -> None:
        self.index_dir = index_dir
        self.sources = sorted(sources)
        self.names = {name for name, _, _ in self.sources}
        self.tokenizer = tokenizer
        self.opts = opts
        self.report = report
        self.settings = _settings(tokenizer, opts.chunk_chars, opts.chunk_overlap)
        self.worker: ParseWorker | None = None
        #: what this refresh read, by name (kept when an attempt starts again)
        self.memo: dict[str, _Entry | _Failure] = {}
        self.failures: dict[str, _Failure] = {}  # of this attempt
        self.t0 = self.last_note = time.perf_counter()

    def load_stored(self) -> _Stored:
        return _load_stored(self.index_dir, self.settings, self.report)

    def read_files(self, stored: _Stored) -> dict[str, _Entry]:
        """Each file's entry, reused from ``stored`` or this refresh where unchanged;
        fills in the report's parsed, reused, failed and removed."""
        entries: dict[str, _Entry] = {}
        self.failures = {}
        for source in self.sources:
            name = source[0]
            old = self.memo.get(name) or stored.entries.get(name) or stored.failures.get(name)
            entry = self.process(source, old)
            if entry is not None:
                entries[name] = entry
        self.report.removed = sorted(n for n in stored.entries if n not in self.names)
        return entries

    def reparse_untokenised(self, entries: dict[str, _Entry]) -> None:
        """Read again the reused entries whose stored tokens are lost."""
        for source in self.sources:
            old = entries.get(source[0])
            if old is not None and old.tokens is None:
                self.report.reused.remove(source[0])
                fresh = self.process(source, None)
                if fresh is None:
                    del entries[source[0]]
                else:
                    entries[source[0]] = fresh

    def process(self, source: Source, old: _Entry | _Failure | None) -> _Entry | None:
        if self.worker is None:
            raise RuntimeError("retrieval: a refresh read files without its parse worker")
        report, name = self.report, source[0]
        found, fresh = _process(source, old, self.tokenizer, self.opts, self.worker)
        entry = found if isinstance(found, _Entry) else None
        if isinstance(found, str):
            report.failed.append((name, found))
        elif isinstance(found, _Failure):
            report.failed.append((name, found.reason))
            self.failures[name] = self.memo[name] = found
        elif entry is not None:
            if fresh:
                self.memo[name] = entry
            (report.parsed if entry is self.memo.get(name) else report.reused).append(name)
        now = time.perf_counter()
        if now - self.last_note > 5:  # a big corpus: say how far it got
            self.last_note = now
            done = len(report.parsed) + len(report.reused) + len(report.failed)
            log.info("retrieval: %d/%d files read (%.0f s)", done, len(self.sources), now - self.t0)
        return entry


def _as_source(source: Source | tuple[str, Path]) -> Source:
    if len(source) == 3:
        return source  # type: ignore[return-value]
    name, path = source
    return name, Path(path), Path(os.path.realpath(path))


def _commit(
    run: _Refresh,
    stored: _Stored,
    ident: tuple[int, int, int] | None,
    entries: dict[str, _Entry],
    lock_timeout_s: float,
    force: bool,
) -> tuple[str, Any]:
    """Under the lock: the BM25 matrix (loaded, or rebuilt from the tokens; None when
    nothing was indexed), saved with the manifest: ("done", matrix). ("again", None):
    another refresh saved since ``stored`` was read; ("tokens lost", None): the stored
    tokens are unreadable (start again, parsing the files)."""
    index_dir, report, failures = run.index_dir, run.report, run.failures
    with _DirLock(index_dir, lock_timeout_s) as lock:
        if lock.usable and not force and ident is not None and _manifest_id(index_dir) != ident:
            return "again", None
        if not lock.usable:
            _note_unsaved(report, index_dir, lock.problem)
        unchanged = (
            not report.parsed
            and len(entries) == len(stored.entries)
            and all(stored.entries.get(n) is e for n, e in entries.items())
        )
        retriever = None
        if stored.generation and unchanged:
            retriever = _load_bm25(index_dir / stored.generation, report)
        if retriever is None and any(e.chunks for e in entries.values()):
            if not _fill_tokens(index_dir, stored, entries, report):
                return "tokens lost", None
            retriever = _build_bm25(entries)
            report.rebuilt = True
        if lock.usable:
            dirty = (
                report.rebuilt
                or not unchanged
                or any(e.checked_ns != stored.checked.get(n) for n, e in entries.items())
                or failures.keys() != stored.failures.keys()
                or any(f is not stored.failures[n] for n, f in failures.items())
            )
            gen = stored.generation
            _persist(index_dir, run.settings, gen, entries, failures, retriever, report, dirty)
    return "done", retriever


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


def _fill_tokens(
    index_dir: Path, stored: _Stored, entries: dict[str, _Entry], report: IndexReport
) -> bool:
    """Fill in the reused entries' tokens from the stored generation; False (and a note)
    if they are needed and cannot be read."""
    if all(e.tokens is not None for e in entries.values()):
        return True
    try:
        saved = _read_json(index_dir / str(stored.generation) / "tokens.json")
        position = 0
        for name, entry in stored.entries.items():  # stored in the manifest's order
            if entries.get(name) is entry and entry.tokens is None:
                entry.tokens = saved[position : position + len(entry.chunks)]
            position += len(entry.chunks)
        if position != len(saved):
            raise ValueError(f"{len(saved)} token lists for {position} chunks")
        return True
    except (OSError, ValueError, TypeError) as exc:
        report.notes.append(("(index)", f"stored tokens unreadable, parsing again ({exc})"))
        return False


def _persist(
    index_dir: Path,
    settings: dict[str, Any],
    gen: str | None,
    entries: dict[str, _Entry],
    failures: dict[str, _Failure],
    retriever: Any,
    report: IndexReport,
    dirty: bool = True,
) -> None:
    """Write a new generation if the matrix was rebuilt, then the manifest (unless
    nothing in it changed); drop the rest. A failure to write leaves a working in-memory
    index and a note."""
    try:
        if retriever is None:
            gen = None
        elif report.rebuilt:
            gen = _write_generation(index_dir, entries, retriever)
        if dirty or retriever is None:
            _write_manifest(index_dir, settings, gen, entries, failures)
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
    index_dir: Path,
    settings: dict[str, Any],
    gen: str | None,
    entries: dict[str, _Entry],
    failures: dict[str, _Failure],
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
    manifest = {
        "format": INDEX_FORMAT, "settings": settings, "generation": gen, "files": files,
        "failed": {name: asdict(f) for name, f in failures.items()},
    }  # fmt: skip
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
