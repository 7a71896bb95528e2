"""The chat-model protocol, backend configuration and the backend registry.

A backend streams :class:`Delta` objects for a list of plain messages (roles system, user,
assistant; the tool-use format has already rendered tool calls and results into text). When
the last message is from the assistant, the backend continues it instead of starting a new
turn (this is how a ReAct trace resumes after an observation).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.errors import ConfigError
from qwen_agent.messages import Message
from qwen_agent.registry import LazyRegistry

__all__ = [
    "Delta",
    "FinishReason",
    "GenerationConfig",
    "LLMConfig",
    "ChatModel",
    "BACKENDS",
    "register_backend",
    "get_chat_model",
    "default_chat_model",
    "drain",
]

FinishReason = Literal["stop", "length"]


@dataclass(slots=True)
class Delta:
    """A piece of generated text. The last delta of a stream carries ``finish_reason``:
    ``"stop"`` (end of turn or a stop word) or ``"length"`` (cut by ``max_tokens``)."""

    text: str
    finish_reason: FinishReason | None = None


class GenerationConfig(BaseModel):
    """Sampling options for one generation. ``None`` means the backend's default."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)

    def with_stop(self, stop: list[str]) -> GenerationConfig:
        """A copy whose stop words also include ``stop``."""
        merged = list(dict.fromkeys([*self.stop, *stop]))
        return self.model_copy(update={"stop": merged})


@runtime_checkable
class ChatModel(Protocol):
    """What the agent needs from a model: stream deltas for some messages."""

    def stream(self, messages: list[Message], config: GenerationConfig) -> Iterator[Delta]:
        """Yield text deltas; the last one has ``finish_reason`` set. Stop words are not
        included in the text. Raises :class:`~qwen_agent.errors.BackendError` on failure."""
        ...


class LLMConfig(BaseModel):
    """How to build a chat model: ``backend`` names a registered backend; the other fields
    are passed to it. Example: ``LLMConfig(backend="openai", model="qwen2.5-7b-instruct",
    base_url="http://127.0.0.1:8000/v1")``. ``LLMConfig()`` is the bundled tiny model run
    by the transformers backend; ``LLMConfig(model="/models/Qwen2.5-7B-Instruct")`` a local
    checkpoint."""

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


#: name -> "module:Class"; the class has a ``from_config(LLMConfig)`` classmethod.
BACKENDS: LazyRegistry[Any] = LazyRegistry(
    "backend",
    {
        "openai": "qwen_agent.backends.openai:OpenAIChatModel",
        "transformers": "qwen_agent.backends.transformers:TransformersChatModel",
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
    if isinstance(spec, ChatModel):
        return spec
    raise ConfigError(f"llm must be a ChatModel, an LLMConfig or a dict, not {type(spec).__name__}")


_DEFAULT = LLMConfig()
_default_model: ChatModel | None = None
_default_lock = threading.Lock()


def default_chat_model() -> ChatModel:
    """The bundled tiny agent model through the transformers backend, loaded once per
    process and shared (generation is serialized by the backend). Raises
    :class:`~qwen_agent.errors.ConfigError` when the model's files are missing from the
    install."""
    from qwen_agent.bundled import TINY_AGENT

    global _default_model
    with _default_lock:
        if _default_model is None:
            if not (TINY_AGENT / "config.json").is_file():
                raise ConfigError(
                    f"the bundled model is missing from this install ({TINY_AGENT}): "
                    "reinstall qwen-agent-kit, or pass llm= (or --model / --base-url), e.g. a "
                    "local checkpoint {'model': '/models/Qwen2.5-7B-Instruct'} or a server "
                    "{'base_url': 'http://127.0.0.1:8000/v1', 'model': '...'}"
                )
            cls = BACKENDS.get("transformers")
            _default_model = cls.from_config(_DEFAULT)
        return _default_model


def drain(model: ChatModel, messages: list[Message], config: GenerationConfig) -> Delta:
    """Run a stream to the end; return the whole text and its finish reason."""
    parts: list[str] = []
    finish: FinishReason | None = None
    for delta in model.stream(messages, config):
        parts.append(delta.text)
        if delta.finish_reason is not None:
            finish = delta.finish_reason
    return Delta("".join(parts), finish or "stop")
