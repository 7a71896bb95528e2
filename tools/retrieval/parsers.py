"""Document parsers: the bytes of a file become a list of :class:`Block` (paragraphs).

One parser per file type, each with a maintained library imported on first use:

- ``.txt``, ``.md``, ``.markdown``, ``.rst``: UTF-8 text (a UTF-8 or UTF-16 BOM is
  honoured; text that is not UTF-8 is read as Windows-1252 if it decodes, with a note).
  Markdown ``#`` lines become headings.
- ``.html``, ``.htm``: selectolax; visible text only (no script, style, template, hidden
  elements); ``h1``-``h6`` become headings, ``<title>`` the first one.
- ``.pdf``: pypdf; text per page (pages are numbered from 1). An encrypted PDF is read if
  the empty password opens it, otherwise it is refused.
- ``.docx``: python-docx; paragraphs and table rows in document order; "Heading N" and
  "Title" styles become headings.

What one file may cost is bounded by :class:`ParseLimits`: the characters of text it may
expand to, the pages of a PDF, the bytes a .docx may unzip to, and a deadline that the
parsers check between pages, paragraphs and nodes (the store also runs the html, pdf and
docx parsers in a worker process that is killed at the deadline: :mod:`.isolate`).

Every failure is a :class:`DocumentError` whose message names the file and says what is
wrong with it; no message carries a host path.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qwen_agent.errors import ToolError

__all__ = [
    "Block", "DocumentError", "Parsed", "ParseLimits", "Budget", "SUPPORTED", "TEXT_TYPES",
    "file_type", "parse_document",
]  # fmt: skip


class DocumentError(ToolError):
    """A document cannot be indexed: unsupported, unreadable, encrypted, corrupt, empty
    or too large. The message starts with the file's display name."""


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of a document: its text, the page it is on (PDF only) and whether it
    is a heading. ``offset`` is where it starts in the document's text (blocks joined by
    blank lines)."""

    text: str
    page: int | None = None
    heading: bool = False
    offset: int = 0


@dataclass(slots=True)
class Parsed:
    """What a parser found: the blocks and any notes (things that were read anyway but a
    person should know: a page that failed, a fallback encoding)."""

    blocks: list[Block]
    notes: list[str]


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one file may cost. ``max_chars``: characters of text it may expand to;
    ``max_pages``: pages of a PDF; ``timeout_s``: seconds to parse it (None: no deadline).
    A .docx may unzip to at most ``DOCX_BYTES_PER_CHAR * max_chars`` bytes plus its size."""

    max_chars: int = 5_000_000
    max_pages: int = 5_000
    timeout_s: float | None = 60.0


#: unzipped bytes of a .docx allowed per character of ``max_chars`` (its XML is verbose)
DOCX_BYTES_PER_CHAR = 16


