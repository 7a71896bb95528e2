"""One model turn, written once for the agent, ``serve`` and the app.

:func:`build_request` makes the :class:`~qwen_agent.llm.ModelRequest` for the next turn of
a conversation: tools passed natively to a backend that parses calls itself, the messages
as given when no tool is in play, or the format's rendering with its stop words, its
prefill for a forced call and its :class:`~qwen_agent.llm.CallConstraint`.
:class:`TurnAssembler` turns the model's deltas into the core's typed events and one
assistant message: text, reasoning (the parser's and the backend's), calls with their ids,
the calls that could not be read, usage and the finish reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from qwen_agent.events import (
    CallParseError,
    Event,
    HistoryTrimmed,
    ReasoningDelta,
    TextDelta,
    ToolCallEvent,
)
from qwen_agent.formats.base import (
    ReasoningSplitter,
    StreamParser,
    ToolFormat,
    all_instructions,
    prepare,
)
from qwen_agent.llm import (
    Delta,
    GenerationConfig,
    ModelRequest,
    ResponseFormat,
    ToolChoice,
    TurnContext,
    Usage,
)
from qwen_agent.messages import Message, ToolCall
from qwen_agent.tool import ToolSpec

__all__ = ["PreparedTurn", "TurnAssembler", "build_request"]

#: how the reply's text is read: by the format's parser, as text with a leading
#: ``<think>`` block split off, or as it is (a JSON ``response_format``)
Reading = Literal["format", "reasoning", "raw"]


@dataclass(frozen=True)
class PreparedTurn:
    """A request and how to read its reply."""

    request: ModelRequest
    fmt: ToolFormat
    reading: Reading
    #: the text the reply begins with (fed to the parser before the model's)
    prefill: str = ""
    #: False for ``tool_choice="none"``: calls the model writes anyway are dropped
    takes_calls: bool = True

    def assembler(
        self, id_prefix: str = "call_", new_id: Callable[[], str] | None = None
    ) -> TurnAssembler:
        """A fresh assembler for this turn's reply."""
        if self.reading == "format":
            parser: StreamParser | None = self.fmt.parser()
        elif self.reading == "reasoning":
            parser = ReasoningSplitter()
        else:
            parser = None
        return TurnAssembler(
            parser,
            self.prefill,
            parallel=self.request.parallel_tool_calls,
            takes_calls=self.takes_calls,
            id_prefix=id_prefix,
            new_id=new_id,
        )


def build_request(
    fmt: ToolFormat,
    messages: list[Message],
    tools: Sequence[ToolSpec] = (),
    *,
    instructions: str | None = None,
    tool_choice: ToolChoice = "auto",
    parallel: bool = True,
    generation: GenerationConfig | None = None,
    thinking: bool | None = None,
    native: bool = False,
    response_format: ResponseFormat | None = None,
    on_overflow: Literal["drop_oldest", "error"] = "drop_oldest",
) -> PreparedTurn:
    """The request for the next turn of ``messages`` (see the module docstring).
    ``native``: the backend takes tools as data and parses calls itself.
    ``instructions``: the agent's system instructions, listed with the tools as the
    format writes them; None (a server's request) sends a conversation with no tool in
    play as it is."""
    gen = generation or GenerationConfig()
    tools = tuple(tools)
    common = dict(
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        response_format=response_format,
        thinking=thinking,
        on_overflow=on_overflow,
    )
    plain = (
        instructions is None
        and not tools
        and not any(m.tool_calls or m.role == "tool" for m in messages)
    )
    if native or plain:
        system = [Message(role="system", content=instructions)] if instructions else []
        request = ModelRequest(
            messages=system + list(messages), tools=tools, generation=gen, **common
        )
        reading: Reading = "raw" if response_format is not None else "reasoning"
        return PreparedTurn(request, fmt, reading)
    instructions = instructions or ""
    listed = tools if tool_choice != "none" else ()
    prompt, prefill = prepare(fmt, messages, list(tools), instructions, tool_choice)
    make = getattr(fmt, "constraint", None)
    constraint = make(listed, tool_choice, parallel) if listed and make is not None else None
    exchanges = getattr(fmt, "exchanges", None)
    if tool_choice == "none":
        # no call may come back: the model stops where one would begin, and what it
        # wrote of one is parsed away, never shown as content
        gen = gen.with_stop([fmt.parser().draft_tag])
    else:
        gen = gen.with_stop(fmt.stop_words)
        if constraint is not None and not parallel:
            gen = gen.with_stop([constraint.close])
    request = ModelRequest(
        messages=prompt,
        tools=tools,
        format=fmt.name,
        generation=gen,
        constraint=constraint,
        exchanges=exchanges(prompt) if exchanges is not None else None,
        context=_context(messages, instructions),
        **common,
    )
    return PreparedTurn(request, fmt, "format", prefill, takes_calls=tool_choice != "none")


