"""The FastAPI app behind ``qwen-agent serve``: OpenAI's API over any ChatModel, and agents.

Routes: ``GET /health``, ``GET /metrics`` (Prometheus text), ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/chat/completions``, ``POST /v1/completions`` and
``POST /tokenize``. Chat requests may carry ``tools``, ``tool_choice``,
``parallel_tool_calls``, ``response_format`` and ``stream_options``; the model's text is
parsed with the configured tool-call format (hermes by default) into ``tool_calls``, streamed
as OpenAI's tool-call deltas. A model named ``agent:NAME`` runs a configured agent's whole
loop here, its tools included, and streams its events.

Each model has a gate: at most ``capacity`` generations at once (the backend's
``max_concurrency``; the transformers backend runs one at a time), then a first-come
first-served queue of ``max_queue``; past it a 429 with ``Retry-After``, and a request that
waited ``queue_timeout`` seconds gets a 503. Everything is awaited on the server's event loop
(a backend with only a sync ``stream`` is read in a worker thread by
:func:`~qwen_agent.llm.astream`); a generation, or an agent run with its tool calls, stops
when its client disconnects, streamed or not. An upstream server's 429 reaches the client as
a 429 with its ``Retry-After``, a timeout as a 504, other backend failures as a 502.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.chatml import parse_chatml
from qwen_agent.config import SharedTools
from qwen_agent.errors import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigError,
    ContextWindowError,
    RateLimitError,
    RunCancelled,
)
from qwen_agent.formats import get_format
from qwen_agent.llm import ChatModel, Delta, ModelRequest, Usage, aclose, astream
from qwen_agent.serving.conversations import Conversations, conversation_id, owner_of
from qwen_agent.serving.reply import Reply, Turn, new_call_id
from qwen_agent.serving.runtime import Gate, Metrics, wait_disconnect
from qwen_agent.serving.wire import (
    ChatCompletionRequest,
    CompletionRequest,
    TokenizeRequest,
    WireError,
    error_body,
    parse_request,
    to_messages,
)
from qwen_agent.turn import TurnAssembler, build_request

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger("qwen_agent.serving")


class ServeConfig(BaseModel):
    """How the server listens and what it bounds."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: required as ``Authorization: Bearer KEY`` on every route but /health; several keys
    #: are several callers, whose agent conversations are kept apart; None: open
    api_key: str | list[str] | None = None
    #: agent conversations one API key may hold open (used within conversation_idle s)
    max_conversations_per_key: int = Field(default=8, gt=0)
    conversation_idle: float = Field(default=1800.0, gt=0)
    #: the tool-call format the served model writes (hermes: Qwen2.5/Qwen3 native)
    format: str = "hermes"
    max_body_bytes: int = Field(default=8 * 2**20, gt=0)
    max_depth: int = Field(default=64, gt=1)
    #: generations at once per model; None: the backend's ``max_concurrency`` (or 64)
    max_concurrency: int | None = Field(default=None, gt=0)
    #: requests waiting per model beyond those running; past it: 429
    max_queue: int = Field(default=64, ge=0)
    #: seconds a request may wait in the queue; past it: 503
    queue_timeout: float = Field(default=60.0, gt=0)
    #: seconds a request's body may take to arrive; past it: 408
    body_timeout: float = Field(default=30.0, gt=0)
    #: open connections at once (uvicorn's limit_concurrency); past it: 503
    max_connections: int = Field(default=1000, gt=0)