class Budget:
    """The limits of one parse as it goes: :meth:`add` counts extracted text, :meth:`tick`
    checks the deadline; both raise ValueError (the reason) when a limit is passed."""

    __slots__ = ("limits", "chars", "deadline")

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.chars = 0
        timeout = limits.timeout_s
        self.deadline = time.monotonic() + timeout if timeout is not None else None

    def add(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > self.limits.max_chars:
            raise ValueError(over_chars(self.limits.max_chars))

    def tick(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ValueError(too_slow(self.limits.timeout_s))


def over_chars(limit: int) -> str:
    return (
        f"expands to more than {limit:,} characters of text, the limit per file "
        "(max_chars_per_file); split it or raise the limit"
    )


def too_slow(timeout: float | None) -> str:
    return (
        f"took longer than {timeout:g} s to parse, the limit per file (parse_timeout_s); "
        "it may be malformed or built to be slow"
    )


_BLANK = re.compile(r"\n\s*\n")
# the rest of the line is taken whole (a lazy group before optional trailing #s and spaces
# backtracks cubically on long runs of spaces); the closing #s are stripped in Python
_MD_HEADING = re.compile(r"\s{0,3}#{1,6}\s+(.*)")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


# -- text -------------------------------------------------------------------------------


def _decode(data: bytes, notes: list[str]) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise ValueError("is binary, not text (it has NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = exc.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise ValueError(
            f"is not UTF-8 text (undecodable byte at offset {bad}); save it as UTF-8"
        ) from None
    notes.append(f"not UTF-8 (first bad byte at offset {bad}); read as Windows-1252")
    return text


def _heading_text(rest: str) -> str:
    """A Markdown heading's text without its closing ``#`` sequence and spaces."""
    return rest.rstrip().rstrip("#").rstrip()


def _paragraphs(text: str, markdown: bool, budget: Budget | None = None) -> list[Block]:
    blocks: list[Block] = []
    for para in _BLANK.split(text.replace("\r\n", "\n")):
        if budget is not None:
            budget.tick()
        lines: list[str] = []
        for line in para.split("\n"):
            m = _MD_HEADING.match(line) if markdown else None
            if m:  # a heading is a block of its own, even without blank lines around it
                if lines:
                    blocks.append(Block(_clean(" ".join(lines))))
                    lines = []
                heading = _heading_text(m.group(1))
                if heading.strip():
                    blocks.append(Block(_clean(heading), heading=True))
            elif line.strip():
                lines.append(line)
        if lines:
            blocks.append(Block(_clean(" ".join(lines))))
    return blocks


def _parse_text(
    data: bytes, notes: list[str], budget: Budget, markdown: bool = False
) -> list[Block]:
    text = _decode(data, notes)
    budget.add(text)  # all of it is text: refused before it is split
    return _paragraphs(text, markdown, budget)


def _parse_markdown(data: bytes, notes: list[str], budget: Budget) -> list[Block]:
    return _parse_text(data, notes, budget, markdown=True)


# -- html -------------------------------------------------------------------------------

_HIDDEN_TAGS = [
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object",
    "embed", "canvas", "head", "select",
]  # fmt: skip
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 header hr html legend li main nav ol "
    "p pre section summary table tbody td tfoot th thead tr ul".split()
)
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _parse_html(data: bytes, notes: list[str], budget: Budget) -> list[Block]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_decode(data, notes))
    budget.tick()
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node is not None else ""
    for node in tree.css("[hidden], [style]"):
        if "hidden" in node.attributes or _DISPLAY_NONE.search(node.attributes.get("style") or ""):
            node.decompose()
    root = tree.body or tree.root
    if root is None:
        return []
    root.strip_tags(_HIDDEN_TAGS)
    budget.tick()
    blocks: list[Block] = [Block(title, heading=True)] if title else []
    parts: list[str] = []
    size = 0  # characters in parts
    owner: int | None = None  # the block element the current paragraph belongs to
    owner_tag = ""
    # one pass in document order: each element's nearest block element (itself or its
    # parent's), so finding a text node's block is one lookup, not a walk up the tree
    block_of: dict[int, tuple[int, str] | None] = {}

    def flush() -> None:
        nonlocal size
        text = _clean("".join(parts).replace("\n", " "))
        parts.clear()
        size = 0
        if text and not (owner_tag in _HEADINGS and blocks and blocks[-1].text == text):
            budget.add(text)
            blocks.append(Block(text, heading=owner_tag in _HEADINGS))

    for count, node in enumerate(root.traverse(include_text=True)):
        if not count & 1023:
            budget.tick()
        tag = node.tag
        if tag == "br":
            parts.append("\n")
            continue
        parent = node.parent
        above = block_of.get(parent.mem_id) if parent is not None else None
        if not node.is_text_node:
            block_of[node.mem_id] = (node.mem_id, tag) if tag in _BLOCK_TAGS else above
            continue
        key, tag = above if above is not None else (None, "")
        if key != owner:
            flush()
            owner, owner_tag = key, tag
        text = node.text_content or ""
        parts.append(text)
        size += len(text)
        if budget.chars + size > budget.limits.max_chars:  # one endless paragraph
            raise ValueError(over_chars(budget.limits.max_chars))
    flush()
    if title and len(blocks) > 1 and blocks[1].text == title:
        blocks.pop(0)  # <title> and the first <h1> often say the same thing
    return blocks


# -- pdf --------------------------------------------------------------------------------


def _parse_pdf(data: bytes, notes: list[str], budget: Budget) -> list[Block]:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    max_pages = budget.limits.max_pages
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ValueError("is an encrypted PDF that needs a password; save an unencrypted copy")
        declared = reader.root_object["/Pages"].get_object().get("/Count")
        if isinstance(declared, int) and declared > max_pages:  # refused before the tree walk
            raise ValueError(_too_many_pages(declared, max_pages))
        budget.tick()
        pages = reader.pages
        count = len(pages)  # the real count: the tree may repeat a node many times
    except DependencyError as exc:
        raise ValueError(f"cannot be decrypted: {exc}") from None
    except (PdfReadError, OSError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"is not a readable PDF ({type(exc).__name__}: {exc})") from None
    if count > max_pages:
        raise ValueError(_too_many_pages(count, max_pages))
    blocks: list[Block] = []
    failed: list[int] = []
    for number in range(1, count + 1):
        budget.tick()
        try:
            text = pages[number - 1].extract_text() or ""
        except Exception:  # one bad page must not lose the others; noted below
            failed.append(number)
            continue
        budget.add(text)
        text = _HYPHEN_BREAK.sub(r"\1\2", text)  # "infor-\nmation" -> "information"
        for block in _paragraphs(text, markdown=False):
            blocks.append(Block(block.text, page=number))
    if failed:
        if len(failed) == count:
            raise ValueError(f"is not a readable PDF: no page could be read ({count} pages)")
        notes.append(f"pages {', '.join(map(str, failed))} could not be read and were left out")
    if not blocks and count:
        raise ValueError(
            f"has no extractable text in its {count} page(s) (scanned images? run OCR first)"
        )
    return blocks


