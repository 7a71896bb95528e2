"""Streaming events, told apart by their ``type`` field.

Format parsers yield :class:`TextDelta`, :class:`ReasoningDelta`, :class:`ToolCallEvent` and
:class:`CallParseError`; the agent adds :class:`ToolResultEvent`, :class:`HistoryTrimmed`
(the backend left earlier exchanges out of a prompt so it fits the context window) and
ends every run with one :class:`FinalEvent`. They are plain slotted dataclasses: cheap to
make on every delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from qwen_agent.messages import Message, ToolCall, ToolResult

__all__ = [
    "TextDelta",
    "ReasoningDelta",
    "ToolCallEvent",
    "CallParseError",
    "ToolResultEvent",
    "HistoryTrimmed",
    "FinalEvent",
    "Event",
    "ParserEvent",
]


@dataclass(slots=True)
class TextDelta:
    """A piece of the answer text, certain not to belong to a tool call."""

    text: str
    type: Literal["text_delta"] = "text_delta"


@dataclass(slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning (Qwen3 ``<think>`` or a ReAct ``Thought:``)."""

    text: str
    type: Literal["reasoning_delta"] = "reasoning_delta"


@dataclass(slots=True)
class ToolCallEvent:
    """The model finished writing a well-formed tool call."""

    call: ToolCall
    type: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class CallParseError:
    """The model wrote a tool call that cannot be read; ``message`` says why."""

    message: str
    type: Literal["call_parse_error"] = "call_parse_error"


@dataclass(slots=True)
class ToolResultEvent:
    """A tool call finished (or failed: ``result.is_error``)."""

    result: ToolResult
    type: Literal["tool_result"] = "tool_result"


@dataclass(slots=True)
class HistoryTrimmed:
    """The backend left the oldest ``exchanges`` (``messages`` rendered messages) out of
    this step's prompt so it fits: the prompt took ``prompt_tokens`` and the reply may take
    ``max_tokens`` of a ``context_window``-token window. The current question and the
    calls its tool results answer are never left out."""

    exchanges: int
    messages: int
    prompt_tokens: int
    max_tokens: int
    context_window: int
    type: Literal["history_trimmed"] = "history_trimmed"


@dataclass(slots=True)
class FinalEvent:
    """The run ended. ``message`` is the last assistant message, ``messages`` the whole
    conversation including the input, and ``stop_reason`` one of ``"answer"``,
    ``"max_steps"``."""

    message: Message
    messages: list[Message] = field(default_factory=list)
    stop_reason: Literal["answer", "max_steps"] = "answer"
    type: Literal["final"] = "final"


ParserEvent = TextDelta | ReasoningDelta | ToolCallEvent | CallParseError
Event = (
    TextDelta
    | ReasoningDelta
    | ToolCallEvent
    | CallParseError
    | ToolResultEvent
    | HistoryTrimmed
    | FinalEvent
)
