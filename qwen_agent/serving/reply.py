"""One reply of the server: the model's deltas parsed into content, reasoning and tool
calls (:class:`Turn`), and OpenAI's response bodies and stream chunks for it
(:class:`Reply`).

A tool call is streamed as OpenAI streams one: a first delta with its index, id and name,
then its arguments' JSON, once the call parsed (so the streamed and the whole reply always
hold the same calls, with the same canonical JSON arguments).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from qwen_agent.events import CallParseError, Event, ReasoningDelta, TextDelta, ToolCallEvent
from qwen_agent.llm import Delta, Usage
from qwen_agent.messages import ToolCall
from qwen_agent.serving.wire import tool_call_dict
from qwen_agent.turn import TurnAssembler

__all__ = ["Turn", "Reply", "new_call_id"]


class Turn:
    """The server's view of one reply: the core's :class:`~qwen_agent.turn.TurnAssembler`
    events as OpenAI's pieces (content, reasoning, a call's start and its arguments). A
    call the model wrote but that could not be read is told in the content."""

    def __init__(self, assembler: TurnAssembler) -> None:
        self.asm = assembler
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self._sent = 0  # calls streamed so far

    @property
    def calls(self) -> list[ToolCall]:
        return self.asm.calls

    def feed(self, delta: Delta) -> list[tuple[str, Any]]:
        return self._pieces(self.asm.feed(delta))

    def finish(self) -> list[tuple[str, Any]]:
        return self._pieces(self.asm.finish())

    def _pieces(self, events: list[Event]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for ev in events:
            if isinstance(ev, TextDelta):
                self.content.append(ev.text)
                out.append(("content", ev.text))
            elif isinstance(ev, ReasoningDelta):
                self.reasoning.append(ev.text)
                out.append(("reasoning", ev.text))
            elif isinstance(ev, ToolCallEvent):
                # a call goes out once it parsed, start and arguments together, so a
                # streaming client never holds a call that the whole reply does not have
                index, self._sent = self._sent, self._sent + 1
                out.append(("call_start", (index, ev.call)))
                out.append(("call_args", (index, ev.call.arguments_json())))
            elif isinstance(ev, CallParseError):
                note = f"[the model wrote a tool call that could not be read: {ev.message}]"
                self.content.append(note)
                out.append(("content", note))
        return out

    def finish_reason(self) -> str:
        return self.asm.reason()

    def usage(self) -> Usage:
        return self.asm.total_usage()


def new_call_id() -> str:
    """OpenAI-style call ids, unique per call."""
    return f"call_{uuid.uuid4().hex[:24]}"


class Reply:
    def __init__(self, model: str, chat: bool) -> None:
        self.model, self.chat = model, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.object = "chat.completion.chunk" if chat else "text_completion"

    @staticmethod
    def event(payload: Any) -> bytes:
        return (
            b"data: "
            # ASCII: a lone surrogate the model escaped (\ud800) stays an escape, not an
            # encoding error
            + json.dumps(payload, separators=(",", ":")).encode()
            + b"\n\n"
        )

    def chunk(self, delta: Any, finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0}
        if self.chat:
            choice["delta"] = delta
        else:
            choice["text"] = delta if isinstance(delta, str) else ""
        choice["logprobs"] = None
        choice["finish_reason"] = finish
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def piece(self, piece: tuple[str, Any]) -> dict[str, Any]:
        kind, value = piece
        if not self.chat:
            return self.chunk(value)
        if kind == "content":
            return self.chunk({"content": value})
        if kind == "reasoning":
            return self.chunk({"reasoning_content": value})
        index, value = value
        if kind == "call_start":
            return self._calls(index, tool_call_dict(value, arguments=""))
        return self._calls(index, {"function": {"arguments": value}})

    def _calls(self, index: int, delta: dict[str, Any]) -> dict[str, Any]:
        return self.chunk({"tool_calls": [{"index": index, **delta}]})

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": _usage(usage),
        }

    def whole(self, turn: Turn, usage: Usage) -> dict[str, Any]:
        content = "".join(turn.content)
        if self.chat:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": content or (None if turn.calls else ""),
            }
            if turn.reasoning:
                message["reasoning_content"] = "".join(turn.reasoning)
            if turn.calls:
                message["tool_calls"] = [tool_call_dict(c) for c in turn.calls]
            choice: dict[str, Any] = {"index": 0, "message": message}
        else:
            choice = {"index": 0, "text": content}
        choice["logprobs"] = None
        choice["finish_reason"] = turn.finish_reason()
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": _usage(usage),
        }

    def agent_whole(self, run: Any) -> dict[str, Any]:
        message = {"role": "assistant", "content": run.answer, "agent_events": run.log}
        if run.reasoning:
            message["reasoning_content"] = run.reasoning
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            ],
            "usage": _usage(run.usage),
        }


def _usage(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }
