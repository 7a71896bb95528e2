"""MCP results as :class:`~qwen_agent.messages.ToolResult`, and the names models see."""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from qwen_agent.messages import FileItem, ImageItem, TextItem, ToolResult

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


def to_result(result: Any, name: str, files: Files) -> ToolResult:
    """An MCP CallToolResult as a ToolResult: text, images, files; isError as an error."""
    items: list[Any] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            items.append(TextItem(text=block.text))
        elif kind == "image":
            items.append(ImageItem(image=files.save(block.data, block.mime_type)))
        elif kind == "audio":
            path = files.save(block.data, block.mime_type)
            items.append(FileItem(file=path, name=os.path.basename(path)))
        elif kind == "resource" and hasattr(block.resource, "text"):
            items.append(TextItem(text=block.resource.text))
        elif kind == "resource":
            path = files.save(block.resource.blob, block.resource.mime_type)
            items.append(FileItem(file=path, name=str(block.resource.uri)))
        elif kind == "resource_link":
            items.append(TextItem(text=f"[resource {block.name}: {block.uri}]"))
        else:
            items.append(TextItem(text=block.model_dump_json(exclude_none=True)))
    if not items and result.structured_content is not None:
        items.append(TextItem(text=json.dumps(result.structured_content, ensure_ascii=False)))
    if result.is_error:
        text = "\n".join(i.text for i in items if isinstance(i, TextItem)) or "no message"
        return ToolResult.error(f"Error: tool {name!r} failed: {text}", name=name)
    return ToolResult(name=name, content=items or [TextItem(text="(no output)")])


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
