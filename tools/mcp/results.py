"""MCP results as :class:`~qwen_agent.messages.ToolResult` (capped), the tools a server's
config lets the model see, and the names it sees them by."""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError
from qwen_agent.messages import FileItem, ImageItem, TextItem, ToolResult

from .config import ServerConfig

log = logging.getLogger("qwen_agent.tools.mcp")

# types servers send that Python's mimetypes may not know (3.11 has only audio/x-wav)
_EXTENSIONS = {"audio/wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav"}


class Files:
    """Where binary results go: ``image_dir``, or a temporary folder made on first use."""

    def __init__(self, image_dir: str | os.PathLike[str] | None) -> None:
        self.dir = Path(image_dir) if image_dir is not None else None
        self.owned: Path | None = None
        self._lock = threading.Lock()

    def save(self, data_b64: str, mime: str | None) -> str:
        with self._lock:
            if self.dir is None:
                self.dir = self.owned = Path(tempfile.mkdtemp(prefix="qwen-agent-mcp-"))
            self.dir.mkdir(parents=True, exist_ok=True)
        mime = (mime or "").split(";")[0].strip().lower()
        ext = mimetypes.guess_extension(mime) or _EXTENSIONS.get(mime) or ".bin"
        path = self.dir / f"mcp-{uuid.uuid4().hex[:16]}{ext}"
        part = path.with_name(path.name + ".part")
        part.write_bytes(base64.b64decode(data_b64))
        os.replace(part, path)
        return str(path)

    def cleanup(self) -> None:
        if self.owned is not None:
            shutil.rmtree(self.owned, ignore_errors=True)


def to_result(result: Any, name: str, files: Files, cfg: ServerConfig) -> ToolResult:
    """An MCP CallToolResult as a ToolResult: text, images, files; isError as an error.
    Text past ``cfg.max_result_chars`` is cut and binary items past ``cfg.max_binary_bytes``
    are left out, each with a note saying so."""
    items: list[Any] = []
    notes: set[int] = set()  # ids of our notes: not counted or cut as the server's text
    room = cfg.max_binary_bytes
    for block in result.content:
        kind = getattr(block, "type", "")
        binary = _binary(block, kind)
        if binary is not None:
            data, mime = binary
            size = len(data) * 3 // 4 - data[-2:].count("=")  # base64
            if size > room:
                items.append(TextItem(text=_binary_note(kind, mime, size, cfg)))
                notes.add(id(items[-1]))
                continue
            room -= size
            path = files.save(data, mime)
            if kind == "image":
                items.append(ImageItem(image=path))
            else:
                label = str(block.resource.uri) if kind == "resource" else os.path.basename(path)
                items.append(FileItem(file=path, name=label))
        elif kind == "text":
            items.append(TextItem(text=block.text))
        elif kind == "resource":
            items.append(TextItem(text=block.resource.text))
        elif kind == "resource_link":
            items.append(TextItem(text=f"[resource {block.name}: {block.uri}]"))
        else:
            items.append(TextItem(text=block.model_dump_json(exclude_none=True)))
    if not items and result.structured_content is not None:
        items.append(TextItem(text=json.dumps(result.structured_content, ensure_ascii=False)))
    items = cap_text(items, cfg.max_result_chars, notes)
    if result.is_error:
        text = "\n".join(i.text for i in items if isinstance(i, TextItem)) or "no message"
        return ToolResult.error(f"Error: tool {name!r} failed: {text}", name=name)
    return ToolResult(name=name, content=items or [TextItem(text="(no output)")])


def _binary(block: Any, kind: str) -> tuple[str, str | None] | None:
    """(base64 data, mime type) of an image, audio or blob resource block; else None."""
    if kind in ("image", "audio"):
        return block.data, block.mime_type
    if kind == "resource" and hasattr(block.resource, "blob"):
        return block.resource.blob, block.resource.mime_type
    return None


def _binary_note(kind: str, mime: str | None, size: int, cfg: ServerConfig) -> str:
    what = "an image" if kind == "image" else "audio" if kind == "audio" else "a binary resource"
    return (
        f"[{what} ({mime or 'unknown type'}) of {size:,} bytes was left out: over the "
        f"{cfg.max_binary_bytes:,} bytes a result may hold (max_binary_bytes)]"
    )


def cap_text(items: list[Any], limit: int, keep: Collection[int] = ()) -> list[Any]:
    """The items with at most ``limit`` characters of text in all (the items whose id is in
    ``keep`` are not counted or cut); where text was cut, a note says how much there was
    and how much is shown."""
    total = sum(len(i.text) for i in items if isinstance(i, TextItem) and id(i) not in keep)
    if total <= limit:
        return items
    out: list[Any] = []
    left = limit
    for item in items:
        if isinstance(item, TextItem) and id(item) not in keep:
            if left <= 0:
                continue
            if len(item.text) > left:
                item = TextItem(text=item.text[:left])
            left -= len(item.text)
        out.append(item)
    note = (
        f"\n[the result was cut: {limit:,} of its {total:,} characters are shown "
        f"(max_result_chars); ask for less at a time to see the rest]"
    )
    out.append(TextItem(text=note))
    return out


def select_tools(server: str, cfg: ServerConfig, listed: list[Any], strict: bool) -> list[Any]:
    """The listed tools the config's ``include`` / ``exclude`` let the model see.

    A name in ``include`` that the server does not have is a ConfigError listing its tools
    (``strict``; a log warning otherwise: after a restart); one in ``exclude`` is a warning.
    """
    have = [t.name for t in listed]
    wanted = cfg.include if cfg.include is not None else cfg.exclude
    unknown = [n for n in wanted if n not in have]
    if unknown:
        which = "include" if cfg.include is not None else "exclude"
        msg = (
            f"MCP server {server!r}: {which} names tool(s) it does not have: "
            f"{', '.join(map(repr, unknown))}; its tools: {', '.join(have) or 'none'}"
        )
        if which == "include" and strict:
            raise ConfigError(msg)
        log.warning("%s", msg)
    if cfg.include is not None:
        return [t for t in listed if t.name in cfg.include]
    return [t for t in listed if t.name not in cfg.exclude]


_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")  # no dots: OpenAI function names allow none


def _clean(name: str) -> str:
    name = _BAD_CHARS.sub("_", name) or "_"
    return (name if name[0].isalpha() or name[0] == "_" else "_" + name)[:64]


def tool_names(listing: dict[str, list[str]], prefix: str) -> dict[tuple[str, str], str]:
    """(server, tool) -> the name the model sees: valid, unique, prefixed on a clash."""
    counts = Counter(_clean(t) for tools in listing.values() for t in tools)
    taken: set[str] = set()
    out: dict[tuple[str, str], str] = {}
    for server, tools in listing.items():
        for tool in tools:
            base = _clean(tool)
            if prefix == "always" or counts[base] > 1:
                base = _clean(f"{server}__{tool}")
            name, n = base, 2
            while name in taken:
                name, n = f"{base[: 64 - len(str(n)) - 1]}_{n}", n + 1
            taken.add(name)
            out[server, tool] = name
    return out


def drop_titles(node: Any, in_properties: bool = False) -> Any:
    """The schema without the ``title`` keys that generated schemas carry (noise to a
    model); properties named ``title`` stay, and so do ``default``/``enum`` values."""
    if isinstance(node, list):
        return [drop_titles(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        k: v
        if k in ("default", "enum", "const", "examples") and not in_properties
        else drop_titles(v, k == "properties" and not in_properties)
        for k, v in node.items()
        if in_properties or not (k == "title" and isinstance(v, str))
    }
