"""The chat-model protocol, the model request, backend configuration and the registry.

A backend streams :class:`Delta` objects for a :class:`ModelRequest` (``astream``, async
first; :func:`astream` adapts a backend that only has a sync ``stream``): the messages, the
tools as data (:class:`~qwen_agent.tool.ToolSpec`), ``tool_choice``, the name of the
tool-call format the messages were rendered with and the :class:`CallConstraint` it asks a
backend to enforce (the transformers backend's tool guard applies it), the turn as data
(:class:`TurnContext`, where each exchange begins), a ``response_format`` (JSON output) and
the generation options. With ``format`` set, the format has already written tool calls and
results into plain text (roles system, user, assistant); with ``format=None`` the messages
are as the user gave them and a backend that speaks tools natively (``native_tools``)
passes ``tools`` on and returns calls in :attr:`Delta.tool_calls`. Reasoning a backend gets
apart from the text comes in :attr:`Delta.reasoning`. When the last message is from the
assistant, the backend continues it instead of starting a new turn (how a ReAct trace
resumes after an observation, and how a forced tool call is begun). Requests are built by
:func:`qwen_agent.turn.build_request`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.errors import ConfigError
from qwen_agent.messages import Message, ToolCall
from qwen_agent.registry import LazyRegistry
from qwen_agent.tool import ToolSpec

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Delta",
    "Usage",
    "FinishReason",
    "GenerationConfig",
    "ModelRequest",
    "FunctionChoice",
    "ToolChoice",
    "ResponseFormat",
    "LLMConfig",
    "CallConstraint",
    "TurnContext",
    "ChatModel",
    "astream",
    "adrain",
    "aclose",
    "BACKENDS",
    "register_backend",
    "get_chat_model",
    "default_chat_model",
    "drain",
]

FinishReason = Literal["stop", "length"]
M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True, frozen=True)
class Usage:
    """Tokens a generation read and wrote."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class Delta:
    """A piece of generated text. The last delta of a stream carries ``finish_reason``:
    ``"stop"`` (end of turn or a stop word) or ``"length"`` (cut by ``max_tokens``), and
    ``usage`` where the backend knows it. A backend that parses tool calls itself (native
    mode) gives them in ``tool_calls``, and the calls it could not read in ``call_errors``.
    A backend that dropped earlier exchanges so the prompt fits its context window says so
    on its first delta (``trimmed``)."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] | None = None
    call_errors: list[str] | None = None
    trimmed: Trimmed | None = None
    reasoning: str = ""


@dataclass(slots=True, frozen=True)
class Trimmed:
    """Earlier whole exchanges (a user message and everything up to the next one) that a
    backend left out so the prompt fits: how many, and the sizes that forced it."""

    exchanges: int
    messages: int
    prompt_tokens: int
    max_tokens: int
    context_window: int


class GenerationConfig(BaseModel):
    """Sampling options for one generation. ``None`` means the backend's default."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)

    def with_stop(self, stop: list[str]) -> GenerationConfig:
        """A copy whose stop words also include ``stop`` (itself when they already do)."""
        if all(s in self.stop for s in stop):
            return self
        merged = list(dict.fromkeys([*self.stop, *stop]))
        return self.model_copy(update={"stop": merged})

    def over(self, defaults: GenerationConfig) -> GenerationConfig:
        """The one merge rule every backend uses: each option set here (not None) wins
        over ``defaults``; None keeps the default; stop words of both apply."""
        set_here = {k: v for k, v in self if v is not None and k != "stop"}
        return defaults.model_copy(update=set_here).with_stop(self.stop)


class FunctionChoice(BaseModel):
    """``tool_choice`` naming one function: the reply must call it."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str


#: ``"auto"`` (the model decides), ``"none"`` (no call), ``"required"`` (at least one call)
#: or a :class:`FunctionChoice`
ToolChoice = Literal["auto", "none", "required"] | FunctionChoice


class ResponseFormat(BaseModel):
    """What the reply's text must be: ``"text"`` (anything), ``"json_object"`` (one JSON
    object) or ``"json_schema"`` (JSON valid against ``json_schema``)."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict[str, Any] | None = None
    name: str = "response"


