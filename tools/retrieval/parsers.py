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

Every failure is a :class:`DocumentError` whose message names the file and says what is
wrong with it; no message carries a host path.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from qwen_agent.errors import ToolError

__all__ = ["Block", "DocumentError", "Parsed", "SUPPORTED", "parse_document"]


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


_BLANK = re.compile(r"\n\s*\n")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
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


def _paragraphs(text: str, markdown: bool) -> list[Block]:
    blocks: list[Block] = []
    for para in _BLANK.split(text.replace("\r\n", "\n")):
        lines: list[str] = []
        for line in para.split("\n"):
            m = _MD_HEADING.match(line) if markdown else None
            if m:  # a heading is a block of its own, even without blank lines around it
                if lines:
                    blocks.append(Block(_clean(" ".join(lines))))
                    lines = []
                if m.group(1).strip():
                    blocks.append(Block(_clean(m.group(1)), heading=True))
            elif line.strip():
                lines.append(line)
        if lines:
            blocks.append(Block(_clean(" ".join(lines))))
    return blocks


def _parse_text(data: bytes, notes: list[str], markdown: bool = False) -> list[Block]:
    return _paragraphs(_decode(data, notes), markdown)


def _parse_markdown(data: bytes, notes: list[str]) -> list[Block]:
    return _parse_text(data, notes, markdown=True)


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


def _parse_html(data: bytes, notes: list[str]) -> list[Block]:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_decode(data, notes))
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node is not None else ""
    for node in tree.css("[hidden], [style]"):
        if "hidden" in node.attributes or _DISPLAY_NONE.search(node.attributes.get("style") or ""):
            node.decompose()
    root = tree.body or tree.root
    if root is None:
        return []
    root.strip_tags(_HIDDEN_TAGS)
    blocks: list[Block] = [Block(title, heading=True)] if title else []
    parts: list[str] = []
    owner: object = None  # the block element the current paragraph belongs to
    owner_tag = ""

    def flush() -> None:
        text = _clean("".join(parts).replace("\n", " "))
        parts.clear()
        if text and not (owner_tag in _HEADINGS and blocks and blocks[-1].text == text):
            blocks.append(Block(text, heading=owner_tag in _HEADINGS))

    for node in root.traverse(include_text=True):
        if node.tag == "br":
            parts.append("\n")
            continue
        if not node.is_text_node:
            continue
        block = node.parent
        while block is not None and block.tag not in _BLOCK_TAGS:
            block = block.parent
        key = block.mem_id if block is not None else None
        if key != owner:
            flush()
            owner, owner_tag = key, block.tag if block is not None else ""
        parts.append(node.text_content or "")
    flush()
    if title and len(blocks) > 1 and blocks[1].text == title:
        blocks.pop(0)  # <title> and the first <h1> often say the same thing
    return blocks


# -- pdf --------------------------------------------------------------------------------


def _parse_pdf(data: bytes, notes: list[str]) -> list[Block]:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ValueError("is an encrypted PDF that needs a password; save an unencrypted copy")
        pages = reader.pages
        count = len(pages)
    except DependencyError as exc:
        raise ValueError(f"cannot be decrypted: {exc}") from None
    except (PdfReadError, OSError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"is not a readable PDF ({type(exc).__name__}: {exc})") from None
    blocks: list[Block] = []
    failed: list[int] = []
    for number in range(1, count + 1):
        try:
            text = pages[number - 1].extract_text() or ""
        except Exception:  # one bad page must not lose the others; noted below
            failed.append(number)
            continue
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


# -- docx -------------------------------------------------------------------------------


def _parse_docx(data: bytes, notes: list[str]) -> list[Block]:
    import zipfile

    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ValueError(
            "is not a readable .docx file (a password-protected or old .doc file "
            f"cannot be read; {type(exc).__name__}: {exc})"
        ) from None
    except Exception as exc:  # python-docx raises its own and lxml's errors
        raise ValueError(f"is not a readable .docx file ({type(exc).__name__}: {exc})") from None
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = _clean(cell.text.replace("\n", " "))
                    if text and (not cells or cells[-1] != text):  # merged cells repeat
                        cells.append(text)
                if cells:
                    blocks.append(Block(" | ".join(cells)))
            continue
        text = _clean(item.text.replace("\n", " "))
        if not text:
            continue
        style = (item.style.name if item.style is not None else "") or ""
        blocks.append(Block(text, heading=style.startswith("Heading") or style == "Title"))
    return blocks


# -- dispatch ---------------------------------------------------------------------------

_Parser = Callable[[bytes, list[str]], list[Block]]

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


def parse_document(name: str, data: bytes) -> Parsed:
    """Parse ``data``, the bytes of the file shown as ``name`` (its extension picks the
    parser). Raises :class:`DocumentError` naming the file when nothing can be read."""
    ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
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
        blocks = parser(data, notes)
    except ValueError as exc:
        raise DocumentError(f"{name}: {exc}") from None
    except RecursionError:
        raise DocumentError(f"{name}: the document is nested too deeply to parse") from None
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
