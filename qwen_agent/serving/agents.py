"""One agent run behind the server: the agent's events as chat-completion deltas."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from qwen_agent.events import (
    FinalEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent.llm import ChatModel, Delta, GenerationConfig, ModelRequest, Usage
from qwen_agent.messages import Message

__all__ = ["AgentRun"]


class _Metered:
    """The served model, adding up the usage of every call an agent run makes."""

    def __init__(self, model: ChatModel, run: AgentRun, slot: Any = None) -> None:
        self.model, self.run, self.slot = model, run, slot
        self.native_tools = bool(getattr(model, "native_tools", False))

    def stream(self, request: ModelRequest) -> Iterator[Delta]:
        with self.slot if self.slot is not None else contextlib.nullcontext():
            for delta in self.model.stream(request):
                if delta.usage is not None:
                    u = self.run.usage
                    self.run.usage = Usage(
                        u.prompt_tokens + delta.usage.prompt_tokens,
                        u.completion_tokens + delta.usage.completion_tokens,
                    )
                yield delta


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
        slot: Any = None,
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

    def events(self, messages: list[Message]) -> Iterator[dict[str, Any]]:
        """Chat-completion deltas for the run on ``messages`` (the last one the user's)."""
        text: list[str] = []
        reasoning: list[str] = []
        self.agent = self._config.build(
            llm=self._llm,
            session_id=self.session,
            generation=self._gen,
            mcp=self._mcp,
            shared=self._shared,
        )
        for ev in self.agent.run(messages[-1:], history=messages[:-1], thinking=self.thinking):
            if isinstance(ev, TextDelta):
                text.append(ev.text)
                yield {"content": ev.text}
            elif isinstance(ev, ReasoningDelta):
                reasoning.append(ev.text)
                yield {"reasoning_content": ev.text}
            elif isinstance(ev, ToolCallEvent):
                item = {
                    "type": "tool_call",
                    "id": ev.call.id,
                    "name": ev.call.name,
                    "arguments": ev.call.arguments_json(),
                }
                self.log.append(item)
                yield {"agent_event": item}
            elif isinstance(ev, ToolResultEvent):
                item = {
                    "type": "tool_result",
                    "id": ev.result.call_id,
                    "name": ev.result.name,
                    "content": ev.result.text,
                    "is_error": ev.result.is_error,
                }
                self.log.append(item)
                yield {"agent_event": item}
            elif isinstance(ev, FinalEvent) and ev.stop_reason != "answer":
                text.append(ev.message.text)
                yield {"content": ev.message.text}
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
