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

from qwen_agent.events import CallParseError, ReasoningDelta, TextDelta, ToolCallEvent
from qwen_agent.llm import Delta, Usage
from qwen_agent.messages import ToolCall
from qwen_agent.serving.wire import tool_call_dict

__all__ = ["Turn", "Reply"]


class Turn:
    """Turns a model's deltas into content, reasoning and tool calls (with a format) or
    passes the text through (without one)."""

    def __init__(self, fmt: Any, prefill: str, parallel: bool, calls: bool = True) -> None:
        self.parser = fmt.parser() if fmt is not None else None
        self.parallel = parallel
        #: False for tool_choice "none": calls the model writes anyway are dropped
        self.takes_calls = calls
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.errors: list[str] = []
        self._usage: Usage | None = None
        self._reason: str | None = None
        self._chars = 0
        if self.parser is not None and prefill:
            self.parser.feed(prefill)

    def feed(self, delta: Delta) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        if delta.usage is not None:
            self._usage = delta.usage
        if delta.finish_reason is not None:
            self._reason = delta.finish_reason
        self._chars += len(delta.text)
        if delta.text:
            if self.parser is None:
                self.content.append(delta.text)
                out.append(("content", delta.text))
            else:
                out.extend(self._events(self.parser.feed(delta.text)))
        for call in delta.tool_calls or () if self.takes_calls else ():
            out.extend(self._call(call))
        for err in delta.call_errors or () if self.takes_calls else ():
            out.extend(self._events([CallParseError(err)]))
        return out

    def finish(self) -> list[tuple[str, Any]]:
        if self.parser is None:
            return []
        return self._events(self.parser.finish(self._reason or "stop"))

    def _events(self, events: list[Any]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for ev in events:
            if isinstance(ev, TextDelta):
                self.content.append(ev.text)
                out.append(("content", ev.text))
            elif isinstance(ev, ReasoningDelta):
                self.reasoning.append(ev.text)
                out.append(("reasoning", ev.text))
            elif isinstance(ev, ToolCallEvent):
                if self.takes_calls:
                    out.extend(self._call(ev.call))
            elif isinstance(ev, CallParseError) and self.takes_calls:
                self.errors.append(ev.message)
                note = f"[the model wrote a tool call that could not be read: {ev.message}]"
                self.content.append(note)
                out.append(("content", note))
        return out

    def _call(self, call: ToolCall) -> list[tuple[str, Any]]:
        """A call that parsed: a start (index, id, name) and then its arguments, as OpenAI
        streams a call. Nothing of a call goes out before it parsed, so a streaming client
        never holds a call that the whole reply does not have."""
        if self.calls and not self.parallel:
            return []
        call = call.model_copy(update={"id": f"call_{uuid.uuid4().hex[:24]}"})
        index = len(self.calls)
        self.calls.append(call)
        return [("call_start", (index, call)), ("call_args", (index, call.arguments_json()))]

    def finish_reason(self) -> str:
        if self.calls:
            return "tool_calls"
        return self._reason or "stop"

    def usage(self) -> Usage:
        return self._usage or Usage(0, self._chars)


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
