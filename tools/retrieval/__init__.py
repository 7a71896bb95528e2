"""The ``retrieval`` tool: BM25 search (bm25s) over the user's documents.

``Retrieval(files=[...])`` is the tool; it parses txt, md, html, pdf and docx files into
passages, keeps a persistent index that is refreshed incrementally, and returns the best
passages with their source for the model to cite. What one file may cost to parse is
bounded (:class:`ParseLimits`; html, pdf and docx are parsed in a worker process killed at
the deadline), and files are read only inside the folders given. Install with the ``rag``
extra; bm25s, pypdf, python-docx and selectolax are imported only when they are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Retrieval",
    "Hit",
    "IndexReport",
    "Chunk",
    "Block",
    "DocumentError",
    "ParseLimits",
    "Tokenizer",
    "chunk_blocks",
    "parse_document",
    "default_index_dir",
    "SUPPORTED",
]

_WHERE = {
    "Retrieval": "tool",
    "Hit": "tool",
    "default_index_dir": "tool",
    "IndexReport": "index",
    "Tokenizer": "index",
    "Chunk": "chunks",
    "chunk_blocks": "chunks",
    "Block": "parsers",
    "DocumentError": "parsers",
    "ParseLimits": "parsers",
    "parse_document": "parsers",
    "SUPPORTED": "parsers",
}

if TYPE_CHECKING:
    from .chunks import Chunk, chunk_blocks
    from .index import IndexReport, Tokenizer
    from .parsers import SUPPORTED, Block, DocumentError, ParseLimits, parse_document
    from .tool import Hit, Retrieval, default_index_dir


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
