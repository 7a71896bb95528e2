"""What every tool-use format shares: the parsed output, the parser base and JSON helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from qwen_agent.events import CallParseError, ParserEvent, ReasoningDelta, TextDelta, ToolCallEvent
from qwen_agent.messages import Message, ToolCall

if TYPE_CHECKING:
    from qwen_agent.llm import CallConstraint
    from qwen_agent.tool import ToolSpec

__all__ = [
    "ParsedOutput",
    "StreamParser",
    "ToolFormat",
    "JsonObjectScanner",
    "decode_call_json",
    "tool_specs",
    "all_instructions",
    "WhitespaceHolder",
    "prepare",
    "ReasoningSplitter",
]


@dataclass
class ParsedOutput:
    """What a model's output means: answer text, tool calls, reasoning, and errors for the
    calls that could not be read (to be shown to the model)."""

    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reasoning: str = ""


class StreamParser:
    """Incremental parser base: ``feed`` deltas, then ``finish``; both return events.

    Subclasses implement ``_feed`` and ``_finish`` and report through ``_text``,
    ``_reasoning``, ``_call`` and ``_error``. :meth:`result` collects the events so far.
    """

    def __init__(self) -> None:
        self._events: list[ParserEvent] = []
        self._out: list[ParserEvent] = []
        self._ncalls = 0
        self.finished = False
        #: calls are numbered ``{id_prefix}{n}``; the agent sets a prefix unique per turn
        self.id_prefix = "call_"
        self._pending = ""  # text received but not yet consumed
        self._scanner = JsonObjectScanner()
        self._body: list[str] = []  # pieces of the JSON object being read
        #: what starts a call in this format; counted inside reasoning as drafts
        self.draft_tag = ""
        self._think_began = False  # a <think> block began
        self._drafts = 0  # draft calls inside it
        self._draft_tail = ""  # the end of the reasoning so far, for tags split across deltas
        self._answered = False  # text, a call or an error after the reasoning

    def feed(self, delta: str) -> list[ParserEvent]:
        if self.finished:
            raise RuntimeError("feed() after finish()")
        if delta:
            self._feed(delta)
        return self._flush()

    def finish(self, finish_reason: str | None = "stop") -> list[ParserEvent]:
        """End of the stream. ``finish_reason="length"`` means the generation was cut."""
        if not self.finished:
            self.finished = True
            self._finish(finish_reason or "stop")
        return self._flush()

    def run(self, text: str, finish_reason: str = "stop") -> ParsedOutput:
        """Parse a whole text at once (what ``ToolFormat.parse`` does)."""
        self.feed(text)
        self.finish(finish_reason)
        return self.result()

    def result(self) -> ParsedOutput:
        out = ParsedOutput()
        text, reasoning = [], []
        for ev in self._events:
            if isinstance(ev, TextDelta):
                text.append(ev.text)
            elif isinstance(ev, ReasoningDelta):
                reasoning.append(ev.text)
            elif isinstance(ev, ToolCallEvent):
                out.calls.append(ev.call)
            else:
                out.errors.append(ev.message)
        out.content = "".join(text)
        out.reasoning = "".join(reasoning)
        return out

    # -- for subclasses ---------------------------------------------------------------
    def _json_begin(self, final: bool) -> str:
        """Skip whitespace and an opening code fence before a JSON object in ``_pending``.

        Returns ``"json"`` (the object starts; the scanner is reset), ``"wait"`` (more text
        is needed to tell) or ``"bad"`` (what follows is not a JSON object).
        """
        s = self._pending.lstrip()
        self._pending = s
        if not s:
            return "wait"
        if s[0] == "{":
            self._scanner = JsonObjectScanner()
            self._body = []
            return "json"
        if s.startswith("```"):
            m = _FENCE_LINE.match(s)
            if m and (m.end() < len(s) or s.endswith("\n") or final):
                self._pending = s[m.end() :]
                return self._json_begin(final)
            return "wait"
        return "wait" if "```".startswith(s) and not final else "bad"

    def _json_collect(self) -> str | None:
        """Scan ``_pending`` as JSON; the whole object's text once it closed, else None."""
        p = self._pending
        end = self._scanner.feed(p)
        if end < 0:
            self._body.append(p)
            self._pending = ""
            return None
        self._body.append(p[:end])
        self._pending = p[end:]
        return "".join(self._body)

    def _feed(self, delta: str) -> None:
        raise NotImplementedError

    def _finish(self, finish_reason: str) -> None:
        raise NotImplementedError

    def _flush(self) -> list[ParserEvent]:
        out = self._out
        if not out:  # most deltas: nothing to report yet
            return []
        self._out = []
        self._events.extend(out)
        return out

    def _think_start(self, final: bool) -> str:
        """At the start of a reply: ``"think"`` (a ``<think>`` block opens; ``_pending``
        holds what follows it), ``"wait"`` (too little text to tell) or ``"no"``."""
        s = self._pending.lstrip()
        if s.startswith("<think>"):
            self._pending = s[len("<think>") :]
            self._think_began = True
            return "think"
        if not s or ("<think>".startswith(s) and not final):
            return "wait"
        return "no"

    def _think_step(self, final: bool, ws: WhitespaceHolder) -> bool:
        """Inside a ``<think>`` block: streams ``_pending`` as reasoning (whitespace held by
        ``ws``), counting drafted calls; True once ``</think>`` closed it (``_pending`` then
        holds what follows)."""
        p = self._pending
        idx = p.find("</think>")
        if idx >= 0:
            self._count_drafts(p[:idx])
            self._reasoning(ws.push(p[:idx]))
            self._pending = p[idx + len("</think>") :]
            return True
        keep = 0 if final else partial_suffix(p, "</think>")
        self._count_drafts(p[: len(p) - keep])
        self._reasoning(ws.push(p[: len(p) - keep]))
        self._pending = p[len(p) - keep :]
        return False

    def _count_drafts(self, reasoning: str) -> None:
        """Counts :attr:`draft_tag` in the reasoning, also one split across pieces."""
        tag = self.draft_tag
        if not tag:
            return
        seen = self._draft_tail + reasoning
        self._drafts += seen.count(tag)
        self._draft_tail = seen[-(len(tag) - 1) :]

    def _drafted(self) -> str:
        n = self._drafts
        if not n:
            return ""
        return (
            f", and the {n} tool call{'s' if n > 1 else ''} written inside the reasoning "
            f"{'were' if n > 1 else 'was'} not run (calls inside <think> are drafts)"
        )

    def _unclosed_thought(self, finish_reason: str) -> None:
        cut = " (cut off by the token limit)" if finish_reason == "length" else ""
        self._error(
            f"the reply ended inside its reasoning{cut}: <think> was not closed with "
            f"</think>, so there is no answer{self._drafted()}; close the reasoning with "
            "</think>, then answer or call a tool"
        )

    def _check_answered(self) -> None:
        """Reasoning with nothing after it is an error for the model, not a silent end."""
        if self._think_began and not self._answered:
            self._error(
                "the reply has reasoning but no answer or tool call after </think>"
                f"{self._drafted()}; after </think>, answer or write the tool call"
            )

    def _text(self, text: str) -> None:
        if text:
            self._answered = True
            self._out.append(TextDelta(text))

    def _reasoning(self, text: str) -> None:
        if text:
            self._out.append(ReasoningDelta(text))

    def _call(self, name: str, arguments: dict[str, Any]) -> None:
        self._answered = True
        call = ToolCall(id=f"{self.id_prefix}{self._ncalls}", name=name, arguments=arguments)
        self._ncalls += 1
        self._out.append(ToolCallEvent(call))

    def _error(self, message: str) -> None:
        self._answered = True
        self._out.append(CallParseError(message))


