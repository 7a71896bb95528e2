"""A :class:`~qwen_agent.llm.ChatModel` for any OpenAI-compatible server.

Works with ``vllm serve``, SGLang, Ollama, DashScope's compatible mode and the project's own
``qwen-agent serve``. Two modes:

- ``"chat"``: ``POST {base_url}/chat/completions``; the server applies the chat template. A
  trailing assistant message is sent with vLLM's ``continue_final_message`` so it is continued.
- ``"completion"``: ``POST {base_url}/completions`` with the messages rendered as ChatML, for
  servers or models without a chat template; ``<|im_end|>`` is added to the stop words.

By default the agent's tool-call format renders the tools into the prompt and parses the
calls from the text. With ``native_tools=True`` (chat mode) the request's ``tools``,
``tool_choice`` and ``parallel_tool_calls`` are sent as they are, the conversation keeps its
``tool_calls`` and ``role: tool`` messages, and the server's ``tool_calls`` come back in
:attr:`~qwen_agent.llm.Delta.tool_calls`: for servers that parse calls themselves (vLLM with
``--tool-call-parser``, DashScope, Ollama). A ``response_format`` is sent as OpenAI's.

A request's ``thinking`` goes out as ``thinking_param`` says: ``chat_template_kwargs``
(vLLM, SGLang, ``qwen-agent serve``: ``{"enable_thinking": ...}``), ``enable_thinking``
(DashScope) or ``think`` (Ollama). With ``opens_thinking=True`` (the server's chat template
opens ``<think>`` in the prompt, as Qwen3-Thinking-2507's and QwQ's do, and the server has
no reasoning parser) the reply is taken to begin inside the reasoning.

Reasoning that a server returns apart from the content (``reasoning_content``) comes as data,
in :attr:`~qwen_agent.llm.Delta.reasoning`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import mimetypes
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from qwen_agent.chatml import IM_END, neutralize, render_chatml
from qwen_agent.errors import (
    BackendConnectionError,
    BackendResponseError,
    BackendTimeoutError,
    ConfigError,
    ContextWindowError,
    RateLimitError,
)
from qwen_agent.llm import (
    Delta,
    FinishReason,
    FunctionChoice,
    GenerationConfig,
    LLMConfig,
    ModelRequest,
    Usage,
)
from qwen_agent.messages import ImageItem, Message, TextItem, ToolCall, content_text
from qwen_agent.serving.wire import from_message

__all__ = ["OpenAIChatModel", "OpenAIOptions"]

_REMOTE_PREFIXES = ("http://", "https://", "data:")


class OpenAIOptions(BaseModel):
    """The openai backend's own options in an :class:`~qwen_agent.llm.LLMConfig` (see
    :class:`OpenAIChatModel`); server-specific request fields go in ``extra_body``."""

    model_config = ConfigDict(extra="forbid")
    extra_body: dict[str, Any] | None = None
    native_tools: bool = False
    thinking_param: Literal["chat_template_kwargs", "enable_thinking", "think"] = (
        "chat_template_kwargs"
    )
    opens_thinking: bool = False


class OpenAIChatModel:
    """Streams completions from an OpenAI-compatible server over HTTP (SSE).

    ``generation`` holds defaults; the config given to :meth:`stream` overrides its set
    fields, and stop words of both apply. ``extra_body`` is merged into every request body
    (e.g. ``{"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}`` for vLLM).
    The instance is thread-safe and keeps one connection pool; :meth:`close` it when done.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        mode: Literal["chat", "completion"] = "chat",
        timeout: float = 120.0,
        generation: GenerationConfig | None = None,
        extra_body: dict[str, Any] | None = None,
        native_tools: bool = False,
        thinking_param: Literal["chat_template_kwargs", "enable_thinking", "think"] = (
            "chat_template_kwargs"
        ),
        opens_thinking: bool = False,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, "
                f"got {base_url!r}"
            )
        if mode not in ("chat", "completion"):
            raise ConfigError(f"mode must be 'chat' or 'completion', got {mode!r}")
        if not timeout or timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout!r}")
        if extra_body is not None and not isinstance(extra_body, dict):
            raise ConfigError(f"extra_body must be a dict, got {type(extra_body).__name__}")
        if native_tools and mode != "chat":
            raise ConfigError("native_tools needs mode='chat' (completions carry no tools)")
        #: send tools natively and read the server's tool_calls (see the module docstring)
        self.native_tools = bool(native_tools)
        if thinking_param not in ("chat_template_kwargs", "enable_thinking", "think"):
            raise ConfigError(
                "thinking_param must be chat_template_kwargs (vLLM, SGLang), enable_thinking "
                f"(DashScope) or think (Ollama), got {thinking_param!r}"
            )
        self.thinking_param = thinking_param
        self.opens_thinking = bool(opens_thinking)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.mode = mode
        self.timeout = float(timeout)
        self.generation = generation or GenerationConfig()
        self.extra_body = dict(extra_body or {})
        self._client: httpx.Client | None = None
        #: one async pool per event loop (an httpx.AsyncClient is bound to its loop)
        self._aclients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: LLMConfig) -> OpenAIChatModel:
        """Build from an :class:`~qwen_agent.llm.LLMConfig` (used by the backend registry)."""
        opts = config.backend_options(OpenAIOptions)
        if not config.base_url:
            raise ConfigError(
                "the openai backend needs base_url, e.g. http://127.0.0.1:8000/v1 "
                "for `vllm serve` or http://127.0.0.1:11434/v1 for Ollama"
            )
        return cls(
            model=config.model,
            base_url=config.base_url,
            api_key=config.api_key,
            mode=config.mode,
            timeout=config.timeout,
            generation=config.generation,
            extra_body=opts.extra_body,
            native_tools=opts.native_tools,
            thinking_param=opts.thinking_param,
            opens_thinking=opts.opens_thinking,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"
        )

    # -- ChatModel -------------------------------------------------------------------------

    def stream(self, request: ModelRequest) -> Iterator[Delta]:
        """Yield text deltas; the last one has ``finish_reason`` (and the server's usage,
        and in native mode its tool calls). Raises :class:`BackendConnectionError` or
        :class:`BackendResponseError` while iterating."""
        if not request.messages:
            raise ConfigError("stream() needs at least one message")
        url, body = self._request(request)
        return self._stream(url, body)

    def close(self) -> None:
        """Close the connection pools. The model can still be used; it reconnects."""
        with self._lock:
            client, self._client = self._client, None
            pools = list(self._aclients.items())
            self._aclients.clear()
        if client is not None:
            client.close()
        for loop, pool in pools:  # each async pool is closed on its own loop
            if loop.is_closed():
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(pool.aclose(), loop)
            else:
                with contextlib.suppress(RuntimeError):  # a loop running elsewhere now
                    loop.run_until_complete(pool.aclose())

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- request ---------------------------------------------------------------------------

    def _request(self, request: ModelRequest) -> tuple[str, dict]:
        messages = request.messages
        gen = request.generation.over(self.generation)
        body: dict[str, Any] = {"model": self.model, "stream": True}
        if self.mode == "chat":
            url = f"{self.base_url}/chat/completions"
            # the server's template makes the turns: special-token strings in content
            # are neutralized as they are in a prompt rendered here
            body["messages"] = [from_message(_plain(m), _image_url) for m in messages]
            body["stream_options"] = {"include_usage": True}
            if messages[-1].role == "assistant" and not messages[-1].tool_calls:
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            if self.native_tools and request.format is None and request.tools:
                body["tools"] = [t.openai() for t in request.tools]
                choice = request.tool_choice
                body["tool_choice"] = (
                    {"type": "function", "function": {"name": choice.name}}
                    if isinstance(choice, FunctionChoice)
                    else choice
                )
                if not request.parallel_tool_calls:
                    body["parallel_tool_calls"] = False
            fmt = request.response_format
            if fmt is not None and fmt.type == "json_object":
                body["response_format"] = {"type": "json_object"}
            elif fmt is not None and fmt.type == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": fmt.name, "schema": fmt.json_schema},
                }
        else:
            url = f"{self.base_url}/completions"
            body["prompt"] = render_chatml(messages)
            gen = gen.with_stop([IM_END])
        body.update(gen.model_dump(exclude_none=True, exclude={"stop"}))
        if gen.stop:
            body["stop"] = gen.stop
        body.update(self.extra_body)
        if request.thinking is not None:
            if self.thinking_param == "chat_template_kwargs":
                kwargs = dict(body.get("chat_template_kwargs") or {})
                kwargs["enable_thinking"] = request.thinking
                body["chat_template_kwargs"] = kwargs
            else:
                body[self.thinking_param] = request.thinking
        return url, body

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
            return self._client

    # -- response --------------------------------------------------------------------------

    def _stream(self, url: str, body: dict[str, Any]) -> Iterator[Delta]:
        reader = _Reader(url, self.mode, self._opens(body))
        with _mapped_errors(url, self.timeout):
            with self._http().stream("POST", url, json=body) as response:
                if not response.is_success:
                    response.read()
                    raise _status_error(url, response)
                events = _sse_events(response.iter_lines())
                for data in events:
                    if data.strip() == "[DONE]":
                        for _ in events:  # read to the end, as openai-python does, so
                            pass  # the connection can be reused
                        break
                    yield from reader.feed(data)
        yield reader.end()

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        """:meth:`stream` over an ``httpx.AsyncClient`` (one per event loop): no thread
        per generation; closing the iterator closes the response."""
        if not request.messages:
            raise ConfigError("stream() needs at least one message")
        url, body = self._request(request)
        reader = _Reader(url, self.mode, self._opens(body))
        with _mapped_errors(url, self.timeout):
            async with self._ahttp().stream("POST", url, json=body) as response:
                if not response.is_success:
                    await response.aread()
                    raise _status_error(url, response)
                done = False
                async for data in _asse_events(response.aiter_lines()):
                    if done:
                        continue  # read to the end so the connection can be reused
                    if data.strip() == "[DONE]":
                        done = True
                        continue
                    for delta in reader.feed(data):
                        yield delta
        yield reader.end()

    def _opens(self, body: dict[str, Any]) -> bool:
        """Whether the reply begins inside reasoning the server's template opened."""
        return self.opens_thinking and not body.get("continue_final_message")

    def _ahttp(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._aclients.get(loop)
            if client is None:
                client = httpx.AsyncClient(
                    timeout=httpx.Timeout(self.timeout),
                    headers={"Authorization": f"Bearer {self.api_key}"},
                )
                self._aclients[loop] = client
            return client

    async def aclose(self) -> None:
        """Close the connection pool of the running event loop (and the sync one)."""
        with self._lock:
            client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()


class _Reader:
    """One streamed reply: each SSE ``data`` in, the deltas it holds out; :meth:`end` is
    the last delta (finish reason, usage, the native calls and those that could not be
    read)."""

    def __init__(self, url: str, mode: str, opened: bool) -> None:
        self.url, self.mode, self.opened = url, mode, opened
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.calls = _CallCollector(url)

    def feed(self, data: str) -> list[Delta]:
        out: list[Delta] = []
        chunk = _chunk(self.url, data)
        self.usage = _usage(chunk) or self.usage
        reasoning, text, reason = _parse_chunk(self.url, data, self.mode, chunk, self.calls)
        if self.opened and (reasoning or text):  # the prompt opened <think>
            self.opened = False
            if not reasoning:  # the server sends the model's text as it is
                out.append(Delta("<think>\n"))
        if reasoning or text:
            out.append(Delta(text, reasoning=reasoning))
        self.finish = reason or self.finish
        return out

    def end(self) -> Delta:
        reason: FinishReason = "length" if self.finish == "length" else "stop"
        found, errors = self.calls.result()
        return Delta("", reason, self.usage, found or None, errors or None)


@contextlib.contextmanager
def _mapped_errors(url: str, timeout: float) -> Iterator[None]:
    """httpx's errors as the backend's, saying what to check."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendTimeoutError(
            f"request to {url} timed out after {timeout:g}s ({type(exc).__name__}); "
            "the server may be overloaded or still loading the model; raise `timeout` "
            "if generations are slow"
        ) from exc
    except httpx.ConnectError as exc:
        raise BackendConnectionError(
            f"cannot reach {url}: {exc}; is the server running and is base_url right "
            "(it usually ends in /v1)?"
        ) from exc
    except httpx.TransportError as exc:
        raise BackendConnectionError(
            f"the connection to {url} failed: {str(exc) or type(exc).__name__}; "
            "the server may have crashed or restarted"
        ) from exc
    except httpx.HTTPError as exc:
        raise BackendResponseError(f"bad response from {url}: {exc}") from exc


def _plain(msg: Message) -> Message:
    """``msg`` with special-token strings neutralized in all the text it carries: its
    content (file labels included), reasoning, and its tool calls' arguments."""
    if isinstance(msg.content, str):
        content: Any = neutralize(msg.content)
    else:
        content = [
            item if isinstance(item, ImageItem) else TextItem(text=neutralize(content_text([item])))
            for item in msg.content
        ]
    calls = [
        c.model_copy(update={"arguments": json.loads(neutralize(c.arguments_json()))})
        for c in msg.tool_calls
    ]
    return msg.model_copy(
        update={"content": content, "reasoning": neutralize(msg.reasoning), "tool_calls": calls}
    )


def _image_url(image: str) -> str:
    """URLs and data URIs pass through; a local file is sent inline as a data URI."""
    if image.startswith(_REMOTE_PREFIXES):
        return image
    path = Path(image.removeprefix("file://"))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read image {image!r} to send it to the server: {exc}") from exc
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _sse_events(lines: Iterable[str]) -> Iterator[str]:
    """The ``data`` of each server-sent event; comments and other fields are skipped."""
    parser = _SSE()
    for line in lines:
        data = parser.line(line)
        if data is not None:
            yield data
    if parser.data:
        yield "\n".join(parser.data)


async def _asse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """:func:`_sse_events` over async lines."""
    parser = _SSE()
    async for line in lines:
        data = parser.line(line)
        if data is not None:
            yield data
    if parser.data:
        yield "\n".join(parser.data)


class _SSE:
    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: list[str] = []

    def line(self, line: str) -> str | None:
        """The event's data when ``line`` ends one, else None."""
        if not line:
            if self.data:
                out, self.data = "\n".join(self.data), []
                return out
            return None
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self.data.append(value[1:] if value.startswith(" ") else value)
        return None


def _chunk(url: str, data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BackendResponseError(
            f"{url} streamed data that is not JSON ({exc}): {data[:200]!r}"
        ) from exc
    if not isinstance(chunk, dict):
        raise BackendResponseError(f"{url} streamed a non-object chunk: {data[:200]!r}")
    return chunk


def _usage(chunk: dict[str, Any]) -> Usage | None:
    u = chunk.get("usage")
    if not isinstance(u, dict):
        return None
    p, c = u.get("prompt_tokens"), u.get("completion_tokens")
    return Usage(p, c) if isinstance(p, int) and isinstance(c, int) else None


class _CallCollector:
    """Adds up streamed ``tool_calls`` deltas by index (id and name first, then pieces of
    the arguments' JSON), as OpenAI's client does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise BackendResponseError(f"{self.url} streamed malformed tool_calls: {deltas!r:.200}")
        for d in deltas:
            fn = d.get("function") if isinstance(d, dict) else None
            index = d.get("index", len(self.calls)) if isinstance(d, dict) else None
            if not isinstance(index, int) or not isinstance(fn, dict | None):
                raise BackendResponseError(f"{self.url} streamed a malformed tool call: {d!r:.200}")
            call = self.calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            if d.get("id"):
                call["id"] = str(d["id"])
            fn = fn or {}
            if isinstance(fn.get("name"), str):
                call["name"] += fn["name"]
            if isinstance(fn.get("arguments"), str):
                call["arguments"] += fn["arguments"]

    def result(self) -> tuple[list[ToolCall], list[str]]:
        calls, errors = [], []
        for _, c in sorted(self.calls.items()):
            try:
                args = json.loads(c["arguments"] or "{}")
            except ValueError as exc:
                errors.append(f"tool {c['name']!r}: the arguments are not valid JSON ({exc})")
                continue
            if not isinstance(args, dict) or not c["name"]:
                errors.append(f"tool {c['name']!r}: the arguments must be a JSON object")
                continue
            calls.append(ToolCall(id=c["id"], name=c["name"], arguments=args))
        return calls, errors


def _parse_chunk(
    url: str, data: str, mode: str, chunk: dict[str, Any], calls: _CallCollector
) -> tuple[str, str, str | None]:
    """(reasoning, text, finish_reason) of one streamed chunk; tool calls go to ``calls``."""
    if chunk.get("error"):
        raise BackendResponseError(f"{url} reported an error mid-stream: {_error_text(chunk)}")
    choices = chunk.get("choices") or []  # a chunk with only `usage` has no choices
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise BackendResponseError(f"{url} streamed malformed choices: {data[:200]!r}")
    if not choices:
        return "", "", None
    choice = choices[0]
    if mode == "chat":
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise BackendResponseError(f"{url} streamed a malformed delta: {data[:200]!r}")
        if delta.get("tool_calls"):
            calls.add(delta["tool_calls"])
        text = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
    else:
        text, reasoning = choice.get("text") or "", ""
    if not isinstance(text, str) or not isinstance(reasoning, str):
        raise BackendResponseError(f"{url} streamed non-text content: {data[:200]!r}")
    return reasoning, text, choice.get("finish_reason")


def _error_text(payload: Any) -> str:
    """The message of an OpenAI-, Ollama- or FastAPI-style error body."""
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            value = payload.get(key)
            if isinstance(value, dict):
                return _error_text(value)
            if value:
                return value if isinstance(value, str) else json.dumps(value)
    return json.dumps(payload)[:500]


def _status_error(url: str, response: httpx.Response) -> BackendResponseError:
    message = _status_message(url, response)
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("code") == "context_length_exceeded":
        param = (
            error.get("param") if error.get("param") in ("messages", "max_tokens") else "messages"
        )
        return ContextWindowError(message, param, status_code=response.status_code)
    status = response.status_code
    cls = RateLimitError if status == 429 else BackendResponseError
    return cls(message, status_code=status, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import time

        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds and seconds < 86400 * 7 else None


def _status_message(url: str, response: httpx.Response) -> str:
    try:
        message = _error_text(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        message = response.text.strip()[:500] or "(empty body)"
    hint = {
        401: "; check api_key (or OPENAI_API_KEY)",
        403: "; check api_key (or OPENAI_API_KEY)",
        404: "; check base_url (it usually ends in /v1), the model name and mode",
    }.get(response.status_code, "")
    return f"{url} answered HTTP {response.status_code}: {message}{hint}"
