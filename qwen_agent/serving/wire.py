"""The OpenAI wire format as pydantic models, shared by the server and the ``openai`` backend.

Request bodies (:class:`ChatCompletionRequest`, :class:`CompletionRequest`) are validated
here: a field the server does not know, or knows but cannot honour (``logprobs``, ``n`` > 1,
penalties, ``functions``, ...), is an :class:`UnsupportedParameter` that names it, never a
silently ignored setting. :func:`to_messages` and :func:`from_message` translate between
OpenAI messages and :class:`~qwen_agent.messages.Message`; :func:`error_body` is OpenAI's
error shape.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qwen_agent.errors import QwenAgentError
from qwen_agent.llm import FunctionChoice, GenerationConfig, ResponseFormat, ToolChoice
from qwen_agent.messages import ImageItem, Message, TextItem, ToolCall, content_text
from qwen_agent.tool import ToolSpec

__all__ = [
    "WireError",
    "UnsupportedParameter",
    "ChatCompletionRequest",
    "CompletionRequest",
    "TokenizeRequest",
    "parse_request",
    "to_messages",
    "from_message",
    "tool_call_dict",
    "error_body",
    "json_depth",
]


class WireError(QwenAgentError):
    """A request the server answers with an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.code, self.kind, self.headers = code, kind, headers or {}


class UnsupportedParameter(WireError):
    def __init__(self, param: str, why: str = "") -> None:
        super().__init__(
            400,
            f"'{param}' is not supported by this server{': ' + why if why else ''}",
            param=param,
            code="unsupported_parameter",
        )


def error_body(exc: WireError) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {
        "error": {"message": exc.message, "type": exc.kind, "param": exc.param, "code": exc.code}
    }


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- messages ---------------------------------------------------------------------------------


class _TextPart(_Body):
    type: Literal["text"]
    text: str


class _ImageUrl(_Body):
    url: str
    detail: str | None = None


class _ImagePart(_Body):
    type: Literal["image_url"]
    image_url: _ImageUrl


class _Function(_Body):
    name: str
    arguments: str


class _ToolCall(_Body):
    id: str
    type: Literal["function"] = "function"
    function: _Function


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[_TextPart | _ImagePart] | None = None
    name: str | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None
    #: what Qwen3 servers (vLLM, DashScope) return and take back: the model's reasoning
    reasoning_content: str | None = None
    refusal: str | None = None


class _FunctionDef(_Body):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class _ToolDef(_Body):
    type: Literal["function"]
    function: _FunctionDef


class _NamedFunction(_Body):
    name: str


class _NamedTool(_Body):
    type: Literal["function"]
    function: _NamedFunction


class _JsonSchema(_Body):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class _ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: _JsonSchema | None = None


class _StreamOptions(_Body):
    include_usage: bool = False
    continuous_usage_stats: bool = False


# Fields a client may send that change nothing here, and their only accepted values
# (anything else is an UnsupportedParameter): what the official client sends by default
# or commonly passes.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1, None),
    "logprobs": (False, None),
    "presence_penalty": (0, 0.0, None),
    "frequency_penalty": (0, 0.0, None),
    "logit_bias": (None,),
    "store": (False, None),
    "service_tier": ("auto", "default", None),
    "functions": (None,),
    "function_call": (None,),
    "top_logprobs": (None, 0),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "best_of": (None, 1),
    "echo": (False, None),
    "suffix": (None,),
}

_WHY = {
    "n": "only n=1",
    "logprobs": "log-probabilities are not returned",
    "top_logprobs": "log-probabilities are not returned",
    "presence_penalty": "no sampling penalties",
    "frequency_penalty": "no sampling penalties",
    "logit_bias": "no logit bias",
    "functions": "use 'tools'",
    "function_call": "use 'tool_choice'",
    "store": "nothing is stored",
}


