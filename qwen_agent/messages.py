"""Typed chat data: messages, content items, tool calls and tool results."""

from __future__ import annotations

import json
import re
from pathlib import PurePath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TextItem",
    "ImageItem",
    "FileItem",
    "ContentItem",
    "ToolCall",
    "ToolResult",
    "Message",
    "Role",
    "content_text",
    "Content",
]

Role = Literal["system", "user", "assistant", "tool"]


class TextItem(BaseModel):
    """A piece of text."""

    model_config = ConfigDict(frozen=True)
    type: Literal["text"] = "text"
    text: str


class ImageItem(BaseModel):
    """An image given by a local path, an URL or a ``data:`` URI."""

    model_config = ConfigDict(frozen=True)
    type: Literal["image"] = "image"
    image: str


class FileItem(BaseModel):
    """A file given by a local path or an URL; ``name`` is the name to show."""

    model_config = ConfigDict(frozen=True)
    type: Literal["file"] = "file"
    file: str
    name: str | None = None


ContentItem = Annotated[TextItem | ImageItem | FileItem, Field(discriminator="type")]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def plain_name(text: str, limit: int = 200) -> str:
    """A name fit to show the model: control, line-break and bidi characters removed,
    at most ``limit`` characters."""
    return _CONTROL.sub("", text)[:limit]


def shown_name(ref: str) -> str:
    """How an image or file reference is named to the model and clients: a local path by
    its file name only (never the host's folders), an URL as it is, a ``data:`` URI not at
    all."""
    if ref.startswith("data:"):
        return ""
    if ref.startswith(("http://", "https://")):  # no userinfo, query or fragment
        parts = urlsplit(ref)
        host = parts.hostname or ""
        return plain_name(f"{parts.scheme}://{host}{parts.path}", 2000)
    return plain_name(PurePath(ref).name)


def content_text(content: str | list[Any]) -> str:
    """The text of a message content: the string itself, or its text items joined; images
    and files are named by :func:`shown_name`."""
    if isinstance(content, str):
        return content
    parts = []
    for item in content:
        if isinstance(item, TextItem):
            parts.append(item.text)
        elif isinstance(item, ImageItem):
            name = shown_name(item.image)
            parts.append(f"[image: {name}]" if name else "[image]")
        elif isinstance(item, FileItem):
            name = plain_name(item.name) if item.name else shown_name(item.file)
            parts.append(f"[file: {name}]" if name else "[file]")
    return "\n".join(parts)


class Content(list):
    """A list of content items (what a tool such as the code interpreter returns) that
    prints as its text: ``print(tool.call(code="print(12 * 34)"))`` shows ``408``."""

    def __str__(self) -> str:
        return content_text(list(self))

    @property
    def text(self) -> str:
        return content_text(list(self))


class ToolCall(BaseModel):
    """A request by the model to call tool ``name`` with ``arguments``."""

    id: str = ""
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


class ToolResult(BaseModel):
    """The outcome of a tool call, as shown to the model."""

    call_id: str = ""
    name: str = ""
    content: list[ContentItem] = Field(default_factory=list)
    is_error: bool = False

    @property
    def text(self) -> str:
        return content_text(self.content)

    @classmethod
    def error(cls, message: str, *, call_id: str = "", name: str = "") -> ToolResult:
        return cls(call_id=call_id, name=name, content=[TextItem(text=message)], is_error=True)


class Message(BaseModel):
    """One chat message.

    ``content`` is text or a list of items (text, image, file). Assistant messages may carry
    ``tool_calls`` and ``reasoning`` (a Qwen3 ``<think>`` block or a ReAct thought); tool
    messages carry the ``tool_call_id`` and ``name`` of the call they answer.
    """

    role: Role
    content: str | list[ContentItem] = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    reasoning: str = ""
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The message's text, with images and files named in brackets."""
        return content_text(self.content)

    @classmethod
    def from_tool_result(cls, result: ToolResult) -> Message:
        return cls(
            role="tool",
            content=list(result.content),
            tool_call_id=result.call_id,
            name=result.name,
        )