class CallConstraint(BaseModel):
    """What a format asks a backend to enforce on the calls of a reply (made by
    ``ToolFormat.constraint``): each call is ``open``, a JSON object naming one of
    ``tools`` with arguments its schema allows, then ``close``. The transformers backend
    applies it with the tool guard (:mod:`qwen_agent.formats.guard`); a backend that
    cannot apply it writes freely and the parser reports what is wrong."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    tools: tuple[ToolSpec, ...]
    open: str
    close: str
    #: more than one call may follow
    parallel: bool = True


class TurnContext(BaseModel):
    """The turn as data, for backends and decoding aids that need more than the rendered
    messages: the instructions the format listed the tools under, the last question of
    the user, and the results of the tools called since that question."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    instructions: str = ""
    question: str = ""
    results: tuple[str, ...] = ()


class ModelRequest(BaseModel):
    """One call of a model (see the module docstring). ``on_overflow`` says what a
    backend with a context window does when the prompt and ``max_tokens`` do not fit:
    ``"drop_oldest"`` drops the oldest turns (never the system message or the last user
    turn), ``"error"`` raises :class:`~qwen_agent.errors.ContextWindowError`."""

    # the schema is built on first use, not at ``import qwen_agent``
    model_config = ConfigDict(frozen=True, defer_build=True)
    messages: list[Message]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    parallel_tool_calls: bool = True
    format: str | None = None
    response_format: ResponseFormat | None = None
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    on_overflow: Literal["drop_oldest", "error"] = "drop_oldest"
    #: Qwen3's thinking switch (the chat template's ``enable_thinking``); None: the
    #: template's default
    thinking: bool | None = None
    #: the calls a backend should enforce (the format's :class:`CallConstraint`)
    constraint: CallConstraint | None = None
    #: where each exchange (a question of the user and what answers it) begins in
    #: ``messages``: what a backend may leave out, oldest first, to fit its window; None:
    #: every user message begins one
    exchanges: tuple[int, ...] | None = None
    context: TurnContext | None = None

    @property
    def forced_tool(self) -> str | None:
        """The function ``tool_choice`` names, if it names one."""
        choice = self.tool_choice
        return choice.name if isinstance(choice, FunctionChoice) else None


@runtime_checkable
class ChatModel(Protocol):
    """What the agent needs from a model: stream deltas for a request, as an async
    iterator (:meth:`astream`), or a sync one (``stream``), which :func:`astream` adapts.
    A backend that takes tools natively (``format=None`` requests with ``tools``) sets a
    class attribute ``native_tools = True``; the others get requests the format has
    rendered."""

    def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        """Yield deltas; the last one has ``finish_reason`` set. Stop words are not
        included in the text. Raises :class:`~qwen_agent.errors.BackendError` on failure;
        closing the iterator (or cancelling the task reading it) stops the generation."""
        ...


def astream(model: Any, request: ModelRequest) -> AsyncIterator[Delta]:
    """The model's deltas for ``request`` as an async iterator: its own ``astream``, or
    its sync ``stream`` iterated in a worker thread (the one adapter for sync backends)."""
    native = getattr(model, "astream", None)
    if native is not None:
        return native(request)
    stream = getattr(model, "stream", None)
    if stream is None:
        raise ConfigError(f"{type(model).__name__} has neither astream() nor stream()")
    return _ThreadedStream(lambda: stream(request))