class ReasoningSplitter(StreamParser):
    """For replies with no tools in play: a leading ``<think>...</think>`` is reasoning, the
    rest is the text exactly as written (whitespace right after ``</think>`` aside). No
    calls, no errors: an unclosed reasoning is all reasoning."""

    _OPEN, _CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        super().__init__()
        self._state = "start"
        self._ws = WhitespaceHolder()

    def _feed(self, delta: str) -> None:
        self._pending += delta
        self._step(final=False)

    def _finish(self, finish_reason: str) -> None:
        self._step(final=True)
        if self._state == "think":
            self._reasoning(self._ws.push(self._pending))
        elif self._pending:
            self._text(self._pending)
        self._pending = ""

    def _step(self, final: bool) -> None:
        p = self._pending
        if self._state == "start":
            s = p.lstrip()
            if s.startswith(self._OPEN):
                p, self._state = s[len(self._OPEN) :], "think"
            elif (not s or self._OPEN.startswith(s)) and not final:
                return
            else:
                self._state = "text"
        if self._state == "think":
            idx = p.find(self._CLOSE)
            if idx < 0:
                keep = 0 if final else partial_suffix(p, self._CLOSE)
                self._reasoning(self._ws.push(p[: len(p) - keep]))
                self._pending = p[len(p) - keep :]
                return
            self._reasoning(self._ws.push(p[:idx]))
            p, self._state = p[idx + len(self._CLOSE) :], "after"
        if self._state == "after":
            p = p.lstrip()
            if not p:
                self._pending = ""
                return
            self._state = "text"
        if self._state == "text":
            self._text(p)
            self._pending = ""
            return
        self._pending = p