def _context(messages: list[Message], instructions: str) -> TurnContext:
    users = [m for m in messages if m.role == "user"]
    results: list[str] = []
    for m in reversed(messages):  # the results the reply answers, if it answers some
        if m.role != "tool":
            break
        results.append(m.text)
    return TurnContext(
        instructions=all_instructions(messages, instructions),
        question=users[-1].text if users else "",
        results=tuple(reversed(results)),
    )


@dataclass
class TurnAssembler:
    """Reads one reply: :meth:`feed` each delta and :meth:`finish` at the end; both return
    the turn's events. Calls are numbered ``{id_prefix}{n}`` (a backend's own call ids are
    kept), or each gets ``new_id()`` when given. Without ``parallel`` only the first call
    counts; without ``takes_calls`` none does."""

    parser: StreamParser | None
    prefill: str = ""
    parallel: bool = True
    takes_calls: bool = True
    id_prefix: str = "call_"
    new_id: Callable[[], str] | None = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    chars: int = 0
    _backend_calls: int = 0

    def __post_init__(self) -> None:
        if self.parser is not None:
            self.parser.id_prefix = self.id_prefix
            if self.prefill:
                self.parser.feed(self.prefill)

    def feed(self, delta: Delta) -> list[Event]:
        text = delta.text
        if (  # the common delta: text alone
            delta.finish_reason is None
            and delta.usage is None
            and delta.trimmed is None
            and not delta.reasoning
            and not delta.tool_calls
            and not delta.call_errors
        ):
            if not text:
                return []
            self.chars += len(text)
            if self.parser is None:
                self.content.append(text)
                return [TextDelta(text)]
            events = self.parser.feed(text)
            for ev in events:  # loops, not generators: this runs for every delta
                if type(ev) is not TextDelta:
                    out: list[Event] = []
                    self._take(events, out)
                    return out
            content = self.content
            for ev in events:
                content.append(ev.text)
            return events
        return self._feed(delta)

    def _feed(self, delta: Delta) -> list[Event]:
        out: list[Event] = []
        if delta.trimmed is not None:
            t = delta.trimmed
            out.append(
                HistoryTrimmed(
                    t.exchanges, t.messages, t.prompt_tokens, t.max_tokens, t.context_window
                )
            )
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.reasoning:
            self.reasoning.append(delta.reasoning)
            out.append(ReasoningDelta(delta.reasoning))
        if delta.text:
            self.chars += len(delta.text)
            if self.parser is None:
                self.content.append(delta.text)
                out.append(TextDelta(delta.text))
            else:
                self._take(self.parser.feed(delta.text), out)
        for call in delta.tool_calls or ():
            if not call.id:
                call = call.model_copy(update={"id": f"{self.id_prefix}n{self._backend_calls}"})
            self._backend_calls += 1
            self._take([ToolCallEvent(call)], out)
        self._take([CallParseError(e) for e in delta.call_errors or ()], out)
        return out

    def finish(self) -> list[Event]:
        out: list[Event] = []
        if self.parser is not None:
            self._take(self.parser.finish(self.finish_reason or "stop"), out)
        return out

    def _take(self, events: Sequence[Event], out: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, TextDelta):
                self.content.append(ev.text)
                out.append(ev)
            elif isinstance(ev, ReasoningDelta):
                self.reasoning.append(ev.text)
                out.append(ev)
            elif isinstance(ev, ToolCallEvent):
                if not self.takes_calls or (self.calls and not self.parallel):
                    continue
                call = ev.call
                if self.new_id is not None:
                    call = call.model_copy(update={"id": self.new_id()})
                self.calls.append(call)
                out.append(ToolCallEvent(call) if call is not ev.call else ev)
            elif isinstance(ev, CallParseError):
                if self.takes_calls:
                    self.errors.append(ev.message)
                    out.append(ev)
            else:
                out.append(ev)

    def message(self) -> Message:
        """The assistant message of the reply so far."""
        return Message(
            role="assistant",
            content="".join(self.content),
            tool_calls=list(self.calls),
            reasoning="".join(self.reasoning),
        )

    def reason(self) -> str:
        """OpenAI's finish reason: ``tool_calls`` when the reply called tools."""
        return "tool_calls" if self.calls else (self.finish_reason or "stop")

    def total_usage(self) -> Usage:
        """The backend's usage, or the characters read when it gave none."""
        return self.usage or Usage(0, self.chars)