_END = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _ThreadedStream:
    """A sync iterator read in its own thread, handed to the event loop through a queue.
    Closing it (or the reader's task being cancelled) stops the thread at the next item
    and closes the sync iterator there, which stops its generation."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._queue: asyncio.Queue[Any] | None = None
        self._stop = threading.Event()
        #: set once the thread has closed the sync iterator
        self.stopped = threading.Event()
        self._done = False
        #: the end (or failure) that ready() came upon, for __anext__ to act on
        self._held: Any = None

    def __aiter__(self) -> _ThreadedStream:
        return self

    def _start(self) -> asyncio.Queue[Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody reads any more
                self._stop.set()

        def ended() -> None:
            if not self._ended.done():
                self._ended.set_result(None)

        self._ended = loop.create_future()

        def work() -> None:
            it: Any = None
            try:
                it = self._make()
                for item in it:
                    if self._stop.is_set():
                        break
                    put(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader
                put(_Failed(exc))
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:  # closing a failed generator: nothing to add
                        pass
                self.stopped.set()
                put(_END)
                try:
                    loop.call_soon_threadsafe(ended)
                except RuntimeError:  # the loop is gone
                    pass

        threading.Thread(target=work, name="qwen-agent-stream", daemon=True).start()
        return queue

    async def __anext__(self) -> Delta:
        if self._done:
            raise StopAsyncIteration
        if self._queue is None:
            self._queue = self._start()
        try:
            item, self._held = self._held or await self._queue.get(), None
        except BaseException:
            self._stop.set()
            raise
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, _Failed):
            self._done = True
            raise item.exc
        return item

    def ready(self) -> list[Delta]:
        """The deltas already waiting (without waiting for more)."""
        out: list[Delta] = []
        queue = self._queue
        while queue is not None and self._held is None and not queue.empty() and not self._done:
            item = queue.get_nowait()
            if item is _END or isinstance(item, _Failed):
                self._held = item  # __anext__ ends or raises on it
                break
            out.append(item)
        return out

    async def aclose(self) -> None:
        """Stops the thread and waits (up to ``CLOSE_TIMEOUT`` s) until the sync iterator
        is closed, so what its generation held is free when this returns."""
        import asyncio

        self._stop.set()
        self._done = True
        if self._queue is not None and not self.stopped.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(self._ended), CLOSE_TIMEOUT)
            except TimeoutError:
                pass


#: seconds closing a sync stream waits for its thread to close the stream
CLOSE_TIMEOUT = 30.0


class LLMConfig(BaseModel):
    """How to build a chat model: ``backend`` names a registered backend; the other fields
    are passed to it. Example: ``LLMConfig(backend="openai", model="qwen2.5-7b-instruct",
    base_url="http://127.0.0.1:8000/v1")``. ``LLMConfig()`` is the default bundled model
    (``qwen-smol-agent``) run by the transformers backend;
    ``LLMConfig(model="/models/Qwen2.5-7B-Instruct")`` a local checkpoint."""

    @property
    def backend_name(self) -> str:
        return self.backend or ("openai" if self.base_url else "transformers")

    model_config = ConfigDict(extra="allow")
    #: None: "openai" when ``base_url`` is set, else "transformers" (the bundled model)
    backend: str | None = None
    model: str = ""
    base_url: str | None = None
    api_key: str | None = None
    mode: Literal["chat", "completion"] = "chat"
    timeout: float = Field(default=120.0, gt=0)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)

    def options(self) -> dict[str, Any]:
        """Everything but ``backend``, as keyword arguments for the backend's ``from_config``."""
        return self.model_dump(exclude={"backend"})

    def backend_options(self, schema: type[M]) -> M:
        """The backend's own options (the fields beyond the common ones), checked against
        its typed ``schema`` (a pydantic model that forbids unknown fields); ConfigError
        naming what is wrong."""
        from pydantic import ValidationError

        try:
            return schema.model_validate(self.model_extra or {})
        except ValidationError as exc:
            errors = exc.errors()
            unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
            bad = [
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in errors
                if e["type"] != "extra_forbidden"
            ]
            known = ", ".join(sorted(schema.model_fields))
            said = [f"unknown options for the {self.backend_name} backend: {', '.join(unknown)}"]
            said = (said if unknown else []) + [
                f"bad options for the {self.backend_name} backend: {'; '.join(bad)}"
            ] * bool(bad)
            raise ConfigError(f"{'; '.join(said)} (its options: {known})") from None


#: name -> "module:Class"; the class has a ``from_config(LLMConfig)`` classmethod.
BACKENDS: LazyRegistry[Any] = LazyRegistry(
    "backend",
    {
        "openai": "qwen_agent.backends.openai:OpenAIChatModel",
        "transformers": "qwen_agent.backends.transformers:TransformersChatModel",
        "vllm": "qwen_agent.backends.vllm:VLLMChatModel",
    },
)


def register_backend(name: str, target: str | type, *, replace: bool = False) -> None:
    """Register a backend class (or ``"module:Class"``) under ``name``."""
    BACKENDS.register(name, target, replace=replace)


