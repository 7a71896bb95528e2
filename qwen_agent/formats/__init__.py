"""Tool-use formats: how tools, calls and results are written in text.

``get_format("hermes")`` (Qwen2.5 / Qwen3 native) or ``get_format("react")`` (Qwen ReAct).
A new format is one module with a class following :class:`ToolFormat`, plus one line here.
"""

from __future__ import annotations

from typing import Any

from qwen_agent.errors import ConfigError
from qwen_agent.formats.base import ParsedOutput, StreamParser, ToolFormat
from qwen_agent.registry import LazyRegistry

__all__ = ["ParsedOutput", "StreamParser", "ToolFormat", "FORMATS", "get_format", "register_format"]

#: name -> "module:Class"
FORMATS: LazyRegistry[Any] = LazyRegistry(
    "format",
    {
        "hermes": "qwen_agent.formats.hermes:HermesFormat",
        "react": "qwen_agent.formats.react:ReactFormat",
    },
)


def register_format(name: str, target: str | type, *, replace: bool = False) -> None:
    """Register a format class (or ``"module:Class"``) under ``name``."""
    FORMATS.register(name, target, replace=replace)


def get_format(name: str | ToolFormat) -> ToolFormat:
    """A format instance by name (or ``name`` itself if it already is a format)."""
    if not isinstance(name, str):
        if hasattr(name, "parser") and hasattr(name, "build_prompt"):
            return name
        raise ConfigError(f"format must be a name or a ToolFormat, not {type(name).__name__}")
    return FORMATS.get(name)()
