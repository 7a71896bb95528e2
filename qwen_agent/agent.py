"""The agent loop: prompt -> model -> parse -> call tools -> observe -> repeat.

``Agent.arun`` is the loop: an async iterator of typed events; ``Agent.achat`` awaits it to
the end and returns the answer and the whole conversation. ``Agent.run`` and
``Agent.chat`` are their sync wrappers (:mod:`qwen_agent.aio`). The request of each turn
is built and its reply assembled by :mod:`qwen_agent.turn`, as the server does. Tool calls
of one model turn run concurrently; a tool that raises, times out or returns something
unshowable becomes an error observation for the model, and so does a malformed call. The
loop makes at most ``max_steps`` model calls.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING, Any

from qwen_agent.errors import ConfigError, ToolCallError, ToolError
from qwen_agent.events import Event, FinalEvent, ToolResultEvent
from qwen_agent.formats import ToolFormat, get_format
from qwen_agent.llm import (
    ChatModel,
    GenerationConfig,
    LLMConfig,
    ModelRequest,
    aclose,
    astream,
    get_chat_model,
)
from qwen_agent.messages import Message, ToolCall, ToolResult
from qwen_agent.tool import Tool, Toolset, ToolSpec, as_tool, check_timeout, to_result
from qwen_agent.turn import PreparedTurn, build_request

if TYPE_CHECKING:
    from qwen_agent.config import AgentConfig

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
            a dict for one; default: the bundled model (a clear ConfigError says what to
            pass instead when the install lacks it).
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

    @classmethod
    def from_config(cls, config: AgentConfig | str | os.PathLike[str], **options: Any) -> Agent:
        """The agent an :class:`~qwen_agent.config.AgentConfig` (or a TOML/JSON file of one,
        as ``qwen-agent chat --config`` reads it) describes; ``options`` go to
        :meth:`AgentConfig.build <qwen_agent.config.AgentConfig.build>` (``llm=`` to run it
        on another model)."""
        from qwen_agent.config import AgentConfig

        if not isinstance(config, AgentConfig):
            config = AgentConfig.load(config)
        return config.build(**options)

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

    async def arun(
        self,
        messages: str | Sequence[Message | dict[str, Any]],
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> AsyncIterator[Event]:
        """Run the loop on a user text (or messages), streaming events; the last one is a
        :class:`~qwen_agent.events.FinalEvent` holding the whole conversation. Reasoning
        streams as :class:`~qwen_agent.events.ReasoningDelta`; a reply that ends inside
        its reasoning (or with nothing after it) is a ``CallParseError`` that the model
        is shown, and the loop goes on. The tool calls of one turn run concurrently (sync
        tools in worker threads); cancelling the run (or closing this iterator) cancels
        them and the model's stream."""
        convo = _to_messages(history or []) + (
            [Message(role="user", content=messages)]
            if isinstance(messages, str)
            else _to_messages(messages)
        )
        if not any(m.role == "user" for m in convo):
            raise ConfigError("run() needs at least one user message")
        think = self.thinking if thinking is None else thinking
        for _ in range(self.max_steps):
            turn = self.prepare(convo, think)
            reply = turn.assembler(id_prefix=f"call_{len(convo)}_")
            deltas = astream(self.llm, turn.request)
            try:
                async for delta in deltas:
                    for event in reply.feed(delta):
                        yield event
            finally:
                await aclose(deltas)
            for event in reply.finish():
                yield event
            message = reply.message()
            convo.append(message)
            if not message.tool_calls and not reply.errors:
                yield FinalEvent(message, convo, "answer")
                return
            results: list[ToolResult | None] = [None] * len(message.tool_calls)
            async for event in self._acall_tools(message.tool_calls, results):
                yield event
            for result in results:
                if result is not None:
                    convo.append(Message.from_tool_result(result))
            for err in reply.errors:
                convo.append(Message(role="tool", name="", content=f"Error: {err}"))
        final = Message(
            role="assistant",
            content=f"I stopped after {self.max_steps} steps without reaching a final answer.",
        )
        convo.append(final)
        yield FinalEvent(final, convo, "max_steps")

    def run(
        self,
        messages: str | Sequence[Message | dict[str, Any]],
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> Iterator[Event]:
        """:meth:`arun` for sync code: the same events, in the calling thread. Leaving the
        loop early (``break``, ``close()``) cancels the run's tool calls and model stream."""
        from qwen_agent.aio import iterate

        return iterate(lambda: self.arun(messages, history, thinking))

    async def achat(
        self,
        text: str,
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> ChatResult:
        """Run to the end; return the answer text and the whole conversation."""
        final: FinalEvent | None = None
        async for event in self.arun(text, history, thinking):
            if isinstance(event, FinalEvent):
                final = event
        if final is None:  # arun() always ends with a FinalEvent
            raise RuntimeError("the agent loop ended without a final event")
        return ChatResult(final.message.text, final.messages, final.stop_reason)

    def chat(
        self,
        text: str,
        history: Sequence[Message | dict[str, Any]] | None = None,
        thinking: bool | None = None,
    ) -> ChatResult:
        """:meth:`achat` for sync code."""
        from qwen_agent.aio import run_sync

        return run_sync(self.achat(text, history, thinking))

    # -- one model turn -----------------------------------------------------------------
    def prepare(self, convo: list[Message], thinking: bool | None = None) -> PreparedTurn:
        """The model request for the next turn of ``convo``, and how to read its reply."""
        return build_request(
            self.format,
            convo,
            self._specs,
            instructions=self.instructions,
            generation=self.generation,
            thinking=thinking,
            native=self.native,
        )

    def request(self, convo: list[Message], thinking: bool | None = None) -> ModelRequest:
        """The model request for the next turn of ``convo``."""
        return self.prepare(convo, thinking).request

    # -- tools --------------------------------------------------------------------------
    async def _acall_tools(
        self, calls: list[ToolCall], results: list[ToolResult | None]
    ) -> AsyncIterator[Event]:
        """Run the calls concurrently; yield results as they finish and put them in
        ``results`` in the calls' order. Whenever this ends, no call is left running:
        async ones are cancelled, sync ones abandoned (their threads' slots freed)."""
        import asyncio

        from qwen_agent import aio

        pending: dict[Any, int] = {}  # a call's future (see _start) -> its index
        deadlines: dict[int, float] = {}
        if all(c.name in self.tools and not self.tools[c.name].is_async for c in calls):
            await aio.hand_over()  # see _wait_any
        try:
            for i, call in enumerate(calls):
                tool = self.tools.get(call.name)
                try:
                    if tool is None:
                        raise ToolCallError(_unknown_tool(call.name, self.tools))
                    args = tool.validate(call.arguments)
                    task = _start(tool, args)
                except ToolCallError as exc:
                    results[i] = ToolResult.error(f"Error: {exc}", call_id=call.id, name=call.name)
                    yield ToolResultEvent(results[i])
                    continue
                pending[task] = i
                deadlines[i] = monotonic() + (tool.timeout or self.tool_timeout)
            while pending:
                timeout = max(0.0, min(deadlines[i] for i in pending.values()) - monotonic())
                for task in await _wait_any(pending, timeout):
                    i = pending.pop(task)
                    results[i] = _result_of(task, calls[i])
                    yield ToolResultEvent(results[i])
                now = monotonic()
                for task, i in list(pending.items()):
                    if deadlines[i] <= now:
                        del pending[task]
                        _stop(task)
                        limit = self.tools[calls[i].name].timeout or self.tool_timeout
                        results[i] = ToolResult.error(
                            f"Error: tool {calls[i].name!r} timed out after {limit:g} s",
                            call_id=calls[i].id,
                            name=calls[i].name,
                        )
                        yield ToolResultEvent(results[i])
        finally:
            for task in pending:
                _stop(task)
            tasks = [t for t in pending if isinstance(t, asyncio.Future)]
            if tasks:  # let the cancelled calls run their cleanup
                await asyncio.wait(tasks, timeout=CANCEL_GRACE)


def _to_messages(items: Sequence[Message | dict[str, Any]]) -> list[Message]:
    if isinstance(items, str):
        raise ConfigError("history must be a list of messages, not a string")
    return [m if isinstance(m, Message) else Message.model_validate(m) for m in items]


def _unknown_tool(name: str, tools: dict[str, Tool]) -> str:
    known = ", ".join(sorted(tools)) or "none"
    return f"there is no tool named {name!r}; available tools: {known}"


def _result_of(task: Any, call: ToolCall) -> ToolResult:
    """The result of a finished call's future (either kind, see _start)."""
    exc = None if task.cancelled() else task.exception()
    if task.cancelled() or exc is not None:  # a tool's failure is an observation
        why = "was cancelled" if exc is None else f"failed: {type(exc).__name__}: {exc}"
        return ToolResult.error(f"Error: tool {call.name!r} {why}", call_id=call.id, name=call.name)
    return to_result(task.result(), call_id=call.id, name=call.name)


#: seconds cancelled tool calls get to finish their cleanup when a run ends early
CANCEL_GRACE = 5.0


def _start(tool: Tool, args: dict[str, Any]) -> Any:
    """The call as a future: an async tool's task on this loop, or a sync tool's call on
    its own thread (:mod:`qwen_agent.toolrun`; a full runner raises ToolCallError here),
    whose ``concurrent.futures.Future`` is waited on by :func:`_wait_any`. :func:`_stop`
    stops either: the task is cancelled, or the thread abandoned (it runs on, uncounted,
    its result dropped), which frees its slot at once."""
    import asyncio

    if tool.is_async:
        return asyncio.ensure_future(tool.call(**args))
    from qwen_agent.toolrun import runner

    return runner().submit(tool.call, **args)


def _stop(task: Any) -> None:
    from concurrent.futures import Future

    if isinstance(task, Future):
        from qwen_agent.toolrun import runner

        runner().abandon(task)
    else:
        task.cancel()


async def _wait_any(pending: dict[Any, int], timeout: float) -> set[Any]:
    """The calls of ``pending`` done within ``timeout`` (at least one unless it passed).

    Where every call runs on a thread and :func:`qwen_agent.aio.wait_threads` finds it
    safe (a sync caller's own loop with nothing else on it), this thread blocks on them as
    the sync core did, which spares the loop's cross-thread wake-up (about as much as the
    rest of a fast run). Otherwise their futures are wrapped into this loop's, in place in
    ``pending``, and awaited with the async ones."""
    import asyncio
    from concurrent.futures import Future

    from qwen_agent import aio

    threads = [t for t in pending if isinstance(t, Future)]
    if len(threads) == len(pending):
        done = await aio.wait_threads(threads, timeout)
        if done is not None:
            return done
    for thread in threads:
        pending[_wrap(thread)] = pending.pop(thread)
    done, _ = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    return done


def _wrap(thread: Any) -> Any:
    """A sync call's future as this loop's; cancelling it abandons the call."""
    import asyncio

    from qwen_agent.toolrun import runner

    fut = asyncio.wrap_future(thread)
    fut.add_done_callback(lambda f: runner().abandon(thread) if f.cancelled() else None)
    return fut
