"""Typed chat data: messages, content items, tool calls and tool results."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

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


def content_text(content: str | list[Any]) -> str:
    """The text of a message content: the string itself, or its text items joined."""
    if isinstance(content, str):
        return content
    parts = []
    for item in content:
        if isinstance(item, TextItem):
            parts.append(item.text)
        elif isinstance(item, ImageItem):
            parts.append(f"[image: {item.image}]")
        elif isinstance(item, FileItem):
            parts.append(f"[file: {item.name or item.file}]")
    return "\n".join(parts)


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
