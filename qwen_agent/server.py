"""An OpenAI-compatible HTTP server for any :class:`~qwen_agent.llm.ChatModel` (stdlib only).

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions``,
streamed (SSE) or not. A completion prompt is read as ChatML (:func:`parse_chatml`); a
trailing assistant message, in either endpoint, is continued by the model. The server calls
``model.stream`` from one thread per request, so the model must be thread-safe.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from qwen_agent.chatml import parse_chatml
from qwen_agent.llm import ChatModel, Delta, GenerationConfig
from qwen_agent.messages import ImageItem, Message, TextItem

__all__ = ["OpenAIServer"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
_ROLES = ("system", "user", "assistant", "tool")


class _RequestError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class OpenAIServer:
    """Serve ``model`` under ``model_name`` at :attr:`url` until :meth:`stop`.

    ``port=0`` picks a free port. Use as a context manager, or ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        model: ChatModel,
        model_name: str = "qwen-agent",
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.model, self.model_name = model, model_name
        self.host, self.port, self.max_body_bytes = host, port, max_body_bytes
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients, e.g. ``http://127.0.0.1:8000/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> OpenAIServer:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.app = self  # type: ignore[attr-defined]
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and close the listening socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # seconds a socket read or write may block (idle keep-alive included)
    server_version = "qwen-agent"

    @property
    def app(self) -> OpenAIServer:
        return self.server.app  # type: ignore[attr-defined]

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError, TimeoutError) as exc:  # client gone
            log.debug("%s: connection lost: %r", self.address_string(), exc)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0].rstrip("/") != "/v1/models":
            return self._error(_RequestError(404, f"no route GET {self.path}", "not_found"))
        card = {
            "id": self.app.model_name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "qwen-agent",
        }
        self._json(200, {"object": "list", "data": [card]})

    def do_POST(self) -> None:
        route = self.path.split("?", 1)[0].rstrip("/")
        try:
            if route not in ("/v1/chat/completions", "/v1/completions"):
                raise _RequestError(404, f"no route POST {self.path}", "not_found")
            body = self._read_json()
            chat = route == "/v1/chat/completions"
            messages = _chat_messages(body) if chat else _prompt_messages(body)
            config = _generation(body)
            if not isinstance(body.get("stream", False), bool):
                raise _RequestError(400, "'stream' must be a boolean")
            deltas = _deltas(self.app.model, messages, config)
            first = next(deltas)  # an early failure is still a plain 500
        except _RequestError as exc:
            return self._error(exc)
        reply = _Reply(self.app.model_name, chat)
        try:
            if body.get("stream"):
                self._stream(reply, itertools.chain([first], deltas))
            else:
                self._whole(reply, itertools.chain([first], deltas))
        finally:
            deltas.close()

    # -- responses -------------------------------------------------------------------------

    def _whole(self, reply: _Reply, deltas: Iterator[Delta]) -> None:
        try:
            got = list(deltas)
        except _RequestError as exc:
            return self._error(exc)
        self._json(200, reply.whole("".join(d.text for d in got), got[-1].finish_reason))

    def _stream(self, reply: _Reply, deltas: Iterator[Delta]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if reply.chat:
                self._event(reply.chunk("", role=True))
            try:
                for delta in deltas:
                    if delta.text:
                        self._event(reply.chunk(delta.text))
                    if delta.finish_reason is not None:
                        self._event(reply.chunk("", delta.finish_reason))
                        self._event("[DONE]")
            except _RequestError as exc:  # headers are sent: report it in the stream
                self._event({"error": {"message": exc.message, "type": exc.kind}})
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away during a stream")
            self.close_connection = True

    def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        self._chunk(f"data: {data}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: _RequestError) -> None:
        if exc.status >= 500:
            log.warning("request %s failed: %s", self.path, exc.message)
        error = {"message": exc.message, "type": exc.kind, "code": exc.status}
        self._json(exc.status, {"error": error})

    def _read_json(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise _RequestError(411, "a Content-Length header is required") from None
        if length < 0 or length > self.app.max_body_bytes:
            self.close_connection = True  # the body is left unread
            raise _RequestError(413, f"the body is over {self.app.max_body_bytes} bytes")
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _RequestError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _RequestError(400, "the body must be a JSON object")
        return body


class _Reply:
    """Builds OpenAI-shaped response bodies for one request."""

    def __init__(self, model_name: str, chat: bool) -> None:
        self.chat = chat
        kind = "chatcmpl" if chat else "cmpl"
        self.head = {"id": f"{kind}-{uuid.uuid4().hex}", "created": int(time.time())}
        self.head["model"] = model_name

    def _body(self, obj: str, **choice: Any) -> dict[str, Any]:
        return {**self.head, "object": obj, "choices": [{"index": 0, **choice}]}

    def whole(self, text: str, finish: str) -> dict[str, Any]:
        if self.chat:
            message = {"role": "assistant", "content": text}
            return self._body("chat.completion", message=message, finish_reason=finish)
        return self._body("text_completion", text=text, logprobs=None, finish_reason=finish)

    def chunk(self, text: str, finish: str | None = None, role: bool = False) -> dict[str, Any]:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else {}
            delta.update({"content": text} if text else {})
            return self._body("chat.completion.chunk", delta=delta, finish_reason=finish)
        return self._body("text_completion", text=text, logprobs=None, finish_reason=finish)


def _deltas(
    model: ChatModel, messages: list[Message], config: GenerationConfig
) -> Generator[Delta, None, None]:
    """The model's deltas up to one with a finish reason; a model failure raises a 500."""
    deltas: Iterator[Delta] = iter(())
    try:
        deltas = iter(model.stream(messages, config))
        for delta in deltas:
            yield delta
            if delta.finish_reason is not None:
                return
        yield Delta("", "stop")
    except Exception as exc:  # the model's failure is reported to the client, not raised
        message = f"the model failed: {type(exc).__name__}: {exc}"
        raise _RequestError(500, message, "server_error") from exc
    finally:
        close = getattr(deltas, "close", None)
        if close is not None:
            close()  # stops generating for a client that left


def _chat_messages(body: dict[str, Any]) -> list[Message]:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _RequestError(400, "'messages' must be a non-empty list")
    if body.get("tools"):
        raise _RequestError(400, "'tools' is not supported; render tools into the prompt")
    messages = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
            raise _RequestError(400, f"messages[{i}] must be an object with a role in {_ROLES}")
        content = msg.get("content") or ""
        if isinstance(content, list):
            content = [_content_part(i, part) for part in content]
        elif not isinstance(content, str):
            raise _RequestError(400, f"messages[{i}].content must be a string or a list")
        extra = {key: msg[key] for key in ("name", "tool_call_id") if msg.get(key)}
        try:
            messages.append(Message(role=msg["role"], content=content, **extra))
        except ValidationError as exc:
            raise _RequestError(400, f"messages[{i}] is invalid: {_errors(exc)}") from None
    return messages


def _content_part(i: int, part: Any) -> TextItem | ImageItem:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return TextItem(text=part["text"])
    url = part.get("image_url") if kind == "image_url" else None
    url = url.get("url") if isinstance(url, dict) else url
    if isinstance(url, str):
        return ImageItem(image=url)
    raise _RequestError(400, f"messages[{i}] has an unsupported content part: {part!r:.200}")


def _prompt_messages(body: dict[str, Any]) -> list[Message]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise _RequestError(400, "'prompt' must be a non-empty string")
    messages = parse_chatml(prompt)
    if not messages:
        raise _RequestError(400, "'prompt' holds no message, only an empty assistant turn")
    return messages


def _generation(body: dict[str, Any]) -> GenerationConfig:
    stop = body.get("stop") or []
    options = {
        "max_tokens": body.get("max_tokens", body.get("max_completion_tokens")),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "seed": body.get("seed"),
        "stop": [stop] if isinstance(stop, str) else stop,
    }
    if body.get("n", 1) != 1:
        raise _RequestError(400, "only n=1 is supported")
    try:
        return GenerationConfig.model_validate(options)
    except ValidationError as exc:
        raise _RequestError(400, f"invalid generation options: {_errors(exc)}") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
