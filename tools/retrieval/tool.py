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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qwen_agent.errors import ConfigError, ToolCallError
from qwen_agent.tool import Tool

from .chunks import Chunk
from .index import BM25Index, IndexReport, Tokenizer
from .parsers import SUPPORTED
from .store import refresh_index

__all__ = ["Retrieval", "Hit", "default_index_dir", "find_files"]

#: the most passages one call may ask for
MAX_TOP_K = 20


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
) -> tuple[list[tuple[str, Path]], list[str], list[tuple[str, str]]]:
    """The supported files under ``paths`` as (display name, path), the skipped ones and
    the given files that cannot be indexed. Names are relative to ``root``, or (None) to
    the one folder given, or else to each given path's own folder (``docs/a.md`` for the
    folder ``docs``, ``x.pdf`` for the file). Inside folders, hidden files and folders are
    left out, and so are symlinks that lead out of the folder given. ConfigError for a path
    that does not exist, or more than ``max_files`` documents."""
    found: dict[str, Path] = {}
    skipped: list[str] = []
    failed: list[tuple[str, str]] = []
    budget = max(100_000, 50 * max_files)  # files looked at, documents or not

    def add(path: Path, explicit: bool, base: Path) -> None:
        name = _display(path, base)
        if path.suffix.lower() not in SUPPORTED:
            if explicit:
                kinds = ", ".join(sorted(SUPPORTED))
                failed.append((name, f"unsupported file type {path.suffix!r}; supported: {kinds}"))
            else:
                skipped.append(name)
        elif name in found and found[name] != path:
            failed.append((name, "another given file has the same name"))
        else:
            found[name] = path
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
            add(path, explicit=True, base=base)
        elif path.is_dir():
            inside = path.resolve()
            for folder, dirs, names in os.walk(path):  # does not follow folder symlinks
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for n in sorted(names):
                    p = Path(folder, n)
                    if n.startswith(".") or not p.is_file():
                        continue
                    if p.is_symlink() and not p.resolve().is_relative_to(inside):
                        skipped.append(_display(p, base))
                        continue
                    add(p, explicit=False, base=base)
        else:
            raise ConfigError(f"retrieval: {path} does not exist (or is not a file or folder)")
    return sorted(found.items()), skipped, failed


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
        lazy: index on the first call instead of now.
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
        self.tokenizer = Tokenizer(language, stem)
        self._lock = threading.Lock()
        #: the index and the report of the refresh that made it, replaced as one
        self._state: tuple[BM25Index, IndexReport] | None = None
        self._sources, self._skipped, self._unsupported = find_files(
            self.paths, self.root, max_files
        )
        #: the description without the documents' names (None: given by the user, kept)
        self._base_description = None if description is not None else self.description
        if self._base_description is not None:
            self.description = _describe(self._base_description, [n for n, _ in self._sources])
        if not lazy:
            self.refresh(rescan=False)

    # -- indexing -----------------------------------------------------------------------
    def refresh(self, rescan: bool = True) -> IndexReport:
        """(Re)index: parse new and changed files, drop deleted ones; returns the report.
        ``rescan`` looks through the folders again for files added since."""
        with self._lock:
            if rescan:
                self._sources, self._skipped, self._unsupported = find_files(
                    self.paths, self.root, self.max_files
                )
            report = IndexReport(skipped=list(self._skipped), failed=list(self._unsupported))
            self._state = refresh_index(
                self.index_dir,
                self._sources,
                self.tokenizer,
                chunk_chars=self.chunk_chars,
                chunk_overlap=self.chunk_overlap,
                max_file_bytes=self.max_file_bytes,
                report=report,
            )
            if self._base_description is not None:  # name what can be found, not what failed
                self.description = _describe(self._base_description, self._state[1].indexed)
            return self._state[1]

    def _ready(self) -> tuple[BM25Index, IndexReport]:
        """The index and its report, indexing first if that was not done yet (``lazy``)."""
        state = self._state
        if state is None:
            with self._lock:
                state = self._state
            if state is None:
                self.refresh(rescan=False)
                state = self._state
        if state is None:
            raise RuntimeError("retrieval: refresh() did not make an index")
        return state

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
        found = self._ready()[0].search(query, k)
        return [Hit(chunk, score, rank) for rank, (chunk, score) in enumerate(found, 1)]

    def call(self, query: str, top_k: int | None = None) -> str:  # type: ignore[override]
        index, report = self._ready()
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
