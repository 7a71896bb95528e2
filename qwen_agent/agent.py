"""The agent loop: prompt -> model -> parse -> call tools -> observe -> repeat.

``Agent.run`` streams typed events; ``Agent.chat`` drains them and returns the answer and
the whole conversation. Tool calls of one model turn run concurrently; a tool that raises,
times out or returns something unshowable becomes an error observation for the model, and
so does a malformed call. The loop makes at most ``max_steps`` model calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from time import monotonic
from typing import Any, NamedTuple

from qwen_agent.errors import ConfigError, ToolCallError, ToolError
from qwen_agent.events import (
    CallParseError,
    Event,
    FinalEvent,
    HistoryTrimmed,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent.formats import ToolFormat, get_format
from qwen_agent.llm import ChatModel, GenerationConfig, LLMConfig, ModelRequest, get_chat_model
from qwen_agent.messages import Message, ToolCall, ToolResult
from qwen_agent.tool import Tool, Toolset, ToolSpec, as_tool, check_timeout, to_result

__all__ = ["Agent", "ChatResult"]


@dataclass(frozen=True)
class ChatResult:
    """What :meth:`Agent.chat` returns; unpacks as ``answer, messages = agent.chat(...)``.

    ``stop_reason`` is ``"answer"``, or ``"max_steps"`` when the loop hit its bound.
    """

    answer: str
    messages: list[Message]
    stop_reason: str = "answer"

    def __iter__(self) -> Iterator[Any]:
        return iter((self.answer, self.messages))


class Agent:
    """An LLM that plans and calls tools.

    Args:
        llm: a :class:`~qwen_agent.llm.ChatModel`, an :class:`~qwen_agent.llm.LLMConfig` or
            a dict for one; default: the bundled tiny model where the build ships one
            (this one does not yet: a clear ConfigError says what to pass instead).
        tools: tools, ``@tool`` functions, plain typed functions, registered tool names or
            :class:`~qwen_agent.tool.Toolset` objects (an MCP server's tools).
        instructions: the system instructions.
        format: ``"hermes"`` (Qwen2.5/Qwen3 native function calling) or ``"react"``.
        max_steps: most model calls in one run.
        tool_timeout: seconds a tool call may take (a tool's own ``timeout`` wins).
        generation: sampling options for every model call.
        thinking: Qwen3's thinking switch for every model call (the chat template's
            ``enable_thinking``); None: the model's default. ``run(..., thinking=)``
            overrides it for one run.
    """

    def __init__(
        self,
        llm: ChatModel | LLMConfig | dict[str, Any] | None = None,
        tools: Iterable[Any] = (),
        instructions: str = "",
        format: str | ToolFormat = "hermes",
        max_steps: int = 8,
        tool_timeout: float = 60.0,
        generation: GenerationConfig | dict[str, Any] | None = None,
        thinking: bool | None = None,
    ) -> None:
        if max_steps < 1:
            raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
        tool_timeout = check_timeout(tool_timeout, "tool_timeout") or 60.0
        self.tools: dict[str, Tool] = {}
        #: toolsets and tools with a close(): what close() releases
        self._owned: list[Any] = []
        try:
            self._add_tools(tools)
            self.llm = get_chat_model(LLMConfig() if llm is None else llm)
            self.format = get_format(format)
        except BaseException:  # release what was opened for a half-made agent
            self.close()
            raise
        self.instructions = instructions
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        if isinstance(generation, dict):
            generation = GenerationConfig.model_validate(generation)
        self.generation = (generation or GenerationConfig()).with_stop(self.format.stop_words)
        self._specs = tuple(ToolSpec.of(t) for t in self.tools.values())
        #: the backend takes tools natively (an OpenAI-compatible server that parses calls)
        self.native = bool(getattr(self.llm, "native_tools", False))
        self.thinking = thinking

    def _add_tools(self, tools: Iterable[Any]) -> None:
        for obj in tools:
            if isinstance(obj, Toolset):
                if obj not in self._owned:
                    self._owned.append(obj)
                found = list(obj.tools())
            else:
                found = [as_tool(obj)]
                if callable(getattr(found[0], "close", None)):
                    self._owned.append(found[0])
            for t in found:
                check_timeout(t.timeout, f"tool {t.name!r}: timeout")
                if t.name in self.tools:
                    raise ConfigError(f"two tools are named {t.name!r}; tool names must be unique")
                self.tools[t.name] = t

    # -- public API ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the agent's toolsets and its tools that hold something (MCP server
        processes, code-interpreter kernels); ``with Agent(...) as agent:`` does it."""
        owned, self._owned = self._owned, []
        errors = []
        for obj in reversed(owned):
            try:
                obj.close()
            except Exception as exc:  # close the others all the same
                errors.append(f"{obj!r}: {type(exc).__name__}: {exc}")
        if errors:
            raise ToolError("closing the agent's tools failed: " + "; ".join(errors))

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        messages: str | Sequence[Message | dict[str, Any]],
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> Iterator[Event]:
        """Run the loop on a user text (or messages), streaming events; the last one is a
        :class:`~qwen_agent.events.FinalEvent` holding the whole conversation. Reasoning
        streams as :class:`~qwen_agent.events.ReasoningDelta`; a reply that ends inside
        its reasoning (or with nothing after it) is a ``CallParseError`` that the model
        is shown, and the loop goes on."""
        convo = _to_messages(history or []) + (
            [Message(role="user", content=messages)]
            if isinstance(messages, str)
            else _to_messages(messages)
        )
        if not any(m.role == "user" for m in convo):
            raise ConfigError("run() needs at least one user message")
        think = self.thinking if thinking is None else thinking
        for _ in range(self.max_steps):
            reply = yield from self._generate(convo, think)
            convo.append(reply.message)
            if not reply.message.tool_calls and not reply.errors:
                yield FinalEvent(reply.message, convo, "answer")
                return
            for result in (yield from self._call_tools(reply.message.tool_calls)):
                convo.append(Message.from_tool_result(result))
            for err in reply.errors:
                convo.append(Message(role="tool", name="", content=f"Error: {err}"))
        final = Message(
            role="assistant",
            content=f"I stopped after {self.max_steps} steps without reaching a final answer.",
        )
        convo.append(final)
        yield FinalEvent(final, convo, "max_steps")

    def chat(
        self,
        text: str,
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> ChatResult:
        """Run to the end; return the answer text and the whole conversation."""
        final: FinalEvent | None = None
        for event in self.run(text, history, thinking):
            if isinstance(event, FinalEvent):
                final = event
        if final is None:  # run() always ends with a FinalEvent
            raise RuntimeError("the agent loop ended without a final event")
        return ChatResult(final.message.text, final.messages, final.stop_reason)

    # -- one model turn -----------------------------------------------------------------
    def request(self, convo: list[Message], thinking: bool | None = None) -> ModelRequest:
        """The model request for the next turn of ``convo``."""
        if self.native:  # the server renders the tools and parses the calls
            system = (
                [Message(role="system", content=self.instructions)] if self.instructions else []
            )
            return ModelRequest(
                messages=system + list(convo),
                tools=self._specs,
                generation=self.generation,
                thinking=thinking,
            )
        # ToolSpecs as they are: tool_specs() takes them without validating them again
        prompt = self.format.build_prompt(convo, list(self._specs), self.instructions)
        return ModelRequest(
            messages=prompt,
            tools=self._specs,
            format=self.format.name,
            generation=self.generation,
            thinking=thinking,
        )

    def _generate(self, convo: list[Message], thinking: bool | None = None) -> Iterator[Event]:
        parser = self.format.parser()
        parser.id_prefix = f"call_{len(convo)}_"
        finish: str | None = None
        native: list[ToolCall] = []
        errors: list[str] = []
        for delta in self.llm.stream(self.request(convo, thinking)):
            if delta.trimmed is not None:
                t = delta.trimmed
                yield HistoryTrimmed(
                    t.exchanges, t.messages, t.prompt_tokens, t.max_tokens, t.context_window
                )
            if delta.text:
                yield from parser.feed(delta.text)
            if delta.tool_calls:
                for call in delta.tool_calls:
                    call = (
                        call
                        if call.id
                        else call.model_copy(update={"id": f"call_{len(convo)}_n{len(native)}"})
                    )
                    native.append(call)
                    yield ToolCallEvent(call)
            if delta.call_errors:
                errors.extend(delta.call_errors)
                yield from (CallParseError(e) for e in delta.call_errors)
            if delta.finish_reason is not None:
                finish = delta.finish_reason
        yield from parser.finish(finish or "stop")
        out = parser.result()
        message = Message(
            role="assistant",
            content=out.content,
            tool_calls=[*out.calls, *native],
            reasoning=out.reasoning,
        )
        return _Reply(message, [*out.errors, *errors])

    # -- tools --------------------------------------------------------------------------
    def _call_tools(self, calls: list[ToolCall]) -> Iterator[Event]:
        """Run the calls concurrently; yield results as they finish; return them in order."""
        results: list[ToolResult | None] = [None] * len(calls)
        pending: dict[Future[Any], int] = {}
        deadlines: dict[int, float] = {}
        try:  # whenever the run is closed, nothing waits for the calls still pending
            for i, call in enumerate(calls):
                tool = self.tools.get(call.name)
                try:
                    if tool is None:
                        raise ToolCallError(_unknown_tool(call.name, self.tools))
                    args = tool.validate(call.arguments)
                    future = _submit(tool, args)
                except ToolCallError as exc:
                    results[i] = ToolResult.error(f"Error: {exc}", call_id=call.id, name=call.name)
                    yield ToolResultEvent(results[i])
                    continue
                pending[future] = i
                deadlines[i] = monotonic() + (tool.timeout or self.tool_timeout)
            while pending:
                now = monotonic()
                timeout = max(0.0, min(deadlines[i] for i in pending.values()) - now)
                done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = _result_of(fut, calls[i])
                    yield ToolResultEvent(results[i])
                now = monotonic()
                for fut, i in list(pending.items()):
                    if deadlines[i] <= now:
                        del pending[fut]
                        _abandon(fut)  # its slot is free for other calls at once
                        limit = self.tools[calls[i].name].timeout or self.tool_timeout
                        results[i] = ToolResult.error(
                            f"Error: tool {calls[i].name!r} timed out after {limit:g} s",
                            call_id=calls[i].id,
                            name=calls[i].name,
                        )
                        yield ToolResultEvent(results[i])
        finally:
            for fut in pending:
                _abandon(fut)
        return [r for r in results if r is not None]


class _Reply(NamedTuple):
    message: Message
    errors: list[str]


def _to_messages(items: Sequence[Message | dict[str, Any]]) -> list[Message]:
    if isinstance(items, str):
        raise ConfigError("history must be a list of messages, not a string")
    return [m if isinstance(m, Message) else Message.model_validate(m) for m in items]


def _unknown_tool(name: str, tools: dict[str, Tool]) -> str:
    known = ", ".join(sorted(tools)) or "none"
    return f"there is no tool named {name!r}; available tools: {known}"


def _result_of(fut: Future[Any], call: ToolCall) -> ToolResult:
    try:
        value = fut.result()
    except Exception as exc:  # a tool's failure is an observation, not a crash
        return ToolResult.error(
            f"Error: tool {call.name!r} failed: {type(exc).__name__}: {exc}",
            call_id=call.id,
            name=call.name,
        )
    return to_result(value, call_id=call.id, name=call.name)


# -- where tools run: sync ones each on a thread (qwen_agent.toolrun), async ones on one loop
_lock = threading.Lock()
_loop: Any = None


def _submit(tool: Tool, args: dict[str, Any]) -> Future[Any]:
    if tool.is_async:
        import asyncio

        return asyncio.run_coroutine_threadsafe(tool.call(**args), _event_loop())
    from qwen_agent.toolrun import runner

    return runner().submit(tool.call, **args)


def _abandon(fut: Future[Any]) -> None:
    from qwen_agent.toolrun import runner

    runner().abandon(fut)
    fut.cancel()  # an async call's task is cancelled; a thread's future is dropped


def _event_loop() -> Any:
    global _loop
    if _loop is None:
        import asyncio

        with _lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="qwen-agent-async-tools", daemon=True
                ).start()
                _loop = loop
    return _loop
