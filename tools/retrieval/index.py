"""Tokenising, the in-memory BM25 index (bm25s) over chunks, and the report of a refresh.

How the index is stored and refreshed incrementally is in :mod:`.store`.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .chunks import Chunk

__all__ = ["Tokenizer", "IndexReport", "BM25Index", "BM25_PARAMS"]

log = logging.getLogger("qwen_agent.tools.retrieval")

BM25_PARAMS = {"method": "lucene", "k1": 1.5, "b": 0.75}

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]")
_WORD = re.compile(r"\w\w+|\d")  # _TOKEN's words, for text without CJK
_STOPWORDS = {
    "english": "STOPWORDS_EN_PLUS", "german": "STOPWORDS_GERMAN", "dutch": "STOPWORDS_DUTCH",
    "french": "STOPWORDS_FRENCH", "spanish": "STOPWORDS_SPANISH",
    "portuguese": "STOPWORDS_PORTUGUESE", "italian": "STOPWORDS_ITALIAN",
    "russian": "STOPWORDS_RUSSIAN", "swedish": "STOPWORDS_SWEDISH",
    "norwegian": "STOPWORDS_NORWEGIAN", "danish": "STOPWORDS_DANISH",
    "turkish": "STOPWORDS_TURKISH", "chinese": "STOPWORDS_CHINESE",
}  # fmt: skip


class Tokenizer:
    """Lowercase words (two or more letters, or a number), minus ``language``'s stopwords
    (bm25s' lists; for English its NLTK list, which has the question words), stemmed with
    PyStemmer when it is installed and ``stem`` is set. Runs of CJK characters become
    overlapping character pairs. Documents and queries go through the same instance."""

    def __init__(self, language: str = "english", stem: bool = True) -> None:
        import bm25s.stopwords

        if language not in _STOPWORDS:
            from qwen_agent.errors import ConfigError

            raise ConfigError(
                f"retrieval: unknown language {language!r}; choose one of "
                + ", ".join(sorted(_STOPWORDS))
            )
        self.language = language
        self._stop = frozenset(getattr(bm25s.stopwords, _STOPWORDS[language]))
        self._stemmer: Any = None
        self._stems: dict[str, str] = {}  # word -> stem, shared by documents and queries
        self._stem_lock = threading.Lock()  # a PyStemmer object is not thread-safe
        if stem:
            try:
                import Stemmer  # PyStemmer
            except ImportError:
                log.info("PyStemmer is not installed; retrieval indexes words unstemmed")
            else:
                if language in Stemmer.algorithms():
                    self._stemmer = Stemmer.Stemmer(language)

    @property
    def settings(self) -> dict[str, Any]:
        return {"language": self.language, "stem": self._stemmer is not None, "cjk": "bigram"}

    def __call__(self, text: str) -> list[str]:
        stop = self._stop
        text = text.lower()
        if _CJK_RUN.search(text) is None:  # the common case, a third faster
            words = [w for w in _WORD.findall(text) if w not in stop]
        else:
            words = []
            for tok in _TOKEN.findall(text):
                if _CJK_RUN.match(tok):
                    words.extend(tok[i : i + 2] for i in range(max(1, len(tok) - 1)))
                elif (len(tok) > 1 or tok.isdigit()) and tok not in stop:
                    words.append(tok)
        return self._stem(words) if self._stemmer is not None and words else words

    def _stem(self, words: list[str]) -> list[str]:
        stems = self._stems
        try:
            return list(map(stems.__getitem__, words))  # every word seen before
        except KeyError:
            pass
        with self._stem_lock:  # only the lock's holder adds or clears
            if len(stems) > 1_000_000:  # a bound on memory for huge vocabularies
                stems.clear()
            unique = list(set(words))
            new = [w for w in unique if w not in stems]
            stems.update(zip(new, self._stemmer.stemWords(new), strict=True))
            local = {w: stems[w] for w in unique}
        return [local[w] for w in words]


@dataclass
class IndexReport:
    """What a refresh did. File names are display names (relative to the knowledge root)."""

    index_dir: str = ""
    #: new or changed files, parsed this time
    parsed: list[str] = field(default_factory=list)
    #: unchanged files whose chunks were taken from the stored index
    reused: list[str] = field(default_factory=list)
    #: files in the stored index that are gone now
    removed: list[str] = field(default_factory=list)
    #: (file, reason) for each file that could not be indexed
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: files in the given folders with a type no parser reads
    skipped: list[str] = field(default_factory=list)
    #: (file, note) for things that were read anyway (a page left out, an encoding)
    notes: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    #: whether the BM25 matrix was rebuilt (False: loaded as stored)
    rebuilt: bool = False
    seconds: float = 0.0

    @property
    def indexed(self) -> list[str]:
        return sorted(self.parsed + self.reused)

    def summary(self) -> str:
        return (
            f"{len(self.indexed)} files indexed ({len(self.parsed)} parsed, "
            f"{len(self.reused)} unchanged), {self.chunks} chunks, {len(self.failed)} failed, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped, in {self.seconds:.2f} s"
        )


class BM25Index:
    """The chunks and their BM25 retriever, read-only once made (a refresh makes a new
    one), so searches need no lock."""

    def __init__(self, chunks: list[Chunk], retriever: Any, tokenizer: Tokenizer) -> None:
        self.chunks = chunks
        self.retriever = retriever
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.chunks)

    def search(self, query: str, k: int) -> list[tuple[Chunk, float]]:
        """The best ``k`` chunks for ``query`` with their scores, best first; chunks that
        share no word with the query are left out."""
        tokens = self.tokenizer(query)
        if not tokens or self.retriever is None or not self.chunks:
            return []
        k = max(1, min(k, len(self.chunks)))
        docs, scores = self.retriever.retrieve([tokens], k=k, show_progress=False, n_threads=0)
        return [
            (self.chunks[int(i)], float(s))
            for i, s in zip(docs[0], scores[0], strict=True)
            if s > 0
        ]