def _too_many_pages(count: int, limit: int) -> str:
    return (
        f"has {count:,} pages, over the limit of {limit:,} pages per PDF (max_pdf_pages); "
        "split it or raise the limit"
    )


# -- docx -------------------------------------------------------------------------------


def _check_unzipped_size(data: bytes, budget: Budget) -> None:
    """Refuse a .docx whose parts unzip to more than the limit, before any is read (the
    sizes in the zip's directory are enforced when a part is read: a lie is an error)."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # python-docx says what is wrong with it
    limit = DOCX_BYTES_PER_CHAR * budget.limits.max_chars + len(data)
    if unzipped > limit:
        raise ValueError(
            f"unzips to {unzipped / 2**20:,.0f} MB, over the limit of {limit / 2**20:,.0f} MB "
            f"for a .docx ({DOCX_BYTES_PER_CHAR} bytes per character of max_chars_per_file)"
        )


def _parse_docx(data: bytes, notes: list[str], budget: Budget) -> list[Block]:
    import zipfile

    import docx
    from docx.table import Table

    _check_unzipped_size(data, budget)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValueError(
            "is not a readable .docx file (a password-protected or old .doc file "
            f"cannot be read; {type(exc).__name__}: {exc})"
        ) from None
    except Exception as exc:  # python-docx raises its own and lxml's errors
        raise ValueError(f"is not a readable .docx file ({type(exc).__name__}: {exc})") from None
    names = {style.style_id: style.name or "" for style in document.styles}
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        budget.tick()
        if isinstance(item, Table):
            for row in item.rows:
                budget.tick()
                cells: list[str] = []
                for cell in row.cells:
                    text = _clean(cell.text.replace("\n", " "))
                    if text and (not cells or cells[-1] != text):  # merged cells repeat
                        budget.add(text)
                        cells.append(text)
                if cells:
                    blocks.append(Block(" | ".join(cells)))
            continue
        text = _clean(item.text.replace("\n", " "))
        if not text:
            continue
        budget.add(text)
        style = _style_name(item, names)
        blocks.append(Block(text, heading=style.startswith("Heading") or style == "Title"))
    return blocks


def _style_name(paragraph: Any, names: dict[str, str]) -> str:
    """The paragraph's style name. ``paragraph.style`` looks the default style up among
    all styles on every call (milliseconds a paragraph); the style id is read from the
    paragraph's XML and named from a table made once."""
    element = getattr(paragraph, "_p", None)
    if element is None:
        style = paragraph.style
        return (style.name if style is not None else "") or ""
    style_id = element.style
    return names.get(style_id, "") if style_id is not None else ""


# -- dispatch ---------------------------------------------------------------------------

#: a parser: the file's bytes, a list for notes and the budget to keep to -> the blocks
_Parser = Callable[[bytes, list[str], Budget], list[Block]]

#: file extension -> parser
SUPPORTED: dict[str, _Parser] = {
    ".txt": _parse_text,
    ".text": _parse_text,
    ".rst": _parse_text,
    ".md": _parse_markdown,
    ".markdown": _parse_markdown,
    ".html": _parse_html,
    ".htm": _parse_html,
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
}

#: the types read with the plain-text parser: linear, and bounded by the file's size
TEXT_TYPES = frozenset({".txt", ".text", ".rst", ".md", ".markdown"})


def file_type(name: str) -> str:
    """The lowercase extension of ``name`` with its dot, or "" when it has none."""
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""


def parse_document(name: str, data: bytes, limits: ParseLimits | None = None) -> Parsed:
    """Parse ``data``, the bytes of the file shown as ``name`` (its extension picks the
    parser), within ``limits`` (default: :class:`ParseLimits`). Raises
    :class:`DocumentError` naming the file when nothing can be read or a limit is passed."""
    ext = file_type(name)
    parser = SUPPORTED.get(ext)
    if parser is None:
        kinds = ", ".join(sorted(SUPPORTED))
        raise DocumentError(
            f"{name}: unsupported file type {ext or '(no extension)'!r}; supported: {kinds}"
        )
    if not data:
        raise DocumentError(f"{name}: the file is empty")
    notes: list[str] = []
    try:
        blocks = parser(data, notes, Budget(limits or ParseLimits()))
    except ValueError as exc:
        raise DocumentError(f"{name}: {exc}") from None
    except RecursionError:
        raise DocumentError(f"{name}: the document is nested too deeply to parse") from None
    except MemoryError:
        raise DocumentError(f"{name}: needs too much memory to parse") from None
    except Exception as exc:  # a parser's own bug on a strange file must not stop the rest
        raise DocumentError(f"{name}: could not be parsed ({type(exc).__name__}: {exc})") from None
    if not blocks:
        raise DocumentError(f"{name}: no text found in the file")
    out: list[Block] = []
    offset = 0
    for b in blocks:
        out.append(Block(b.text, b.page, b.heading, offset))
        offset += len(b.text) + 2  # blocks are joined by a blank line
    return Parsed(out, notes)