class ToolFormat(Protocol):
    """How tool use is written in text. One module per format. Tools are
    :class:`~qwen_agent.tool.ToolSpec` objects (anything :meth:`ToolSpec.of` takes is
    accepted too)."""

    name: str
    #: words that end a generation (e.g. ReAct's ``Observation:``)
    stop_words: list[str]

    def system_prompt(self, tools: Sequence[ToolSpec], instructions: str = "") -> str:
        """The system prompt that lists ``tools``."""
        ...

    def build_prompt(
        self, messages: list[Message], tools: Sequence[ToolSpec], instructions: str = ""
    ) -> list[Message]:
        """Plain messages (system/user/assistant text) ready for a backend."""
        ...

    def render_calls(self, calls: list[ToolCall], content: str = "") -> str:
        """The exact text a model following the format writes for ``calls``."""
        ...

    def constraint(
        self, tools: Sequence[ToolSpec], tool_choice: Any = "auto", parallel: bool = True
    ) -> CallConstraint | None:
        """What a backend should enforce on the reply's calls, or None."""
        ...

    def exchanges(self, prompt: list[Message]) -> tuple[int, ...]:
        """Where each question of the user begins in a prompt this format built."""
        ...

    def parser(self) -> StreamParser:
        """A fresh incremental parser."""
        ...

    def parse(self, text: str, finish_reason: str = "stop") -> ParsedOutput:
        """Parse a whole output (never raises)."""
        ...


def prepare(
    fmt: ToolFormat,
    messages: list[Message],
    tools: Sequence[ToolSpec],
    instructions: str = "",
    tool_choice: Any = "auto",
) -> tuple[list[Message], str]:
    """The prompt for one model turn, and the text it begins the reply with.

    ``tool_choice`` ``"none"`` lists no tools; ``"required"`` or a function (an object
    with ``name``) begins the reply with the start of a call, in the format's own words
    (its ``prefill(tool_choice)``), so any backend that continues a final assistant
    message writes a call. Feed the returned text to the parser before the model's."""
    listed = [] if tool_choice == "none" else tools
    prompt = fmt.build_prompt(messages, listed, instructions)
    begin = getattr(fmt, "prefill", None)
    text = begin(tool_choice) if listed and begin is not None and tool_choice != "auto" else ""
    if text:
        last = prompt[-1]
        if last.role == "assistant":
            prompt[-1] = last.model_copy(update={"content": last.text + text})
        else:
            prompt.append(Message(role="assistant", content=text))
    return prompt, text


def all_instructions(messages: list[Message], instructions: str) -> str:
    """The agent's instructions followed by the text of any system messages."""
    system = [m.text for m in messages if m.role == "system"]
    return "\n\n".join(s for s in [instructions.strip(), *system] if s)


