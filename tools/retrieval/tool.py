"""The ``retrieval`` tool: BM25 search over the user's documents.

    rag = Retrieval(files=["docs/", "handbook.pdf"])
    agent = Agent(llm=..., tools=[rag])
    rag.report.failed        # [(file, reason), ...]: what could not be indexed

Folders are searched recursively for the types in
:data:`~qwen_agent.tools.retrieval.parsers.SUPPORTED` (hidden files and folders are left
out; other types are listed in ``report.skipped``). Files are named by their path relative
to ``root=``, or to the one folder given, or else to the folder each path was given in
(``docs/a.md``, ``x.pdf``); the model never sees a host path. The index persists in
``index_dir``, by default
``$QWEN_AGENT_CACHE_DIR/retrieval/<key>`` (else ``$XDG_CACHE_HOME/qwen-agent/...``, else
``~/.cache/qwen-agent/...``; on Windows ``%LOCALAPPDATA%\\qwen-agent\\cache``), where
``<key>`` is a hash of the given paths; reopening it parses only new and changed files.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qwen_agent.errors import ConfigError, ToolCallError, ToolError
from qwen_agent.tool import Tool

from .chunks import Chunk
from .index import BM25Index, IndexReport, Tokenizer
from .parsers import SUPPORTED, ParseLimits
from .store import Source, refresh_index

__all__ = ["Retrieval", "Hit", "default_index_dir", "find_files"]

#: the most passages one call may ask for
MAX_TOP_K = 20
#: how long a call waits for indexing that is under way when the tool has no ``timeout``
#: of its own: a little under the agent's default tool_timeout (60 s)
INDEX_WAIT_S = 50.0


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the chunk, its BM25 score and its rank (from 1)."""

    chunk: Chunk
    score: float
    rank: int

    @property
    def file(self) -> str:
        return self.chunk.file

    @property
    def page(self) -> int | None:
        return self.chunk.page

    def __repr__(self) -> str:
        return f"<Hit [{self.rank}] {self.chunk.source()} score={self.score:.2f}>"


def default_index_dir(paths: Sequence[str | os.PathLike[str]]) -> Path:
    """Where the index of ``paths`` lives unless ``index_dir`` is given (see the module
    docstring); the key is a hash of the resolved paths, so the same files share it."""
    base = os.environ.get("QWEN_AGENT_CACHE_DIR")
    if base:
        root = Path(base).expanduser()
    elif os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        root = Path(os.environ["LOCALAPPDATA"]) / "qwen-agent" / "cache"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "qwen-agent"
    resolved = sorted({str(Path(p).expanduser().resolve()) for p in paths})
    key = hashlib.sha256("\n".join(resolved).encode()).hexdigest()[:16]
    return root / "retrieval" / key


def find_files(
    paths: Sequence[Path], root: Path | None, max_files: int
) -> tuple[list[Source], list[str], list[tuple[str, str]]]:
    """The supported files under ``paths`` as (display name, path, the resolved folder it
    must stay inside when read: the folder given, or the file itself when it was given by
    name), the skipped ones and the given files that cannot be indexed. Names are
    relative to ``root``, or (None) to
    the one folder given, or else to each given path's own folder (``docs/a.md`` for the
    folder ``docs``, ``x.pdf`` for the file). Inside folders, hidden files and folders are
    left out, and so are symlinks that lead out of the folder given. ConfigError for a path
    that does not exist, or more than ``max_files`` documents."""
    found: dict[str, Path] = {}
    inside_of: dict[str, Path] = {}
    skipped: list[str] = []
    failed: list[tuple[str, str]] = []
    budget = max(100_000, 50 * max_files)  # files looked at, documents or not

    def add(path: Path, name: str, explicit: bool, inside: Path) -> None:
        suffix = os.path.splitext(name)[1]
        if suffix.lower() not in SUPPORTED:
            if explicit:
                kinds = ", ".join(sorted(SUPPORTED))
                suffix = path.suffix
                failed.append((name, f"unsupported file type {suffix!r}; supported: {kinds}"))
            else:
                skipped.append(name)
        elif name in found and found[name] != path:
            failed.append((name, "another given file has the same name"))
        else:
            found[name] = path
            inside_of[name] = inside
        if len(found) > max_files or len(skipped) > budget:
            raise ConfigError(
                f"retrieval: more than max_files={max_files} documents (or {budget} files) "
                "under the given paths; point files at a smaller folder or raise max_files"
            )

    for path in paths:
        base = root if root is not None else path.parent
        if root is None and len(paths) == 1 and path.is_dir():
            base = path  # one folder: names inside it ("guide.txt")
        if path.is_file():
            add(path, _display(path, base), explicit=True, inside=path.resolve())
        elif path.is_dir():
            inside = path.resolve()
            for folder, entries in _walk(str(path)):
                prefix, where = _prefix(folder, base), Path(folder)
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False) or not entry.is_file():
                        continue
                    name, file = prefix + entry.name, where / entry.name
                    if entry.is_symlink() and not file.resolve().is_relative_to(inside):
                        skipped.append(name)
                        continue
                    add(file, name, explicit=False, inside=inside)
        else:
            raise ConfigError(f"retrieval: {path} does not exist (or is not a file or folder)")
    return [(n, p, inside_of[n]) for n, p in sorted(found.items())], skipped, failed


