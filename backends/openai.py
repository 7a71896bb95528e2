"""A :class:`~qwen_agent.llm.ChatModel` for any OpenAI-compatible server.

Works with ``vllm serve``, SGLang, Ollama, DashScope's compatible mode and the project's own
:class:`~qwen_agent.server.OpenAIServer`. Two modes:

- ``"chat"``: ``POST {base_url}/chat/completions``; the server applies the chat template. A
  trailing assistant message is sent with vLLM's ``continue_final_message`` so it is continued.
- ``"completion"``: ``POST {base_url}/completions`` with the messages rendered as ChatML, for
  servers or models without a chat template; ``<|im_end|>`` is added to the stop words.

Reasoning that a server returns apart from the content (``reasoning_content``) is given back
inside ``<think>...</think>``, as the model wrote it, so no text is lost.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx

from qwen_agent.chatml import IM_END, render_chatml
from qwen_agent.errors import BackendConnectionError, BackendResponseError, ConfigError
from qwen_agent.llm import Delta, FinishReason, GenerationConfig, LLMConfig
from qwen_agent.messages import FileItem, ImageItem, Message, TextItem

__all__ = ["OpenAIChatModel"]

_REMOTE_PREFIXES = ("http://", "https://", "data:")


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
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.mode = mode
        self.timeout = float(timeout)
        self.generation = generation or GenerationConfig()
        self.extra_body = dict(extra_body or {})
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: LLMConfig) -> OpenAIChatModel:
        """Build from an :class:`~qwen_agent.llm.LLMConfig` (used by the backend registry)."""
        options = config.options()
        extra_body = options.pop("extra_body", None)
        known = {"model", "base_url", "api_key", "mode", "timeout", "generation"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"unknown option(s) for the openai backend: {', '.join(unknown)}; "
                "put server-specific request fields in extra_body"
            )
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
            extra_body=extra_body,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"
        )

    # -- ChatModel -------------------------------------------------------------------------

    def stream(self, messages: list[Message], config: GenerationConfig) -> Iterator[Delta]:
        """Yield text deltas; the last one has ``finish_reason``. Raises
        :class:`BackendConnectionError` or :class:`BackendResponseError` while iterating."""
        if not messages:
            raise ConfigError("stream() needs at least one message")
        url, body = self._request(messages, config)
        return self._stream(url, body)

    def close(self) -> None:
        """Close the connection pool. The model can still be used; it reconnects."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- request ---------------------------------------------------------------------------

    def _request(self, messages: list[Message], config: GenerationConfig) -> tuple[str, dict]:
        gen = self._merged(config)
        body: dict[str, Any] = {"model": self.model, "stream": True}
        if self.mode == "chat":
            url = f"{self.base_url}/chat/completions"
            body["messages"] = [_chat_message(m) for m in messages]
            if messages[-1].role == "assistant":
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        else:
            url = f"{self.base_url}/completions"
            body["prompt"] = render_chatml(messages)
            gen = gen.with_stop([IM_END])
        body.update(gen.model_dump(exclude_none=True, exclude={"stop"}))
        if gen.stop:
            body["stop"] = gen.stop
        body.update(self.extra_body)
        return url, body

    def _merged(self, config: GenerationConfig) -> GenerationConfig:
        override = config.model_dump(exclude_none=True, exclude={"stop"})
        return self.generation.model_copy(update=override).with_stop(config.stop)

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
        finish: str | None = None
        thinking = False
        try:
            with self._http().stream("POST", url, json=body) as response:
                if not response.is_success:
                    response.read()
                    raise BackendResponseError(_status_message(url, response))
                events = _sse_events(response.iter_lines())
                for data in events:
                    if data.strip() == "[DONE]":
                        for _ in events:  # read to the end, as openai-python does, so
                            pass  # the connection can be reused
                        break
                    reasoning, text, reason = _parse_chunk(url, data, self.mode)
                    if reasoning:
                        yield Delta(reasoning if thinking else f"<think>\n{reasoning}")
                        thinking = True
                    if text and thinking:
                        text, thinking = f"\n</think>\n\n{text}", False
                    if text:
                        yield Delta(text)
                    finish = reason or finish
        except httpx.TimeoutException as exc:
            raise BackendConnectionError(
                f"request to {url} timed out after {self.timeout:g}s ({type(exc).__name__}); "
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
        reason_out: FinishReason = "length" if finish == "length" else "stop"
        yield Delta("\n</think>\n\n" if thinking else "", reason_out)


def _chat_message(msg: Message) -> dict[str, Any]:
    """One message in the OpenAI chat format; images become ``image_url`` parts."""
    out: dict[str, Any] = {"role": msg.role}
    if isinstance(msg.content, list) and any(isinstance(c, ImageItem) for c in msg.content):
        parts: list[dict[str, Any]] = []
        for item in msg.content:
            if isinstance(item, TextItem):
                parts.append({"type": "text", "text": item.text})
            elif isinstance(item, ImageItem):
                parts.append({"type": "image_url", "image_url": {"url": _image_url(item.image)}})
            elif isinstance(item, FileItem):
                parts.append({"type": "text", "text": f"[file: {item.name or item.file}]"})
        out["content"] = parts
    else:
        out["content"] = msg.text
    if msg.name:
        out["name"] = msg.name
    if msg.tool_call_id:
        out["tool_call_id"] = msg.tool_call_id
    return out


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
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def _parse_chunk(url: str, data: str, mode: str) -> tuple[str, str, str | None]:
    """(reasoning, text, finish_reason) of one streamed chunk."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BackendResponseError(
            f"{url} streamed data that is not JSON ({exc}): {data[:200]!r}"
        ) from exc
    if not isinstance(chunk, dict):
        raise BackendResponseError(f"{url} streamed a non-object chunk: {data[:200]!r}")
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
