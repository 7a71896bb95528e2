"""Chunking: a document's blocks become passages of about ``max_chars`` characters.

Passages break at paragraph boundaries where they can, inside a paragraph at sentence
ends, and inside an over-long sentence at a space (or anywhere, for text without spaces).
A passage never spans two PDF pages, so its page number is exact; a heading starts a new
passage unless the current one is still short. Consecutive passages of the same page share
up to ``overlap`` characters (whole sentences) so a fact cut by a boundary is still found.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .parsers import Block

__all__ = ["Chunk", "chunk_blocks"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage and where it comes from: the file's display name (relative to the
    knowledge root), the PDF page (from 1), the nearest heading above it, its number in
    the file (from 0) and its character offset in the file's extracted text."""

    file: str
    index: int
    text: str
    offset: int = 0
    page: int | None = None
    heading: str | None = None

    def source(self) -> str:
        """How a citation names it: ``report.pdf, page 3``, ``guide.md, "Install"``, or
        ``notes.txt, part 2``."""
        if self.page is not None:
            return f"{self.file}, page {self.page}"
        if self.heading:
            heading = self.heading if len(self.heading) <= 80 else self.heading[:77] + "..."
            return f'{self.file}, "{heading}"'
        return f"{self.file}, part {self.index + 1}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "index": self.index,
            "offset": self.offset,
            "page": self.page,
            "heading": self.heading,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Chunk:
        return cls(
            file=data["file"],
            index=data["index"],
            text=data["text"],
            offset=data.get("offset", 0),
            page=data.get("page"),
            heading=data.get("heading"),
        )


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    offset: int
    page: int | None
    heading: str | None  # the heading in force here
    para_start: bool  # first piece of its block
    is_heading: bool


# a sentence ends at . ! ? ; followed by a space, or at a CJK full stop
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+(?=\S)|(?<=[。！？；])")


def _pieces(text: str, max_chars: int) -> Iterator[tuple[int, str]]:
    """(offset, piece) of ``text`` cut into sentences, and sentences longer than
    ``max_chars`` cut at spaces (or hard, where there are none)."""
    start = 0
    ends = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for end in ends:
        sentence = text[start:end].strip()
        if sentence:
            base = text.index(sentence, start)
            yield from _split_long(sentence, base, max_chars)
        start = end
    return


def _split_long(sentence: str, base: int, max_chars: int) -> Iterator[tuple[int, str]]:
    pos = 0
    while len(sentence) - pos > max_chars:
        cut = sentence.rfind(" ", pos, pos + max_chars + 1)
        if cut <= pos:
            cut = pos + max_chars
        yield base + pos, sentence[pos:cut].strip()
        pos = cut
        while pos < len(sentence) and sentence[pos] == " ":
            pos += 1
    if pos < len(sentence):
        yield base + pos, sentence[pos:]


def _units(blocks: Sequence[Block], max_chars: int) -> Iterator[_Unit]:
    heading: str | None = None
    for block in blocks:
        if block.heading:
            heading = block.text
        if len(block.text) <= max_chars:
            yield _Unit(block.text, block.offset, block.page, heading, True, block.heading)
            continue
        for i, (off, piece) in enumerate(_pieces(block.text, max_chars)):
            yield _Unit(piece, block.offset + off, block.page, heading, i == 0, block.heading)


def chunk_blocks(
    blocks: Sequence[Block], file: str, max_chars: int = 1000, overlap: int = 150
) -> list[Chunk]:
    """Cut ``blocks`` (one document, in order) into :class:`Chunk` passages of at most
    about ``max_chars`` characters, consecutive ones sharing up to ``overlap``."""
    if max_chars < 50:
        raise ValueError(f"max_chars must be >= 50, got {max_chars}")
    overlap = max(0, min(overlap, max_chars // 2))
    min_chars = max_chars // 4  # below this a heading does not start a new passage
    chunks: list[Chunk] = []
    current: list[_Unit] = []
    size = 0

    def emit() -> None:
        first = current[0]
        parts = [first.text]
        for u in current[1:]:
            parts.append(("\n\n" if u.para_start else " ") + u.text)
        chunks.append(
            Chunk(file, len(chunks), "".join(parts), first.offset, first.page, first.heading)
        )

    for unit in _units(blocks, max_chars):
        if current:
            keep: list[_Unit] = []
            if unit.page != current[0].page or (unit.is_heading and size >= min_chars):
                emit()
            elif size + 2 + len(unit.text) > max_chars:
                emit()
                keep = _tail(current, overlap)
            else:
                current.append(unit)
                size += 2 + len(unit.text)
                continue
            current = keep
            size = sum(len(u.text) + 2 for u in keep)
        current.append(unit)
        size += len(unit.text)
    if current:
        emit()
    return chunks


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last whole units of a passage, at most ``overlap`` characters, never all."""
    tail: list[_Unit] = []
    total = 0
    for u in reversed(units[1:]):
        if u.is_heading or total + len(u.text) > overlap:
            break
        tail.insert(0, u)
        total += len(u.text) + 1
    return tail
