"""Qwen2.5 / Qwen3 native function calling (the "hermes" style).

The system prompt lists the tools as JSON lines inside ``<tools>``; the model answers with
one or more ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` blocks; results
come back in a user turn as ``<tool_response>`` blocks. A Qwen3 ``<think>...</think>``
block at the start is reasoning (a backend whose chat template opens ``<think>`` in the
prompt starts the text with one, so the shape is the same), and a ``<tool_call>`` inside it
is a draft, never a call. A reply that ends inside its reasoning, or has reasoning and
nothing after it, is an error for the model (with how many drafted calls did not run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from qwen_agent.formats.base import (
    ParsedOutput,
    StreamParser,
    WhitespaceHolder,
    all_instructions,
    decode_call_json,
    partial_suffix,
    snippet,
)
from qwen_agent.llm import CallConstraint
from qwen_agent.messages import ImageItem, Message, TextItem, ToolCall
from qwen_agent.tool import ToolSpec

__all__ = ["HermesFormat", "HermesParser", "tool_responses"]

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
DEFAULT_SYSTEM = "You are a helpful assistant."

_TOOLS_PROMPT = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""

#: the name of the user turns that carry tool results
_RESULTS_TURN = "tool_responses"

_CALL_HINT = 'write <tool_call>\n{"name": "<tool name>", "arguments": {...}}\n</tool_call>'


class HermesParser(StreamParser):
    """Incremental parser for the hermes format; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._steps = {
            "start": self._start,
            "think": self._think,
            "text": self._text_state,
            "call_start": self._call_start,
            "json": self._json,
            "after": self._after,
            "bad": self._bad_call,
        }
        self._state = "start"
        self._text_ws = WhitespaceHolder()
        self._think_ws = WhitespaceHolder()
        self._decoded: tuple[str, dict[str, Any]] | str = ""
        self._bad: list[str] = []
        self.draft_tag = CALL_OPEN

    def _feed(self, delta: str) -> None:
        if self._state == "text" and not self._pending and "<" not in delta:
            self._text(self._text_ws.push(delta))  # what _text_state does with no tag
            return
        self._pending += delta
        self._run(final=False)

    def _finish(self, finish_reason: str) -> None:
        self._run(final=True)
        state = self._state
        if state == "think":
            self._reasoning(self._think_ws.push(self._pending))
            self._pending = ""
            self._unclosed_thought(finish_reason)
            return
        if state == "text":
            self._text(self._text_ws.push(_drop_stray_close(self._pending)))
        elif state in ("call_start", "json"):
            self._cut_off(finish_reason, "".join(self._body) + self._pending)
        elif state == "after":
            if finish_reason == "length":
                self._cut_off(finish_reason, "".join(self._body))
            else:  # complete JSON and a normal stop: the closing tag may be left out
                self._complete_call()
        elif state == "bad":
            self._error(
                "the tool call could not be read and was not closed with </tool_call>: "
                f"{snippet(''.join(self._bad) + self._pending)!r}; {_CALL_HINT}"
            )
        self._pending = ""
        self._check_answered()

    def _cut_off(self, finish_reason: str, text: str) -> None:
        if finish_reason == "length":
            self._error(
                "the tool call was cut off by the token limit and was not executed: "
                f"{snippet(text)!r}. Write a shorter call."
            )
        else:
            self._error(f"the tool call is incomplete: {snippet(text)!r}; {_CALL_HINT}")

    # The state machine: each step consumes from self._pending and returns False when it
    # needs more text.
    def _run(self, final: bool) -> None:
        step = self._steps
        while step[self._state](final):
            pass

    def _start(self, final: bool) -> bool:
        begin = self._think_start(final)
        if begin == "wait":
            self._pending = self._pending.lstrip()
            return False
        self._state = "think" if begin == "think" else "text"
        return True

    def _think(self, final: bool) -> bool:
        if not self._think_step(final, self._think_ws):
            return False
        self._state = "text"
        return True

    def _text_state(self, final: bool) -> bool:
        p = self._pending
        idx = p.find(CALL_OPEN)
        if idx >= 0:
            self._text(self._text_ws.push(_drop_stray_close(p[:idx])))
            self._text_ws.drop()
            self._pending, self._state = p[idx + len(CALL_OPEN) :], "call_start"
            self._bad = []
            return True
        if final:
            return False  # _finish flushes the rest
        keep = max(partial_suffix(p, CALL_OPEN), partial_suffix(p, CALL_CLOSE))
        close = p.find(CALL_CLOSE)
        if close >= 0:  # a stray closing tag (e.g. after a lenient call end) is not text
            self._text(self._text_ws.push(p[:close]))
            self._pending = p[close + len(CALL_CLOSE) :]
            return True
        self._text(self._text_ws.push(p[: len(p) - keep]))
        self._pending = p[len(p) - keep :]
        return False

    def _call_start(self, final: bool) -> bool:
        begin = self._json_begin(final)
        if begin == "wait":
            return False
        self._state = begin  # "json" or "bad"
        return True

    def _json(self, final: bool) -> bool:
        body = self._json_collect()
        if body is None:
            return False
        self._decoded = decode_call_json(body)
        self._state = "after"
        return True

    def _after(self, final: bool) -> bool:
        s = self._pending.lstrip()
        if s.startswith("```"):
            s = s[3:].lstrip()
        self._pending = s
        if s.startswith(CALL_CLOSE):
            self._complete_call()
            self._pending, self._state = s[len(CALL_CLOSE) :], "text"
            return True
        if not s or ((CALL_CLOSE.startswith(s) or "```".startswith(s)) and not final):
            return False
        self._complete_call()  # lenient: text after the JSON ends the call
        self._state = "text"
        return True

    def _complete_call(self) -> None:
        decoded = self._decoded
        if isinstance(decoded, tuple):
            self._call(*decoded)
        else:
            self._error(f"{decoded}: {snippet(''.join(self._body))!r}; {_CALL_HINT}")
        self._body = []

    def _bad_call(self, final: bool) -> bool:
        p = self._pending
        idx = p.find(CALL_CLOSE)
        if idx >= 0:
            self._bad.append(p[:idx])
            self._error(
                f"the tool call is not a JSON object: {snippet(''.join(self._bad))!r}; {_CALL_HINT}"
            )
            self._pending, self._state = p[idx + len(CALL_CLOSE) :], "text"
            return True
        if final:
            return False
        keep = partial_suffix(p, CALL_CLOSE)
        if sum(map(len, self._bad)) < 400:
            self._bad.append(p[: len(p) - keep])
        self._pending = p[len(p) - keep :]
        return False


