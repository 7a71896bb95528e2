"""Qwen's ReAct format: Question / Thought / Action / Action Input / Observation / Final Answer.

The tools and the format are described in the system prompt; each user turn is written as
``Question: ...``; the assistant's trace (thoughts, actions and observations) is one
assistant message that the model continues after each observation. The stop word
``Observation:`` keeps the model from inventing tool results.
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
    decode_args,
    snippet,
)
from qwen_agent.messages import Message, ToolCall
from qwen_agent.tool import ToolSpec

__all__ = ["ReactFormat", "ReactParser"]


_TOOL_DESC = (
    "{name}: Call this tool to interact with the {name} API. What is the {name} API useful "
    "for? {description} Parameters: {parameters} Format the arguments as a JSON object."
)

_REACT_PROMPT = """Answer the following questions as best you can. You have access to the \
following tools:

{tool_descs}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can be repeated zero or more times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!"""

_LABEL = re.compile(
    r"[ \t]*(Final Answer|Action Input|Action|Thought|Observation)[ \t]*[:：][ \t]?"
)
_MAX_LABEL_PREFIX = 40  # a line this long without a label at its start has none
_HINT = "write 'Action: <tool name>' then 'Action Input: {...}' with a JSON object"


class ReactParser(StreamParser):
    """Incremental ReAct parser. Labels count only at the start of a line. Thoughts are held
    until the next label: before an Action or Final Answer they are reasoning; an output with
    neither is a plain answer."""

    def __init__(self) -> None:
        super().__init__()
        self._steps = {
            "start": self._start,
            "think": self._think,
            "thought": self._lines,
            "expect_input": self._lines,
            "input": self._input,
            "json": self._json,
            "after": self._after,
            "final": self._final,
            "stopped": self._stopped,
        }
        self._state = "start"
        self.draft_tag = "Action:"
        self._think_ws = WhitespaceHolder()
        self._midline = False
        self._thought: list[str] = []  # pieces; a new line is added with a "\n" piece
        self._saw_label = False
        self._reasoned = False
        self._name: str | None = None
        self._ws = WhitespaceHolder()

    def _feed(self, delta: str) -> None:
        if not self._pending:  # what _final and _lines do with a delta that ends nothing
            if self._state == "final":
                self._text(self._ws.push(delta))
                return
            if self._state == "thought" and self._midline and "\n" not in delta:
                self._thought.append(delta)
                return
        self._pending += delta
        self._run(final=False)

    def _finish(self, finish_reason: str) -> None:
        self._run(final=True)
        if self._state == "think":
            self._reasoning(self._think_ws.push(self._pending))
            self._pending = ""
            self._unclosed_thought(finish_reason)
            return
        cut = (
            " (cut off by the token limit, so it was not executed)"
            if (finish_reason == "length")
            else ""
        )
        if self._state == "final":
            self._text(self._ws.push(self._pending))
        elif self._state == "expect_input":
            self._error(f"Action {self._name!r} has no 'Action Input:'{cut}; {_HINT}")
        elif self._state in ("input", "json"):
            body = "".join(self._body) + self._pending
            self._error(f"the Action Input is incomplete: {snippet(body)!r}{cut}; {_HINT}")
        if not self._saw_label:
            text = "".join(self._thought).strip()
            self._thought = []
            self._text(text)
        else:
            self._flush_thought()
        self._pending = ""
        self._check_answered()

    def _run(self, final: bool) -> None:
        step = self._steps
        while step[self._state](final):
            pass

    def _start(self, final: bool) -> bool:
        """A leading ``<think>`` block (Qwen3) is reasoning; labels inside it do not count."""
        begin = self._think_start(final)
        if begin == "wait":
            return False
        self._state = "think" if begin == "think" else "thought"
        return True

    def _think(self, final: bool) -> bool:
        if not self._think_step(final, self._think_ws):
            return False
        self._reasoned = True  # ReAct thoughts after it start on a new line
        self._state = "thought"
        return True

    def _new_thought_line(self, text: str) -> None:
        if self._thought:
            self._thought.append("\n")
        self._thought.append(text)

    def _flush_thought(self) -> None:
        text = "".join(self._thought).strip()
        self._thought = []
        if text:
            self._reasoning(("\n" if self._reasoned else "") + text)
            self._reasoned = True

    def _lines(self, final: bool) -> bool:
        p = self._pending
        nl = p.find("\n")
        if self._midline:  # the rest of a line already known not to start with a label
            if self._state == "thought":
                self._thought.append(p if nl < 0 else p[:nl])
            self._pending = "" if nl < 0 else p[nl + 1 :]
            self._midline = nl < 0
            return nl >= 0
        line = p if nl < 0 else p[:nl]
        m = _LABEL.match(line)
        label = m.group(1) if m else None
        if label in ("Final Answer", "Action Input"):  # these go on past the line's end
            self._pending = p[m.end() :]  # type: ignore[union-attr]
            self._enter(label, "")  # type: ignore[arg-type]
            return True
        if nl < 0 and not final:
            thought_started = label == "Thought" and m.end() < len(line)  # type: ignore[union-attr]
            if not thought_started and (label or len(line) < _MAX_LABEL_PREFIX):
                return False  # a label may still be coming: wait for the line to end
            self._midline = True  # a thought line: consume it as it streams
        self._pending = "" if nl < 0 else p[nl + 1 :]
        if label:
            self._enter(label, line[m.end() :])  # type: ignore[union-attr]
        elif self._state == "expect_input" and line.strip():
            self._error(f"Action {self._name!r} was not followed by 'Action Input:'; {_HINT}")
            self._state = "thought"
            self._new_thought_line(line)
        elif self._state == "thought":
            self._new_thought_line(line)
        return nl >= 0

    def _enter(self, label: str, rest: str) -> None:
        if label == "Thought":
            if self._state == "expect_input":
                self._error(f"Action {self._name!r} was not followed by 'Action Input:'; {_HINT}")
                self._state = "thought"
            self._new_thought_line(rest)
        elif label == "Action":
            self._saw_label = True
            self._flush_thought()
            self._name = rest.strip()
            self._state = "expect_input"
        elif label == "Action Input":
            self._saw_label = True
            if self._state != "expect_input":
                self._flush_thought()
                self._name = None
            self._state = "input"
            self._body = []
        elif label == "Final Answer":
            self._saw_label = True
            self._flush_thought()
            self._state = "final"
        else:  # Observation: the model is inventing a tool result; ignore the rest
            self._state = "stopped"

    def _input(self, final: bool) -> bool:
        begin = self._json_begin(final)
        if begin == "json":
            self._state = "json"
            return True
        s = self._pending
        nl = s.find("\n")
        if begin == "wait" or (nl < 0 and not final):
            return False
        bad = s if nl < 0 else s[:nl]
        self._pending = "" if nl < 0 else s[nl + 1 :]
        self._error(f"the Action Input is not a JSON object: {snippet(bad)!r}; {_HINT}")
        self._state = "thought"
        return True

    def _json(self, final: bool) -> bool:
        body = self._json_collect()
        if body is None:
            return False
        args = decode_args(body)
        if self._name is None:
            self._error(f"'Action Input:' without an 'Action:' line; {_HINT}")
        elif not self._name:
            self._error(f"the Action has no tool name; {_HINT}")
        elif isinstance(args, str):
            self._error(f"Action {self._name!r}: {args}: {snippet(body)!r}")
        else:
            self._call(self._name, args)
        self._body = []
        self._state = "after"
        return True

    def _after(self, final: bool) -> bool:
        # the rest of the JSON's line, and a closing code fence, are not thoughts
        p = self._pending
        nl = p.find("\n")
        if nl < 0 and not final:
            return False
        line = p if nl < 0 else p[:nl]
        if line.strip() in ("", "```"):
            self._pending = "" if nl < 0 else p[nl + 1 :]
            if line.strip() == "```" or nl < 0:
                self._state = "thought"
            return nl >= 0
        self._state = "thought"
        return True

    def _final(self, final: bool) -> bool:
        self._text(self._ws.push(self._pending))
        self._pending = ""
        return False

    def _stopped(self, final: bool) -> bool:
        self._pending = ""
        return False


class ReactFormat:
    """Qwen's ReAct prompting."""

    name = "react"
    stop_words: list[str] = ["Observation:"]

    def system_prompt(self, tools: Sequence[ToolSpec], instructions: str = "") -> str:
        specs = [ToolSpec.of(t) for t in tools]
        if not specs:
            return instructions.strip() or "You are a helpful assistant."
        descs = "\n\n".join(
            _TOOL_DESC.format(name=s.name, description=s.description, parameters=s.parameters_json)
            for s in specs
        )
        prompt = _REACT_PROMPT.format(tool_descs=descs, tool_names=", ".join(s.name for s in specs))
        return f"{instructions.strip()}\n\n{prompt}" if instructions.strip() else prompt

    def prefill(self, tool_choice: Any) -> str:
        """The start of a reply that must call a tool (``"required"``) or one tool (an
        object with ``name``); empty for ``"auto"``."""
        name = getattr(tool_choice, "name", None)
        if name:
            return f"Action: {name}\nAction Input: "
        return "Action: " if tool_choice == "required" else ""

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        lines = [f"Thought: {content}"] if content else []
        for call in calls:
            lines.append(f"Action: {call.name}")
            lines.append(f"Action Input: {json.dumps(call.arguments, ensure_ascii=False)}")
        return "\n".join(lines)

    def build_prompt(
        self, messages: list[Message], tools: Sequence[ToolSpec], instructions: str = ""
    ) -> list[Message]:
        out = [
            Message(
                role="system",
                content=self.system_prompt(tools, all_instructions(messages, instructions)),
            )
        ]
        trace: list[str] = []
        for msg in messages:
            if msg.role == "user":
                _close_trace(out, trace)
                out.append(Message(role="user", content=_question(msg)))
            elif msg.role == "assistant":
                if msg.tool_calls:
                    trace.append(self.render_calls(msg.tool_calls, msg.reasoning or msg.text))
                else:
                    thought = msg.reasoning or "I now know the final answer"
                    trace.append(f"Thought: {thought}\nFinal Answer: {msg.text}")
            elif msg.role == "tool":
                trace.append(f"Observation: {msg.text}")
        _close_trace(out, trace, open_end=True)
        return out

    def constraint(
        self, tools: Sequence[Any], tool_choice: Any = "auto", parallel: bool = True
    ) -> None:
        """ReAct asks backends to enforce nothing: its calls are checked when parsed."""
        return None

    def exchanges(self, prompt: list[Message]) -> tuple[int, ...]:
        """Where each question begins: every user turn (results live in the trace)."""
        return tuple(i for i, m in enumerate(prompt) if m.role == "user")

    def parser(self) -> ReactParser:
        return ReactParser()

    def parse(self, text: str, finish_reason: str = "stop") -> ParsedOutput:
        return self.parser().run(text, finish_reason)


def _question(msg: Message) -> str | list[Any]:
    if isinstance(msg.content, str):
        return f"Question: {msg.content}"
    return msg.content  # multimodal content is passed as is


def _close_trace(out: list[Message], trace: list[str], open_end: bool = False) -> None:
    if not trace:
        return
    text = "\n".join(trace)
    if open_end and trace[-1].startswith("Observation:"):
        text += "\n"  # the model continues this trace with its next Thought
    out.append(Message(role="assistant", content=text))
    trace.clear()