def tool_specs(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """``{"name", "description", "parameters"}`` dicts from tools, specs or tool dicts
    (bare or OpenAI's ``{"type": "function", "function": {...}}``); ConfigError for
    anything else."""
    from qwen_agent.tool import ToolSpec

    return [ToolSpec.of(t).as_dict() for t in tools]


class WhitespaceHolder:
    """Streams text with leading and trailing whitespace removed: whitespace is held back
    until non-space text follows it; whitespace before any text is dropped."""

    __slots__ = ("held", "started")

    def __init__(self) -> None:
        self.held = ""
        self.started = False

    def push(self, text: str) -> str:
        """Text that is certain to be shown, given ``text`` arrived."""
        if not text:
            return ""
        stripped = text.rstrip()
        if not stripped:
            if self.started:
                self.held += text
            return ""
        tail = text[len(stripped) :]
        if not self.started:
            stripped = stripped.lstrip()
            self.started = True
            out = stripped
        else:
            out = self.held + stripped
        self.held = tail
        return out

    def drop(self) -> None:
        """Forget held whitespace (the text segment ended)."""
        self.held = ""


_STRUCT = re.compile(r"[{}\[\]\"']")


class JsonObjectScanner:
    """Finds where a JSON (or JSON5) object ends, fed piece by piece in O(length).

    Tracks nesting and strings (double- or single-quoted, with escapes); ``feed`` returns
    the index in the given piece just past the closing ``}``, or -1.
    """

    __slots__ = ("depth", "quote", "escape", "done")

    def __init__(self) -> None:
        self.depth = 0
        self.quote = ""
        self.escape = False
        self.done = False

    def feed(self, piece: str) -> int:
        i, n = 0, len(piece)
        while i < n:
            if self.quote:
                if self.escape:
                    self.escape = False
                    i += 1
                    continue
                j = _next_in_string(piece, i, self.quote)
                if j < 0:
                    return -1
                if piece[j] == "\\":
                    self.escape = True
                    i = j + 1
                    continue
                self.quote = ""
                i = j + 1
                continue
            m = _STRUCT.search(piece, i)
            if m is None:
                return -1
            c = m.group()
            i = m.end()
            if c in "\"'":
                self.quote = c
            elif c in "{[":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth <= 0:
                    self.done = True
                    return i
        return -1


_STRING_STOP = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}


def _next_in_string(piece: str, start: int, quote: str) -> int:
    m = _STRING_STOP[quote].search(piece, start)
    return m.start() if m else -1


_FENCE_LINE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?")


#: how deeply a tool call's arguments may nest (a model looping on "[" is not a call)
MAX_ARGUMENT_DEPTH = 64


def loads_lenient(text: str) -> Any:
    """``json.loads``, then JSON5 for what models often write (single quotes, trailing
    commas, comments). Raises ValueError with the JSON error's message, also for NaN or
    infinite numbers and for values nested deeper than ``MAX_ARGUMENT_DEPTH``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"it nests deeper than {MAX_ARGUMENT_DEPTH} levels") from None
    except ValueError as first:
        import json5

        try:
            value = json5.loads(text)
        except Exception:
            raise ValueError(str(first)) from None
    _check_top(value)
    return value


_INFINITIES = (float("inf"), float("-inf"))


def _check_value(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_ARGUMENT_DEPTH:
            raise ValueError(f"it nests deeper than {MAX_ARGUMENT_DEPTH} levels")
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, float) and (child != child or child in _INFINITIES):
                raise ValueError(f"{child} is not a JSON number")


def _check_top(value: Any) -> None:
    if isinstance(value, (dict, list)):
        _check_value(value)
    elif isinstance(value, float) and (value != value or value in _INFINITIES):
        raise ValueError(f"{value} is not a JSON number")


def decode_call_json(body: str) -> tuple[str, dict[str, Any]] | str:
    """Decode a ``{"name": ..., "arguments": {...}}`` object. Returns ``(name, args)`` or
    an error message for the model."""
    try:
        obj = loads_lenient(body)
    except ValueError as exc:
        return f"the tool call is not valid JSON ({exc})"
    if not isinstance(obj, dict):
        return 'the tool call must be a JSON object with "name" and "arguments"'
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return 'the tool call has no "name" string'
    args = obj.get("arguments", obj.get("parameters", {}))
    return (name, args) if isinstance(args, dict) else _decode_args(name, args)


def decode_args(raw: str) -> dict[str, Any] | str:
    """Decode an arguments object given as text; error message on failure."""
    try:
        args = loads_lenient(raw)
    except ValueError as exc:
        return f"the arguments are not valid JSON ({exc})"
    if not isinstance(args, dict):
        return "the arguments must be a JSON object"
    return args


def _decode_args(name: str, args: Any) -> tuple[str, dict[str, Any]] | str:
    if args is None:
        return name, {}
    if isinstance(args, str):  # some models write the arguments as a JSON string
        decoded = decode_args(args) if args.strip() else {}
        if isinstance(decoded, dict):
            return name, decoded
        return f"tool {name!r}: {decoded}"
    return f'tool {name!r}: "arguments" must be a JSON object'


def snippet(text: str, limit: int = 200) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


def partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    first = tag[0]
    i = text.find(first, max(0, len(text) - len(tag) + 1))
    while i >= 0:
        if tag.startswith(text[i:]):
            return len(text) - i
        i = text.find(first, i + 1)
    return 0