class _Common(BaseModel):
    """Fields both endpoints share."""

    model_config = ConfigDict(extra="allow")
    #: empty or left out: the first model served (as vLLM does)
    model: str = ""
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    #: vLLM's extension (Qwen's cards recommend top_k=20); -1 or 0: off
    top_k: int | None = Field(default=None, ge=-1)
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 16:
            raise ValueError("at most 16 stop sequences")
        return v

    def check_extra(self) -> None:
        for key, value in (self.model_extra or {}).items():
            allowed = _NEUTRAL.get(key)
            if allowed is None:
                raise WireError(
                    400, f"unknown parameter '{key}'", param=key, code="unknown_parameter"
                )
            if value not in allowed:
                raise UnsupportedParameter(key, _WHY.get(key, ""))

    def generation(self) -> GenerationConfig:
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return GenerationConfig(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k if self.top_k and self.top_k > 0 else None,
            seed=self.seed,
            stop=[s for s in stop if s],
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[_ToolDef] | None = None
    tool_choice: Literal["auto", "none", "required"] | _NamedTool | None = None
    parallel_tool_calls: bool | None = None
    response_format: _ResponseFormat | None = None
    #: vLLM's chat extensions: a final assistant message is always continued here
    continue_final_message: bool | None = None
    add_generation_prompt: bool | None = None
    #: vLLM's and SGLang's way to pass Qwen3's switch: ``{"enable_thinking": bool}``
    chat_template_kwargs: dict[str, Any] | None = None

    def thinking(self) -> bool | None:
        """``chat_template_kwargs.enable_thinking``; other keys are not supported."""
        kwargs = self.chat_template_kwargs or {}
        for key, value in kwargs.items():
            if key != "enable_thinking":
                raise UnsupportedParameter(f"chat_template_kwargs.{key}", "only enable_thinking")
            if not isinstance(value, bool):
                raise WireError(
                    400,
                    "enable_thinking must be true or false",
                    "chat_template_kwargs.enable_thinking",
                )
        return kwargs.get("enable_thinking")

    def generation(self) -> GenerationConfig:
        gen = super().generation()
        if self.max_completion_tokens is not None and self.max_tokens is None:
            gen = gen.model_copy(update={"max_tokens": self.max_completion_tokens})
        return gen

    def tool_specs(self) -> tuple[ToolSpec, ...]:
        out = []
        names: set[str] = set()
        for i, t in enumerate(self.tools or []):
            if t.function.name in names:
                raise WireError(400, f"two tools are named {t.function.name!r}", f"tools[{i}]")
            names.add(t.function.name)
            params = t.function.parameters or {"type": "object", "properties": {}}
            if params.get("type", "object") != "object":
                raise WireError(
                    400,
                    "a function's parameters must be a JSON object schema",
                    f"tools[{i}].function.parameters",
                )
            out.append(
                ToolSpec(
                    name=t.function.name,
                    description=t.function.description or "",
                    parameters=params,
                    strict=t.function.strict,
                )
            )
        return tuple(out)

    def choice(self, specs: tuple[ToolSpec, ...]) -> ToolChoice:
        tc = self.tool_choice
        if tc is None:
            return "auto" if specs else "none"
        if isinstance(tc, _NamedTool):
            if tc.function.name not in {s.name for s in specs}:
                raise WireError(
                    400,
                    f"tool_choice names {tc.function.name!r}, which is not in 'tools'",
                    "tool_choice",
                )
            return FunctionChoice(name=tc.function.name)
        if tc == "required" and not specs:
            raise WireError(400, "tool_choice 'required' needs 'tools'", "tool_choice")
        return tc if specs else "none"

    def output_format(self) -> ResponseFormat | None:
        rf = self.response_format
        if rf is None or rf.type == "text":
            return None
        if rf.type == "json_schema":
            if rf.json_schema is None or rf.json_schema.schema_ is None:
                raise WireError(
                    400, "response_format json_schema needs json_schema.schema", "response_format"
                )
            return ResponseFormat(
                type="json_schema", json_schema=rf.json_schema.schema_, name=rf.json_schema.name
            )
        return ResponseFormat(type="json_object")


class CompletionRequest(_Common):
    prompt: str | list[str]

    def text(self) -> str:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise UnsupportedParameter("prompt", "one prompt per request")
            prompt = prompt[0]
        if not prompt:
            raise WireError(400, "'prompt' must not be empty", "prompt")
        return prompt


class TokenizeRequest(_Body):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_generation_prompt: bool = True


_MAX_DEPTH = 64


def json_depth(value: Any, limit: int = _MAX_DEPTH) -> int:
    """How deeply ``value`` nests (stops counting past ``limit``)."""
    depth, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        depth = max(depth, d)
        if depth > limit:
            return depth
        stack.extend((child, d + 1) for child in node if isinstance(child, (dict, list)))
    return depth


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_request(
    raw: bytes, model: type[_Common] | type[TokenizeRequest], max_depth: int = _MAX_DEPTH
) -> Any:
    """Decode and validate a request body; WireError (400) on any problem."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise WireError(400, f"the body nests deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError(400, "the body must be a JSON object")
    if json_depth(body, max_depth) > max_depth:
        raise WireError(400, f"the body nests deeper than {max_depth} levels")
    try:
        req = model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [
            str(p)
            for p in err["loc"]
            if not str(p).startswith(("function-", "literal", "list[", "str", "_"))
        ]
        param = ".".join(loc) or None
        if err["type"] == "extra_forbidden":
            raise WireError(
                400, f"unknown parameter '{param}'", param, "unknown_parameter"
            ) from None
        raise WireError(400, f"{param or 'body'}: {err['msg']}", param) from None
    if isinstance(req, _Common):
        req.check_extra()
    return req


# -- messages <-> Message ---------------------------------------------------------------------


def to_messages(messages: list[ChatMessage]) -> list[Message]:
    """OpenAI chat messages as :class:`Message` objects (``developer`` is ``system``)."""
    out = []
    calls_by_id: dict[str, str] = {}
    for i, m in enumerate(messages):
        content: Any = m.content or ""
        if isinstance(content, list):
            content = [
                TextItem(text=p.text)
                if isinstance(p, _TextPart)
                else ImageItem(image=p.image_url.url)
                for p in content
            ]
        calls = []
        for c in m.tool_calls or []:
            if m.role != "assistant":
                raise WireError(
                    400, "only assistant messages carry tool_calls", f"messages[{i}].tool_calls"
                )
            try:
                args = json.loads(c.function.arguments or "{}", parse_constant=_no_constant)
            except (ValueError, RecursionError):
                args = None
            if isinstance(args, dict) and json_depth(args, 32) > 32:
                args = None
            if not isinstance(args, dict):
                raise WireError(
                    400,
                    "tool call arguments must be a JSON object in a string",
                    f"messages[{i}].tool_calls",
                )
            calls.append(ToolCall(id=c.id, name=c.function.name, arguments=args))
            calls_by_id[c.id] = c.function.name
        name = m.name
        if m.role == "tool":
            if not m.tool_call_id:
                raise WireError(
                    400, "a tool message needs tool_call_id", f"messages[{i}].tool_call_id"
                )
            name = name or calls_by_id.get(m.tool_call_id)
        role = "system" if m.role == "developer" else m.role
        out.append(
            Message(
                role=role,
                content=content,
                tool_calls=calls,
                tool_call_id=m.tool_call_id,
                name=name,
                reasoning=m.reasoning_content or "",
            )
        )
    return out


def tool_call_dict(call: ToolCall, arguments: str | None = None) -> dict[str, Any]:
    """A call as OpenAI writes one: id, type and the arguments as JSON text (``arguments``
    instead, where given: the empty start of a streamed call)."""
    args = call.arguments_json() if arguments is None else arguments
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": args}}


def from_message(msg: Message, image_url: Any = None) -> dict[str, Any]:
    """One :class:`Message` as an OpenAI chat message (``image_url`` turns a local image
    into a URL the server can read)."""
    out: dict[str, Any] = {"role": msg.role}
    if isinstance(msg.content, list) and any(isinstance(c, ImageItem) for c in msg.content):
        parts: list[dict[str, Any]] = []
        for item in msg.content:
            if isinstance(item, TextItem):
                parts.append({"type": "text", "text": item.text})
            elif isinstance(item, ImageItem):
                url = image_url(item.image) if image_url else item.image
                parts.append({"type": "image_url", "image_url": {"url": url}})
            else:
                parts.append({"type": "text", "text": content_text([item])})
        out["content"] = parts
    else:
        out["content"] = msg.text
    if msg.tool_calls:
        out["tool_calls"] = [tool_call_dict(c) for c in msg.tool_calls]
        out["content"] = out["content"] or None
    if msg.name and msg.role != "tool":
        out["name"] = msg.name
    if msg.tool_call_id:
        out["tool_call_id"] = msg.tool_call_id
    return out