def _model_error(exc: BaseException) -> WireError:
    if isinstance(exc, WireError):
        return exc
    if isinstance(exc, RunCancelled):
        return WireError(499, "the client left", kind="client_closed_request")
    if isinstance(exc, ContextWindowError):
        return WireError(400, str(exc), exc.param, "context_length_exceeded")
    if isinstance(exc, ConfigError):
        return WireError(400, str(exc))
    if isinstance(exc, RateLimitError):  # the upstream's 429 passes on, with its wait
        wait = exc.retry_after
        return WireError(
            429,
            f"the model backend is busy: {exc}",
            code="rate_limit_exceeded",
            kind="rate_limit_error",
            headers={"Retry-After": str(max(1, math.ceil(wait)) if wait is not None else 1)},
        )
    if isinstance(exc, BackendTimeoutError):
        return WireError(504, f"the model backend timed out: {exc}", kind="server_error")
    if isinstance(exc, BackendConnectionError):
        return WireError(502, f"the model backend is unreachable: {exc}", kind="server_error")
    if isinstance(exc, BackendError):  # an upstream server answered badly
        return WireError(502, f"the model backend failed: {exc}", kind="server_error")
    log.warning("generation failed: %s: %s", type(exc).__name__, exc)
    return WireError(500, f"the model failed: {type(exc).__name__}: {exc}", kind="server_error")


# -- served things ---------------------------------------------------------------------------


@dataclass
class _Served:
    name: str
    model: ChatModel
    gate: Gate
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class _AgentEntry:
    name: str
    config: Any  # AgentConfig
    served: _Served
    created: int = field(default_factory=lambda: int(time.time()))
    #: the agent's MCP servers, started once and shared by all its conversations
    mcp: Any = None
    #: its tools that keep no conversation state, made once (an AgentConfig's SharedTools)
    shared: Any = None


# -- the app ---------------------------------------------------------------------------------


def create_app(
    models: ChatModel | dict[str, ChatModel],
    config: ServeConfig | None = None,
    agents: list[Any] = (),  # type: ignore[assignment]
) -> Any:
    """The FastAPI app serving ``models`` (one model, named ``qwen-agent``, or
    ``{name: model}``) and ``agents`` (:class:`~qwen_agent.config.AgentConfig` objects,
    served as ``agent:NAME`` on the first model unless their ``llm`` says otherwise)."""
    return _App(models, config or ServeConfig(), list(agents)).fastapi