def _drop_stray_close(text: str) -> str:
    return text.replace(CALL_CLOSE, "") if CALL_CLOSE in text else text


class HermesFormat:
    """Qwen2.5 / Qwen3 native tool calling."""

    name = "hermes"
    stop_words: list[str] = ["<tool_response>"]

    def system_prompt(self, tools: Sequence[ToolSpec], instructions: str = "") -> str:
        text = instructions.strip() or DEFAULT_SYSTEM
        if not tools:
            return text
        lines = "\n".join(
            f'{{"type": "function", "function": {ToolSpec.of(t).as_json}}}' for t in tools
        )
        return f"{text}\n\n{_TOOLS_PROMPT.format(tools=lines)}"

    def prefill(self, tool_choice: Any) -> str:
        """The start of a reply that must call a tool (``"required"``) or one tool (an
        object with ``name``); empty for ``"auto"``."""
        name = getattr(tool_choice, "name", None)
        if name:
            return f'{CALL_OPEN}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '
        return f'{CALL_OPEN}\n{{"name": "' if tool_choice == "required" else ""

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        parts = [content] if content else []
        for call in calls:
            body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
            parts.append(f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}")
        return "\n".join(parts)

    def build_prompt(
        self, messages: list[Message], tools: Sequence[ToolSpec], instructions: str = ""
    ) -> list[Message]:
        out = [
            Message(
                role="system",
                content=self.system_prompt(tools, all_instructions(messages, instructions)),
            )
        ]
        # Qwen3's rule: reasoning is sent back only within the current turn (the steps
        # after the last user message), never from earlier turns
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
        for i, msg in enumerate(messages):
            if msg.role == "system":
                continue
            if msg.role == "tool":
                _append_tool_response(out, msg)
            elif msg.role == "assistant":
                text = self.render_calls(msg.tool_calls, msg.text)
                if msg.reasoning and i > last_user:
                    text = f"{THINK_OPEN}\n{msg.reasoning}\n{THINK_CLOSE}\n\n{text}"
                out.append(Message(role="assistant", content=text))
            else:
                out.append(Message(role=msg.role, content=msg.content))
        return out

    def constraint(
        self, tools: Sequence[ToolSpec], tool_choice: Any = "auto", parallel: bool = True
    ) -> CallConstraint | None:
        """The calls a backend should enforce: ``<tool_call>`` JSON ``</tool_call>`` naming
        one of ``tools`` (only the one a forced ``tool_choice`` names); None for none."""
        if tool_choice == "none":
            return None
        forced = getattr(tool_choice, "name", None)
        listed = tuple(t for t in tools if forced is None or t.name == forced)
        if not listed:
            return None
        return CallConstraint(tools=listed, open=CALL_OPEN, close=CALL_CLOSE, parallel=parallel)

    def exchanges(self, prompt: list[Message]) -> tuple[int, ...]:
        """Where each question of the user begins in a prompt this format built (a user
        turn that carries tool results begins none)."""
        return tuple(
            i for i, m in enumerate(prompt) if m.role == "user" and m.name != _RESULTS_TURN
        )

    def parser(self) -> HermesParser:
        return HermesParser()

    def parse(self, text: str, finish_reason: str = "stop") -> ParsedOutput:
        return self.parser().run(text, finish_reason)


def tool_responses(content: str) -> list[str]:
    """The results in a user turn of ``<tool_response>`` blocks (what
    :func:`_append_tool_response` wrote)."""
    return re.findall(r"<tool_response>\n?(.*?)\n?</tool_response>", content, re.S)


def _append_tool_response(out: list[Message], msg: Message) -> None:
    """Tool results go in one user turn, a ``<tool_response>`` block each (Qwen's template)."""
    block = f"<tool_response>\n{msg.text}\n</tool_response>"
    images = (
        [i for i in msg.content if isinstance(i, ImageItem)]
        if isinstance(msg.content, list)
        else []
    )
    prev = out[-1]
    if prev.role == "user" and prev.name == _RESULTS_TURN:
        items = prev.content if isinstance(prev.content, list) else [TextItem(text=prev.content)]
        merged = [*items, TextItem(text="\n" + block), *images]
        out[-1] = prev.model_copy(update={"content": _simplify(merged)})
    else:
        content = _simplify([TextItem(text=block), *images])
        out.append(Message(role="user", content=content, name=_RESULTS_TURN))


def _simplify(items: list[Any]) -> str | list[Any]:
    if all(isinstance(i, TextItem) for i in items):
        return "".join(i.text for i in items)
    return items