def get_chat_model(spec: ChatModel | LLMConfig | dict[str, Any]) -> ChatModel:
    """Build a chat model from a config (or return ``spec`` if it already is one)."""
    if isinstance(spec, dict):
        spec = LLMConfig.model_validate(spec)
    if isinstance(spec, LLMConfig):
        if spec == _DEFAULT:
            return default_chat_model()
        cls = BACKENDS.get(spec.backend_name)
        return cls.from_config(spec)
    if callable(getattr(spec, "astream", None)) or callable(getattr(spec, "stream", None)):
        return spec  # a ChatModel, async or sync
    raise ConfigError(f"llm must be a ChatModel, an LLMConfig or a dict, not {type(spec).__name__}")


_DEFAULT = LLMConfig()
_default_model: ChatModel | None = None
_default_lock = threading.Lock()


def default_chat_model() -> ChatModel:
    """The default bundled model (``qwen-smol-agent``, :data:`qwen_agent.bundled.DEFAULT`)
    through the transformers backend, loaded once per process and shared (generation is
    serialized by the backend). The first use in a new cache merges it (about 20 s).
    Raises :class:`~qwen_agent.errors.ConfigError` when the model's files are missing from
    the install."""
    from qwen_agent.bundled import DEFAULT

    global _default_model
    with _default_lock:
        if _default_model is None:
            cls = BACKENDS.get("transformers")
            _default_model = cls.from_config(LLMConfig(model=DEFAULT))
        return _default_model


def drain(
    model: ChatModel,
    request: ModelRequest | list[Message],
    config: GenerationConfig | None = None,
    *,
    tools: Sequence[Any] = (),
) -> Delta:
    """Run a stream to the end; return the whole text, reasoning, finish reason, usage and
    any native tool calls in one :class:`Delta`. Messages (with ``config`` and ``tools``,
    as hermes renders them) stand for ``ModelRequest(messages=..., ...)``."""
    request = _as_request(request, config, tools)
    out = _Collected()
    stream = getattr(model, "stream", None)
    if stream is not None:
        for delta in stream(request):
            out.add(delta)
    else:
        from qwen_agent.aio import run_sync

        run_sync(_collect(model, request, out))
    return out.result()


async def adrain(
    model: ChatModel,
    request: ModelRequest | list[Message],
    config: GenerationConfig | None = None,
    *,
    tools: Sequence[Any] = (),
) -> Delta:
    """:func:`drain`, awaited."""
    out = _Collected()
    await _collect(model, _as_request(request, config, tools), out)
    return out.result()


async def _collect(model: Any, request: ModelRequest, out: _Collected) -> None:
    deltas = astream(model, request)
    try:
        async for delta in deltas:
            out.add(delta)
    finally:
        await aclose(deltas)


async def aclose(it: Any) -> None:
    """Close an async iterator that may have an ``aclose`` (a stream, an async generator)."""
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


def _as_request(
    request: ModelRequest | list[Message], config: GenerationConfig | None, tools: Sequence[Any]
) -> ModelRequest:
    if isinstance(request, ModelRequest):
        return request
    specs = tuple(ToolSpec.of(t) for t in tools)
    from qwen_agent.formats import get_format

    fmt = get_format("hermes")
    return ModelRequest(
        messages=list(request),
        tools=specs,
        format="hermes" if specs else None,
        constraint=fmt.constraint(specs, "auto") if specs else None,
        generation=config or GenerationConfig(),
    )


class _Collected:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.delta = Delta("")

    def add(self, delta: Delta) -> None:
        out = self.delta
        self.parts.append(delta.text)
        if delta.reasoning:
            self.reasoning.append(delta.reasoning)
        if delta.finish_reason is not None:
            out.finish_reason = delta.finish_reason
        if delta.usage is not None:
            out.usage = delta.usage
        if delta.tool_calls:
            out.tool_calls = [*(out.tool_calls or []), *delta.tool_calls]
        if delta.call_errors:
            out.call_errors = [*(out.call_errors or []), *delta.call_errors]

    def result(self) -> Delta:
        out = self.delta
        out.text = "".join(self.parts)
        out.reasoning = "".join(self.reasoning)
        out.finish_reason = out.finish_reason or "stop"
        return out
