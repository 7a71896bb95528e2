"""Honest test doubles. :class:`ScriptedLLM` is a real :class:`~qwen_agent.llm.ChatModel`
that plays back given texts; use it to test agent logic, never as a default."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Sequence

from qwen_agent.errors import ConfigError
from qwen_agent.llm import Delta, GenerationConfig, ModelRequest, Usage
from qwen_agent.messages import Message

__all__ = ["ScriptedLLM"]


class ScriptedLLM:
    """Streams ``responses`` in turn (cycling at the end) in chunks of ``chunk_size``
    characters, and records what it was asked in ``prompts`` and ``configs``.

    It behaves like a real backend: the text is cut at the first stop word (which is not
    included) with ``finish_reason="stop"``; with ``max_tokens`` set, one character counts
    as one token and a longer response is cut with ``finish_reason="length"``. The last
    delta reports usage the same way (a character of the prompt's text is a token).
    The whole requests are kept in ``requests``.
    """

    def __init__(self, responses: Sequence[str] | str, chunk_size: int = 4) -> None:
        if isinstance(responses, str):
            responses = [responses]
        if not responses:
            raise ConfigError("ScriptedLLM needs at least one response")
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.responses = list(responses)
        self.chunk_size = chunk_size
        self.prompts: list[list[Message]] = []
        self.configs: list[GenerationConfig] = []
        self.requests: list[ModelRequest] = []
        self._next = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """How many generations were asked for."""
        return len(self.prompts)

    def stream(self, request: ModelRequest) -> Iterator[Delta]:
        return iter(self._reply(request))

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        """:meth:`stream`, as the async protocol asks; a subclass that overrides
        ``stream`` (say, to wait between chunks) has it run in a worker thread."""
        if type(self).stream is not ScriptedLLM.stream:
            deltas = _threaded(self, request)
            try:
                async for delta in deltas:
                    yield delta
            finally:
                await deltas.aclose()
            return
        for delta in self._reply(request):
            yield delta

    def _reply(self, request: ModelRequest) -> list[Delta]:
        """Records the request; the deltas of the next response."""
        config = request.generation
        with self._lock:
            text = self.responses[self._next % len(self.responses)]
            self._next += 1
            self.prompts.append(list(request.messages))
            self.configs.append(config)
            self.requests.append(request)
        prompt = sum(len(m.text) for m in request.messages)
        finish = "stop"
        cut = min((i for i in (text.find(s) for s in config.stop if s) if i >= 0), default=-1)
        if cut >= 0:
            text = text[:cut]
        if config.max_tokens is not None and len(text) > config.max_tokens:
            text, finish = text[: config.max_tokens], "length"
        n = self.chunk_size
        last = max(len(text) - 1, 0) // n * n
        deltas = [Delta(text[start : start + n]) for start in range(0, last, n)]
        deltas.append(Delta(text[last:], finish, Usage(prompt, len(text))))  # type: ignore[arg-type]
        return deltas


def _threaded(model: ScriptedLLM, request: ModelRequest) -> AsyncIterator[Delta]:
    from qwen_agent.llm import _ThreadedStream

    return _ThreadedStream(lambda: model.stream(request))