def _walk(top: str) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """(folder, its entries but hidden ones, by name) for ``top`` and the folders below,
    in ``os.walk``'s order; links to folders are not followed. ``scandir``'s entries
    know their type, so a file costs no ``stat`` here (20,000 files: a second less)."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(
                    (e for e in listing if not e.name.startswith(".")), key=lambda e: e.name
                )
        except OSError:  # unreadable: left out, as os.walk does
            continue
        yield folder, entries
        stack.extend(reversed([e.path for e in entries if e.is_dir(follow_symlinks=False)]))


def _prefix(folder: str, base: Path) -> str:
    """What the names of the files in ``folder`` start with: its path relative to
    ``base`` and a slash ("" for ``base`` itself, or a folder outside it)."""
    try:
        rel = Path(folder).relative_to(base).as_posix()
    except ValueError:
        return ""
    return "" if rel == "." else rel + "/"


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


class Retrieval(Tool):
    """Searches the given documents (txt, md, html, pdf, docx) with BM25 and returns the
    best passages, numbered for citation, with their file and page or section.

    Args:
        files: files and folders to index (folders recursively), as paths.
        index_dir: where the index persists; default: :func:`default_index_dir`.
        top_k: passages returned per query unless the call asks for another number.
        max_file_mb: larger files are not indexed (reported in ``errors``).
        max_files: a ConfigError if the paths hold more documents than this.
        chunk_chars: the size of a passage in characters (about 150-200 English words).
        chunk_overlap: characters shared by consecutive passages.
        language: stopwords and stemming (english, german, french, chinese, ...).
        stem: stem words (PyStemmer) where the language has a stemmer.
        root: the folder names are relative to; default: each given path's own folder.
        name, description: override the tool's name (several retrieval tools in one agent)
            and description.
        lazy: index on the first call instead of now (in the background: a call that finds
            indexing under way waits for it at most until a little before the tool's
            deadline, then says to try again).
        max_chars_per_file: a file whose text is longer is not indexed (``errors`` says
            why); it also bounds what a .docx may unzip to.
        max_chunks_per_file: a file that makes more passages is not indexed.
        max_pdf_pages: a PDF with more pages is not indexed.
        parse_timeout_s: a file that takes longer to parse is not indexed (html, pdf and
            docx are parsed in a worker process that is killed at this deadline).
        lock_timeout_s: how long to wait for another process that is saving the same
            index; past it the last saved index is used and the result kept in memory.
        timeout: seconds a call may take (the agent's ``tool_timeout`` when None).
    """

    name = "retrieval"
    description = (
        "Search the user's documents for passages relevant to a query and return the best "
        "ones with their source (file and page or section), numbered [1], [2], ... so you "
        "can cite them. Use distinctive keywords from the question."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "keywords or a question to search for"},
            "top_k": {
                "type": "integer",
                "description": "how many passages to return",
                "minimum": 1,
                "maximum": MAX_TOP_K,
            },
        },
        "required": ["query"],
    }

    def __init__(
        self,
        *,
        files: Sequence[str | os.PathLike[str]] | str | None = None,
        index_dir: str | os.PathLike[str] | None = None,
        top_k: int = 4,
        max_file_mb: float = 50.0,
        max_files: int = 2000,
        chunk_chars: int = 1000,
        chunk_overlap: int = 150,
        language: str = "english",
        stem: bool = True,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        description: str | None = None,
        lazy: bool = False,
        max_chars_per_file: int = 5_000_000,
        max_chunks_per_file: int = 20_000,
        max_pdf_pages: int = 5_000,
        parse_timeout_s: float = 60.0,
        lock_timeout_s: float = 60.0,
        timeout: float | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        if description is not None:
            self.description = description
        super().__init__()
        if files is None:
            raise ConfigError(
                "retrieval needs files, the files and folders to search: "
                'Retrieval(files=["docs/"]), or in a config tools = [{name = "retrieval", '
                'files = ["docs/"]}]'
            )
        if isinstance(files, (str, os.PathLike)):
            files = [files]
        if not files:
            raise ConfigError("retrieval: files is empty; give the files or folders to search")
        if not all(isinstance(f, (str, os.PathLike)) for f in files):
            raise ConfigError(f"retrieval: files must be a list of paths, got {files!r:.200}")
        if not 1 <= top_k <= MAX_TOP_K:
            raise ConfigError(f"retrieval: top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        if max_file_mb <= 0 or max_files < 1:
            raise ConfigError("retrieval: max_file_mb and max_files must be positive")
        if not 50 <= chunk_chars <= 20_000 or not 0 <= chunk_overlap < chunk_chars:
            raise ConfigError(
                "retrieval: chunk_chars must be in 50..20000 and chunk_overlap in 0..chunk_chars"
            )
        if min(max_chars_per_file, max_chunks_per_file, max_pdf_pages) < 1:
            raise ConfigError(
                "retrieval: max_chars_per_file, max_chunks_per_file and max_pdf_pages must be "
                "positive"
            )
        if not (parse_timeout_s > 0 and lock_timeout_s >= 0 and (timeout is None or timeout > 0)):
            raise ConfigError(
                "retrieval: parse_timeout_s and timeout must be positive and lock_timeout_s "
                "not negative"
            )
        self.paths = [Path(p).expanduser().resolve() for p in files]
        self.root = Path(root).expanduser().resolve() if root is not None else None
        self.index_dir = (
            Path(index_dir).expanduser().resolve()
            if index_dir is not None
            else default_index_dir(self.paths)
        )
        self.top_k = top_k
        self.max_file_bytes = int(max_file_mb * 2**20)
        self.max_files = max_files
        self.chunk_chars, self.chunk_overlap = chunk_chars, chunk_overlap
        self.limits = ParseLimits(max_chars_per_file, max_pdf_pages, parse_timeout_s)
        self.max_chunks_per_file = max_chunks_per_file
        self.lock_timeout_s = lock_timeout_s
        self.timeout = timeout
        self.tokenizer = Tokenizer(language, stem)
        #: guards the fields below; held for moments only, never while indexing
        self._lock = threading.Lock()
        #: the index and the report of the refresh that made it, replaced as one
        self._state: tuple[BM25Index, IndexReport] | None = None
        self._installed = 0  # the number of the refresh that made _state
        self._started = 0  # refreshes started
        self._job: _Job | None = None  # the background indexing of a lazy tool
        self._sources, self._skipped, self._unsupported = find_files(
            self.paths, self.root, max_files
        )
        #: the description without the documents' names (None: given by the user, kept)
        self._base_description = None if description is not None else self.description
        if self._base_description is not None:
            self.description = _describe(self._base_description, [n for n, _, _ in self._sources])
        if not lazy:
            self.refresh(rescan=False)

    # -- indexing -----------------------------------------------------------------------
    def refresh(self, rescan: bool = True) -> IndexReport:
        """(Re)index: parse new and changed files, drop deleted ones; returns the report.
        ``rescan`` looks through the folders again for files added since. No lock of the
        tool is held while files are read: searches go on with the current index."""
        found = find_files(self.paths, self.root, self.max_files) if rescan else None
        with self._lock:
            if found is not None:
                self._sources, self._skipped, self._unsupported = found
            sources, skipped, unsupported = self._sources, self._skipped, self._unsupported
            self._started += 1
            number = self._started
        report = IndexReport(skipped=list(skipped), failed=list(unsupported))
        state = refresh_index(
            self.index_dir,
            sources,
            self.tokenizer,
            chunk_chars=self.chunk_chars,
            chunk_overlap=self.chunk_overlap,
            max_file_bytes=self.max_file_bytes,
            max_chunks=self.max_chunks_per_file,
            limits=self.limits,
            lock_timeout_s=self.lock_timeout_s,
            report=report,
        )
        with self._lock:
            if number > self._installed:  # a refresh that started later may finish first
                self._state, self._installed = state, number
                if self._base_description is not None:  # what can be found, not what failed
                    self.description = _describe(self._base_description, state[1].indexed)
        return report

    def _ready(self, wait: float | None = None) -> tuple[BM25Index, IndexReport]:
        """The index and its report. If there is none yet (``lazy``), indexing starts in
        the background and this waits for it at most ``wait`` seconds (None: until done);
        ToolError if it is still under way then."""
        state = self._state
        if state is not None:
            return state
        with self._lock:
            if self._state is not None:
                return self._state
            job = self._job
            if job is None:
                job = self._job = _Job()
                threading.Thread(
                    target=self._index_in_background, args=(job,), daemon=True,
                    name=f"retrieval-index-{self.name}",
                ).start()  # fmt: skip
        if not job.done.wait(wait):
            raise ToolError(
                f"retrieval: the documents are still being indexed ({len(self._sources)} "
                f"files, started {time.monotonic() - job.started:.0f} s ago); try the search "
                "again in a minute, or answer without the documents"
            )
        if job.error is not None:
            raise job.error
        state = self._state
        if state is None:
            raise RuntimeError("retrieval: refresh() did not make an index")
        return state

    def _index_in_background(self, job: _Job) -> None:
        try:
            self.refresh(rescan=False)
        except BaseException as exc:  # given to the callers waiting for it
            job.error = exc
        finally:
            with self._lock:
                self._job = None
            job.done.set()

    def _call_wait(self) -> float:
        """How long a call waits for indexing under way: most of the tool's deadline."""
        return INDEX_WAIT_S if self.timeout is None else 0.8 * self.timeout

    @property
    def index(self) -> BM25Index:
        """The current in-memory index (its ``chunks`` and bm25s ``retriever``)."""
        return self._ready()[0]

    @property
    def report(self) -> IndexReport:
        """What the last indexing did (indexing first, if ``lazy`` and not yet done)."""
        return self._ready()[1]

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(file, reason) for each file that could not be indexed."""
        return list(self.report.failed)

    # -- searching ----------------------------------------------------------------------
    def search(self, query: str, top_k: int | None = None) -> list[Hit]:
        """The best passages for ``query``, best first (at most ``top_k``)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolCallError(
                "retrieval: the query is empty; pass the words to search for, "
                'e.g. {"query": "refund policy"}'
            )
        k = self.top_k if top_k is None else top_k
        if isinstance(k, float) and k.is_integer():  # JSON's 3.0
            k = int(k)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TOP_K:
            raise ToolCallError(f"retrieval: top_k must be between 1 and {MAX_TOP_K}, got {k!r}")
        found = self._ready(self._call_wait())[0].search(query, k)
        return [Hit(chunk, score, rank) for rank, (chunk, score) in enumerate(found, 1)]

    def call(self, query: str, top_k: int | None = None) -> str:  # type: ignore[override]
        index, report = self._ready(self._call_wait())
        if not len(index):
            return _nothing_indexed(report)
        hits = self.search(query, top_k)
        if not hits:
            if not self.tokenizer(query):
                raise ToolCallError(
                    f"retrieval: the query {query!r} has only common words; "
                    "search for distinctive keywords instead"
                )
            return (
                f"No passage in the documents matches {query!r}. Try other keywords "
                "(synonyms, names, numbers) or answer without the documents."
            )
        return format_hits(query, hits)

    def __repr__(self) -> str:
        return f"<Retrieval {self.name!r} files={len(self._sources)} index_dir={self.index_dir}>"


class _Job:
    """Indexing under way in the background: set ``done`` when it ends, with ``error``
    if it failed."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.started = time.monotonic()


def format_hits(query: str, hits: Sequence[Hit]) -> str:
    """The passages as numbered sources, e.g. ``[1] report.pdf, page 3 (score 7.2)``."""
    lines = [
        f"{len(hits)} passage{'s' if len(hits) != 1 else ''} from the documents for "
        f"{query!r}, best first. Cite them by number, e.g. [1]."
    ]
    for hit in hits:
        lines.append(f"\n[{hit.rank}] {hit.chunk.source()} (score {hit.score:.2f})")
        lines.append(hit.chunk.text)
    return "\n".join(lines)


def _describe(base: str, names: list[str], most: int = 8) -> str:
    """The description plus the documents' names, so the model knows what it can find."""
    if not names:
        return base
    shown = ", ".join(names[:most])
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"{base} Documents: {shown}{more}."


def _nothing_indexed(report: IndexReport) -> str:
    failed = "; ".join(f"{f}: {r}" for f, r in report.failed[:10])
    more = f"; and {len(report.failed) - 10} more" if len(report.failed) > 10 else ""
    why = f" ({failed}{more})" if failed else " (no supported files were found)"
    return (
        "No documents are available to search: none of the configured files could be "
        f"indexed{why}. Tell the user, and answer without the documents."
    )