class _App:
    def __init__(self, models: Any, config: ServeConfig, agents: list[Any]) -> None:
        if not isinstance(models, dict):
            models = {"qwen-agent": models}
        if not models:
            raise ConfigError("serve needs at least one model")
        self.config = config
        self.format = get_format(config.format)
        self.metrics = Metrics()
        self.served: dict[str, _Served] = {}
        for name, model in models.items():
            capacity = config.max_concurrency or getattr(model, "max_concurrency", None) or 64
            gate = Gate(int(capacity), config.max_queue, config.queue_timeout)
            self.served[name] = _Served(name, model, gate)
        first = next(iter(self.served.values()))
        self.agents: dict[str, _AgentEntry] = {}
        for agent in agents:
            served = first
            if getattr(agent, "llm", None) is not None:
                from qwen_agent.llm import get_chat_model

                own = get_chat_model(agent.llm)
                cap = getattr(own, "max_concurrency", None) or 64
                served = _Served(
                    f"agent:{agent.name}",
                    own,
                    Gate(int(cap), config.max_queue, config.queue_timeout),
                )
            if agent.name in self.agents:
                raise ConfigError(f"two agents are named {agent.name!r}")
            mcp = agent.open_mcp() if agent.mcp_servers else None
            shared = SharedTools()
            # its tools load now (a bad one fails here), and the shared ones stay made
            agent.build(llm=served.model, mcp=mcp, shared=shared).close()
            self.agents[agent.name] = _AgentEntry(agent.name, agent, served, mcp=mcp, shared=shared)
        keys = [config.api_key] if isinstance(config.api_key, str) else config.api_key or []
        self._keys = [(k.encode(), owner_of(k)) for k in keys if k]
        self.conversations = Conversations(
            config.max_conversations_per_key, config.conversation_idle
        )
        app = FastAPI(title="qwen-agent", docs_url=None, redoc_url=None, openapi_url=None)
        app.state.gates = {name: served.gate for name, served in self.served.items()}
        app.state.close = self.close  # what Server.stop and `qwen-agent serve` call at the end
        self.fastapi = app
        self.Response = Response

        @app.exception_handler(404)
        async def _not_found(request: Request, exc: Exception) -> Any:
            return self._error(
                WireError(404, f"no route {request.method} {request.url.path}", code="not_found")
            )

        @app.exception_handler(405)
        async def _bad_method(request: Request, exc: Exception) -> Any:
            return self._error(
                WireError(405, f"{request.method} is not allowed on {request.url.path}")
            )

        routes = [
            ("GET", "/health", self.health),
            ("GET", "/metrics", self.metrics_text),
            ("GET", "/v1/models", self.list_models),
            ("GET", "/v1/models/{model_id:path}", self.get_model),
            ("POST", "/v1/chat/completions", self.chat),
            ("POST", "/v1/completions", self.completions),
            ("POST", "/tokenize", self.tokenize),
        ]
        for method, path, handler in routes:
            app.add_api_route(path, self._guarded(handler, path), methods=[method])

    def close(self) -> None:
        """Releases the agents' shared tools and MCP servers (once; safe to call again)."""
        for entry in self.agents.values():
            for held in (entry.shared, entry.mcp):
                if held is not None:
                    try:
                        held.close()
                    except Exception as exc:  # close the others all the same
                        log.warning("closing agent %s: %s: %s", entry.name, type(exc).__name__, exc)

    # -- plumbing --------------------------------------------------------------------------

    def _guarded(self, handler: Callable[..., Any], path: str) -> Callable[..., Any]:
        async def route(request: Request) -> Any:
            start = time.perf_counter()
            status = 500
            try:
                if path != "/health":
                    self._authorize(request)
                response = await handler(request)
                status = response.status_code
                return response
            except WireError as exc:
                status = exc.status
                return self._error(exc)
            finally:
                self.metrics.requests.labels(path, str(status)).inc()
                self.metrics.latency.labels(path).observe(time.perf_counter() - start)

        route.__name__ = getattr(handler, "__name__", "route")
        return route

    def _authorize(self, request: Any) -> None:
        """Checks the API key and notes whose request it is (``request.state.owner``)."""
        if not self._keys:  # an open server: callers are told apart by their address
            client = getattr(request, "client", None)
            request.state.owner = owner_of(None) + ":" + (client.host if client else "")
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        presented = token.strip().encode()
        owner = None
        for key, who in self._keys:  # every key is compared: no timing tells which matched
            if hmac.compare_digest(presented, key) and scheme.lower() == "bearer":
                owner = who
        request.state.owner = owner
        if owner is None:
            raise WireError(
                401,
                "a valid API key is required: Authorization: Bearer <key>",
                code="invalid_api_key",
                kind="authentication_error",
            )

    def _error(self, exc: WireError) -> Any:
        return self._json(error_body(exc), exc.status, exc.headers)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(payload, separators=(",", ":")).encode()  # ASCII: see Reply.event
        return self.Response(data, status, headers, media_type="application/json")

    async def _body(self, request: Any) -> bytes:
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise WireError(413, f"the body is over {limit} bytes", code="request_too_large")
        chunks, size = [], 0

        async def read() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise WireError(
                        413, f"the body is over {limit} bytes", code="request_too_large"
                    )
                chunks.append(chunk)

        try:
            await asyncio.wait_for(read(), self.config.body_timeout)
        except TimeoutError:
            raise WireError(
                408,
                f"the body did not arrive within {self.config.body_timeout:g} s",
                code="request_timeout",
            ) from None
        return b"".join(chunks)

    def _lookup(self, name: str) -> _Served | _AgentEntry:
        if not name:
            return next(iter(self.served.values()))
        if name.startswith("agent:") and name[6:] in self.agents:
            return self.agents[name[6:]]
        served = self.served.get(name)
        if served is None:
            known = ", ".join([*self.served, *(f"agent:{a}" for a in self.agents)])
            raise WireError(
                404,
                f"the model {name!r} does not exist; served: {known}",
                "model",
                "model_not_found",
            )
        return served

    async def _slot(self, served: _Served) -> None:
        gate = served.gate
        start = time.perf_counter()
        self.metrics.waiting.labels(served.name).set(gate.waiting + 1)
        try:
            await gate.acquire()
        finally:
            self.metrics.waiting.labels(served.name).set(gate.waiting)
        self.metrics.queue_wait.labels(served.name).observe(time.perf_counter() - start)
        self.metrics.running.labels(served.name).set(gate.running)

    def _free(self, served: _Served) -> None:
        served.gate.release()
        self.metrics.running.labels(served.name).set(served.gate.running)

    def _count(self, served: _Served, usage: Usage) -> None:
        self.metrics.prompt_tokens.labels(served.name).inc(usage.prompt_tokens)
        self.metrics.completion_tokens.labels(served.name).inc(usage.completion_tokens)

    # -- simple routes ---------------------------------------------------------------------

    async def health(self, request: Any) -> Any:
        return self._json({"status": "ok"})

    async def metrics_text(self, request: Any) -> Any:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        for s in self.served.values():
            self.metrics.running.labels(s.name).set(s.gate.running)
            self.metrics.waiting.labels(s.name).set(s.gate.waiting)
        return self.Response(
            generate_latest(self.metrics.registry), 200, media_type=CONTENT_TYPE_LATEST
        )

    def _cards(self) -> list[dict[str, Any]]:
        cards = [
            {
                "id": s.name,
                "object": "model",
                "created": s.created,
                "owned_by": "qwen-agent",
                **(
                    {"max_model_len": s.model.max_context}
                    if hasattr(s.model, "max_context")
                    else {}
                ),
            }
            for s in self.served.values()
        ]
        cards += [
            {
                "id": f"agent:{a.name}",
                "object": "model",
                "created": a.created,
                "owned_by": "qwen-agent",
            }
            for a in self.agents.values()
        ]
        return cards

    async def list_models(self, request: Any) -> Any:
        return self._json({"object": "list", "data": self._cards()})

    async def get_model(self, request: Any) -> Any:
        model_id = request.path_params["model_id"]
        for card in self._cards():
            if card["id"] == model_id:
                return self._json(card)
        raise WireError(404, f"the model {model_id!r} does not exist", "model", "model_not_found")

    async def tokenize(self, request: Any) -> Any:
        req = parse_request(await self._body(request), TokenizeRequest, self.config.max_depth)
        served = self._lookup(req.model) if req.model else next(iter(self.served.values()))
        if isinstance(served, _AgentEntry):
            served = served.served
        model = served.model
        encode = getattr(model, "_encode", None)
        render = getattr(model, "render", None)
        if encode is None or render is None:
            raise WireError(
                400, f"the model {served.name!r} is not tokenized here (a remote backend)", "model"
            )
        if (req.prompt is None) == (req.messages is None):
            raise WireError(400, "give either 'prompt' or 'messages'", "prompt")
        text = req.prompt if req.prompt is not None else render(to_messages(req.messages or []))
        ids = await asyncio.to_thread(encode, text)
        return self._json(
            {"count": len(ids), "max_model_len": getattr(model, "max_context", None), "tokens": ids}
        )

    # -- completions -----------------------------------------------------------------------

    async def completions(self, request: Any) -> Any:
        req = parse_request(await self._body(request), CompletionRequest, self.config.max_depth)
        served = self._lookup(req.model)
        if isinstance(served, _AgentEntry):
            raise WireError(400, "agents answer /v1/chat/completions only", "model")
        messages = parse_chatml(req.text())
        if not messages:
            raise WireError(400, "'prompt' holds no message", "prompt")
        mreq = ModelRequest(messages=messages, generation=req.generation(), on_overflow="error")
        reply = Reply(served.name, chat=False)
        turn = Turn(TurnAssembler(None))
        return await self._respond(request, served, req, mreq, reply, turn)

    # -- chat ------------------------------------------------------------------------------

    async def chat(self, request: Any) -> Any:
        req = parse_request(await self._body(request), ChatCompletionRequest, self.config.max_depth)
        entry = self._lookup(req.model)
        if isinstance(entry, _AgentEntry):
            return await self._agent(request, req, entry)
        specs = req.tool_specs()
        prepared = build_request(
            self.format,
            to_messages(req.messages),
            specs,
            tool_choice=req.choice(specs),
            parallel=req.parallel_tool_calls is not False,
            generation=req.generation(),
            thinking=req.thinking(),
            native=bool(getattr(entry.model, "native_tools", False)),
            response_format=req.output_format(),
            on_overflow="error",
        )
        turn = Turn(prepared.assembler(new_id=new_call_id))
        mreq = prepared.request
        reply = Reply(entry.name, chat=True)
        return await self._respond(request, entry, req, mreq, reply, turn)

    async def _respond(
        self,
        request: Any,
        served: _Served,
        req: Any,
        mreq: ModelRequest,
        reply: Reply,
        turn: Turn,
    ) -> Any:
        # the client may leave while it waits for a slot or for the first delta
        watch = asyncio.ensure_future(wait_disconnect(request))
        try:
            await _unless_left(self._slot(served), watch)
        except BaseException as exc:
            watch.cancel()
            return self._left(served, exc)
        deltas = astream(served.model, mreq)
        try:
            first = await _unless_left(anext(deltas, None), watch)
        except BaseException as exc:
            watch.cancel()
            try:
                await aclose(deltas)
            finally:  # also when the cleanup itself is cancelled: the slot goes back
                self._free(served)
            return self._left(served, exc)
        if req.stream:
            watch.cancel()  # from here on Starlette watches the stream's client
            body = self._sse(served, deltas, first, reply, turn, req.include_usage)
            return StreamingResponse(
                body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        try:
            return await self._whole(served, deltas, first, reply, turn, watch)
        finally:
            self._free(served)

    def _left(self, served: _Served, exc: BaseException) -> Any:
        """The answer for a request that ended before its generation began: nothing for a
        client that left (499, as nginx logs it), else the error."""
        if isinstance(exc, RunCancelled):
            self.metrics.disconnects.labels(served.name).inc()
            return self.Response(b"", 499)
        if isinstance(exc, Exception):
            raise _model_error(exc) from exc
        raise exc

    async def _whole(
        self,
        served: _Served,
        deltas: AsyncIterator[Delta],
        first: Delta | None,
        reply: Reply,
        turn: Turn,
        watch: Any,
    ) -> Any:
        async def read() -> None:
            if first is not None:
                turn.feed(first)
                async for delta in deltas:
                    turn.feed(delta)

        try:
            try:
                await _unless_left(read(), watch)
            except RunCancelled:
                self.metrics.disconnects.labels(served.name).inc()
                return self.Response(b"", 499)  # nobody reads it
            except Exception as exc:
                raise _model_error(exc) from exc
            turn.finish()
        finally:
            watch.cancel()
            await aclose(deltas)
        usage = turn.usage()
        self._count(served, usage)
        return self._json(reply.whole(turn, usage))

    async def _sse(
        self,
        served: _Served,
        deltas: AsyncIterator[Delta],
        first: Delta | None,
        reply: Reply,
        turn: Turn,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        finished = False
        try:
            head = (
                [reply.event(reply.chunk({"role": "assistant", "content": ""}))]
                if reply.chat
                else []
            )
            pieces = turn.feed(first) if first is not None else []
            yield b"".join([*head, *(reply.event(reply.piece(p)) for p in pieces)])
            try:
                if first is not None:
                    async for delta in deltas:  # one write for all that is ready
                        batch = [delta, *_ready(deltas)]
                        out = [reply.event(reply.piece(p)) for d in batch for p in turn.feed(d)]
                        if out:
                            yield b"".join(out)
            except Exception as exc:  # headers are out: report it in the stream
                yield reply.event(error_body(_model_error(exc)))
                yield b"data: [DONE]\n\n"
                finished = True
                return
            tail = [reply.event(reply.piece(p)) for p in turn.finish()]
            tail.append(reply.event(reply.chunk({} if reply.chat else "", turn.finish_reason())))
            usage = turn.usage()
            self._count(served, usage)
            if include_usage:
                tail.append(reply.event(reply.usage_chunk(usage)))
            tail.append(b"data: [DONE]\n\n")
            yield b"".join(tail)
            finished = True
        finally:
            if not finished:
                self.metrics.disconnects.labels(served.name).inc()
            try:
                await aclose(deltas)
            finally:  # also when the cleanup itself is cancelled: the slot goes back
                self._free(served)

    # -- agents ----------------------------------------------------------------------------

    async def _agent(self, request: Any, req: ChatCompletionRequest, entry: _AgentEntry) -> Any:
        from qwen_agent.serving.agents import AgentRun

        if req.tools:
            raise WireError(400, "an agent runs its own tools; send no 'tools'", "tools")
        if req.response_format is not None and req.response_format.type != "text":
            raise UnsupportedParameterForAgent("response_format")
        if req.tool_choice is not None:
            raise UnsupportedParameterForAgent("tool_choice")
        messages = to_messages(req.messages)
        if messages[-1].role != "user":
            raise WireError(400, "an agent run ends with a user message", "messages")
        given = (req.metadata or {}).get("conversation_id")
        if given is None and "x-conversation-id" in request.headers:
            given = request.headers["x-conversation-id"]
        conversation = conversation_id(given)
        if conversation is not None:  # the caller's own: keyed by who it is
            conversation = self.conversations.claim(request.state.owner, conversation)
        served = entry.served
        run = AgentRun(
            entry.config,
            served.model,
            conversation,
            req.generation(),
            _GateSlot(self, served),
            req.thinking(),
            mcp=entry.mcp,
            shared=entry.shared,
        )
        reply = Reply(f"agent:{entry.name}", chat=True)
        if req.stream:
            body = self._agent_sse(served, run, messages, reply, req.include_usage)
            return StreamingResponse(
                body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        watch = asyncio.ensure_future(wait_disconnect(request))

        async def drain() -> None:
            async for _ in run.events(messages):
                pass

        try:
            # a client that leaves ends the run at once (its tool calls are cancelled and
            # its kernel freed below), not when the tool it waits on returns
            await _unless_left(drain(), watch)
        except RunCancelled:
            self.metrics.disconnects.labels(served.name).inc()
            return self.Response(b"", 499)
        except Exception as exc:
            raise _model_error(exc) from exc
        finally:
            watch.cancel()
            await asyncio.shield(asyncio.to_thread(run.close))
        self._count(served, run.usage)
        return self._json(reply.agent_whole(run))

    async def _agent_sse(
        self,
        served: _Served,
        run: Any,
        messages: list[Any],
        reply: Reply,
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        from qwen_agent.serving.agents import agent_delta

        events = run.events(messages)
        try:
            yield reply.event(reply.chunk({"role": "assistant", "content": ""}))
            try:
                async for ev in events:
                    delta = agent_delta(ev)
                    if delta:
                        yield reply.event(reply.chunk(delta))
            except Exception as exc:
                yield reply.event(error_body(_model_error(exc)))
                yield b"data: [DONE]\n\n"
                return
            yield reply.event(reply.chunk({}, "stop"))
            self._count(served, run.usage)
            if include_usage:
                yield reply.event(reply.usage_chunk(run.usage))
            yield b"data: [DONE]\n\n"
        finally:
            # started before any await: a client that left cancels this generator, and an
            # await in its cleanup would be cancelled too, leaving the kernel to its tool
            closing = asyncio.get_running_loop().run_in_executor(None, run.close)
            try:
                await events.aclose()
            finally:
                await asyncio.shield(closing)


class _GateSlot:
    """A served model's gate, taken by an agent run around each model call."""

    def __init__(self, app: _App, served: _Served) -> None:
        self.app, self.served = app, served

    async def acquire(self) -> None:
        await self.app._slot(self.served)

    def release(self) -> None:
        self.app._free(self.served)


def _ready(deltas: Any) -> list[Delta]:
    """The deltas a threaded stream already holds (none for other streams)."""
    ready = getattr(deltas, "ready", None)
    return ready() if ready is not None else []


async def _unless_left(awaitable: Any, watch: Any) -> Any:
    """``await awaitable``, unless the client leaves first (``watch`` ends):
    :class:`~qwen_agent.errors.RunCancelled`."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise RunCancelled("the client left")


class UnsupportedParameterForAgent(WireError):
    def __init__(self, param: str) -> None:
        super().__init__(
            400, f"'{param}' is not supported for agent models", param, "unsupported_parameter"
        )
