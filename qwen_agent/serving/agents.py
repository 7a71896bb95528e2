"""One agent run behind the server: the agent's events as chat-completion deltas."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

from qwen_agent.events import (
    Event,
    FinalEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent.llm import ChatModel, Delta, GenerationConfig, ModelRequest, Usage, aclose, astream
from qwen_agent.messages import Message

__all__ = ["AgentRun", "agent_delta"]


class _Metered:
    """The served model as an agent run sees it: each call waits for a slot of the
    model's gate (so the run's tools do not hold the model while they work) and adds its
    usage to the run's."""

    def __init__(self, model: ChatModel, run: AgentRun, slot: Slot | None = None) -> None:
        self.model, self.run, self.slot = model, run, slot
        self.native_tools = bool(getattr(model, "native_tools", False))

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        if self.slot is not None:
            await self.slot.acquire()
        deltas = astream(self.model, request)
        try:
            async for delta in deltas:
                if delta.usage is not None:
                    u = self.run.usage
                    self.run.usage = Usage(
                        u.prompt_tokens + delta.usage.prompt_tokens,
                        u.completion_tokens + delta.usage.completion_tokens,
                    )
                yield delta
        finally:
            try:
                await aclose(deltas)
            finally:
                if self.slot is not None:
                    self.slot.release()


class Slot(Protocol):
    """A model's gate as an agent run takes it: ``await acquire()``, then ``release()``."""

    async def acquire(self) -> None: ...

    def release(self) -> None: ...


class AgentRun:
    """Runs ``config``'s agent on ``model`` for one request. Tools that keep state per
    conversation (the code interpreter) are keyed by ``conversation``; without one they
    get a fresh session that :meth:`close` ends. ``slot`` (a context manager) is held
    around each model call. The agent is built in :meth:`events`, in the worker thread."""

    def __init__(
        self,
        config: Any,
        model: ChatModel,
        conversation: str | None,
        generation: GenerationConfig,
        slot: Slot | None = None,
        thinking: bool | None = None,
        mcp: Any = None,
        shared: Any = None,
    ) -> None:
        self.usage = Usage(0, 0)
        self.log: list[dict[str, Any]] = []
        self.answer = ""
        self.reasoning = ""
        self._own_session = conversation is None
        self.session = f"{config.name}:{conversation or os.urandom(12).hex()}"
        self._gen = generation if generation.model_dump(exclude_defaults=True) else None
        self._config, self._llm = config, _Metered(model, self, slot)
        self.agent: Any = None
        self.thinking = thinking
        self._mcp = mcp
        self._shared = shared

    async def events(self, messages: list[Message]) -> AsyncIterator[Event]:
        """The agent's events for the run on ``messages`` (the last one the user's); the
        run's answer, reasoning and tool log are kept as they pass."""
        text: list[str] = []
        reasoning: list[str] = []
        self.agent = await asyncio.to_thread(
            self._config.build,
            llm=self._llm,
            session_id=self.session,
            generation=self._gen,
            mcp=self._mcp,
            shared=self._shared,
        )
        run = self.agent.arun(messages[-1:], history=messages[:-1], thinking=self.thinking)
        try:
            async for ev in run:
                if isinstance(ev, TextDelta):
                    text.append(ev.text)
                elif isinstance(ev, ReasoningDelta):
                    reasoning.append(ev.text)
                elif isinstance(ev, ToolCallEvent | ToolResultEvent):
                    self.log.append(log_item(ev))
                elif isinstance(ev, FinalEvent) and ev.stop_reason != "answer":
                    text.append(ev.message.text)
                yield ev
        finally:
            await run.aclose()  # a run left early stops its tool calls and model stream
        self.answer = "".join(text)
        self.reasoning = "".join(reasoning)

    def close(self) -> None:
        """Ends the tools' sessions of a run without a conversation id."""
        if not self._own_session or self.agent is None:
            return
        for tool in self.agent.tools.values():
            close = getattr(tool, "close", None)
            if close is not None and getattr(tool, "session_id", None):
                try:
                    close()
                except Exception:  # a session that cannot close is swept by its pool
                    pass


def log_item(ev: ToolCallEvent | ToolResultEvent) -> dict[str, Any]:
    """A tool call or result as the server reports it (``agent_event``)."""
    if isinstance(ev, ToolCallEvent):
        return {
            "type": "tool_call",
            "id": ev.call.id,
            "name": ev.call.name,
            "arguments": ev.call.arguments_json(),
        }
    return {
        "type": "tool_result",
        "id": ev.result.call_id,
        "name": ev.result.name,
        "content": ev.result.text,
        "is_error": ev.result.is_error,
    }


def agent_delta(ev: Event) -> dict[str, Any] | None:
    """The chat-completion delta for an agent's event (None: nothing to send)."""
    if isinstance(ev, TextDelta):
        return {"content": ev.text}
    if isinstance(ev, ReasoningDelta):
        return {"reasoning_content": ev.text}
    if isinstance(ev, ToolCallEvent | ToolResultEvent):
        return {"agent_event": log_item(ev)}
    if isinstance(ev, FinalEvent) and ev.stop_reason != "answer":
        return {"content": ev.message.text}
    return None
