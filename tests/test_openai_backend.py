"""The OpenAI-compatible backend against real HTTP servers on 127.0.0.1.

Most tests run :class:`OpenAIChatModel` against the project's own ``qwen-agent serve``
(:class:`~qwen_agent.serving.Server`) wrapping a :class:`ScriptedLLM`; a few use a tiny
canned-response server to feed the client what other servers (vLLM, Ollama, DashScope)
send; tests/test_serve.py tries the server itself with the official client.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qwen_agent.backends.openai import OpenAIChatModel
from qwen_agent.chatml import render_chatml
from qwen_agent.errors import (
    BackendConnectionError,
    BackendResponseError,
    ConfigError,
    ContextWindowError,
)
from qwen_agent.llm import Delta, GenerationConfig, ModelRequest, Usage, drain, get_chat_model
from qwen_agent.messages import ImageItem, Message, TextItem
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]

MODES = ["chat", "completion"]
GEN = GenerationConfig()


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator:
    """``serve(model, **kw)`` starts an Server that is stopped after the test."""
    servers: list[Server] = []

    def start(model, **kwargs) -> Server:
        server = Server(model, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client() -> Iterator:
    """``client(base_url, **kw)`` builds an OpenAIChatModel that is closed after the test."""
    models: list[OpenAIChatModel] = []

    def make(base_url: str, **kwargs) -> OpenAIChatModel:
        kwargs.setdefault("model", "qwen-agent")
        model = OpenAIChatModel(base_url=base_url, **kwargs)
        models.append(model)
        return model

    yield make
    for model in models:
        model.close()


class _Canned(ThreadingHTTPServer):
    """Answers every POST with one fixed response and records the requests."""

    daemon_threads = True

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(("127.0.0.1", 0), _CannedHandler)
        self.status, self.body, self.content_type = status, body, content_type
        self.missing = 0  # > 0: announce that many bytes more than are sent, then hang up
        self.requests: list[tuple[str, dict[str, str], dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _CannedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Content-Length", str(len(self.server.body) + self.server.missing))
        for name, value in getattr(self.server, "extra_headers", {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(self.server.body)
        self.close_connection = self.server.missing > 0


@pytest.fixture
def canned() -> Iterator:
    """``canned(body, status=200)`` starts a server that always sends ``body``."""
    servers: list[_Canned] = []

    def start(body: str | bytes, status: int = 200, content_type: str = "text/event-stream"):
        data = body.encode() if isinstance(body, str) else body
        server = _Canned(status, data, content_type)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def sse(*chunks: dict | str) -> str:
    return "".join(f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks)


def chat_chunk(content: str | None = None, finish: str | None = None, **delta) -> dict:
    if content is not None:
        delta["content"] = content
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def collect(model: OpenAIChatModel, messages: list[Message], config=GEN) -> list[Delta]:
    return list(model.stream(ModelRequest(messages=messages, generation=config)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


USER = [Message(role="system", content="Be brief."), Message(role="user", content="Hi?")]


# -- streaming through the project's own server ---------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_streamed_text_equals_the_script(serve, client, mode):
    text = "Hello there, this is a streamed answer — 你好，世界 🌍."
    server = serve(ScriptedLLM(text, chunk_size=3))
    deltas = collect(client(server.url, mode=mode), USER)
    assert "".join(d.text for d in deltas) == text
    assert len(deltas) >= len(text) // 3  # really streamed, not one blob
    assert [d.finish_reason for d in deltas].count(None) == len(deltas) - 1
    assert deltas[-1].finish_reason == "stop"


@pytest.mark.parametrize("mode", MODES)
def test_max_tokens_cuts_with_finish_reason_length(serve, client, mode):
    llm = ScriptedLLM("abcdefghijklmnop")
    server = serve(llm)
    config = GenerationConfig(max_tokens=5, temperature=0.5, top_p=0.9, seed=7)
    result = drain(client(server.url, mode=mode), USER, config)
    assert (result.text, result.finish_reason) == ("abcde", "length")
    got = llm.configs[-1]
    assert (got.max_tokens, got.temperature, got.top_p, got.seed) == (5, 0.5, 0.9, 7)


@pytest.mark.parametrize("mode", MODES)
def test_stop_words_reach_the_server(serve, client, mode):
    llm = ScriptedLLM("Thought: look it up\nObservation: 42")
    server = serve(llm)
    result = drain(client(server.url, mode=mode), USER, GenerationConfig(stop=["Observation:"]))
    assert (result.text, result.finish_reason) == ("Thought: look it up\n", "stop")
    # completion mode also stops at the end of the ChatML turn
    expected = ["Observation:"] if mode == "chat" else ["Observation:", "<|im_end|>"]
    assert llm.configs[-1].stop == expected


def test_default_generation_is_merged_under_the_call_config(serve, client):
    llm = ScriptedLLM("ok")
    server = serve(llm)
    defaults = GenerationConfig(temperature=0.1, max_tokens=64, stop=["A"])
    model = client(server.url, generation=defaults)
    drain(model, USER, GenerationConfig(temperature=0.7, stop=["B"]))
    got = llm.configs[-1]
    assert (got.temperature, got.max_tokens, got.top_p, got.stop) == (0.7, 64, None, ["A", "B"])


@pytest.mark.parametrize("mode", MODES)
def test_server_receives_the_same_messages(serve, client, mode):
    llm = ScriptedLLM("fine")
    server = serve(llm)
    messages = [
        Message(role="system", content="You are terse."),
        Message(role="user", content="line one\nline two"),
        Message(role="assistant", content="An earlier answer."),
        Message(role="user", content="And now?"),
    ]
    drain(client(server.url, mode=mode), messages, GEN)
    got = llm.prompts[-1]
    assert [(m.role, m.text) for m in got] == [(m.role, m.text) for m in messages]


@pytest.mark.parametrize("mode", MODES)
def test_trailing_assistant_message_is_continued(serve, client, mode):
    llm = ScriptedLLM(" 408.")
    server = serve(llm)
    messages = [Message(role="user", content="12*34?"), Message(role="assistant", content="It is")]
    result = drain(client(server.url, mode=mode), messages, GEN)
    assert result.text == " 408."
    got = llm.prompts[-1]
    assert [(m.role, m.text) for m in got] == [("user", "12*34?"), ("assistant", "It is")]


def test_chat_mode_asks_the_server_to_continue_a_final_assistant_message(canned, client):
    server = canned(sse(chat_chunk("x", "stop"), "[DONE]"))
    model = client(server.url, model="qwen2.5-7b", extra_body={"top_k": 20})
    drain(model, [Message(role="user", content="q"), Message(role="assistant", content="a")], GEN)
    drain(model, [Message(role="user", content="q")], GenerationConfig(max_tokens=3))
    (path, headers, first), (_, _, second) = server.requests
    assert path == "/v1/chat/completions" and headers["Authorization"].startswith("Bearer ")
    assert first["messages"] == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]
    assert (first["continue_final_message"], first["add_generation_prompt"]) == (True, False)
    assert first["model"] == "qwen2.5-7b" and first["stream"] is True and first["top_k"] == 20
    assert "continue_final_message" not in second and "stop" not in second
    assert second["max_tokens"] == 3 and "temperature" not in second  # None is omitted


def _tc(index, id=None, name=None, arguments=None):
    fn = {k: v for k, v in (("name", name), ("arguments", arguments)) if v is not None}
    d = {"index": index, "function": fn}
    if id:
        d.update(id=id, type="function")
    return d


def test_native_tools_are_sent_as_data_and_streamed_calls_come_back(canned, client):
    """What vLLM (--tool-call-parser hermes) streams: id and name first, then the
    arguments in pieces, two calls by index, then usage; the backend adds them up."""
    from qwen_agent.llm import FunctionChoice
    from qwen_agent.messages import ToolCall
    from qwen_agent.tool import ToolSpec

    server = canned(
        sse(
            chat_chunk(
                None, None, role="assistant", tool_calls=[_tc(0, "call_a", "get_weather", "")]
            ),
            chat_chunk(None, None, tool_calls=[_tc(0, arguments='{"city": ')]),
            chat_chunk(None, None, tool_calls=[_tc(0, arguments='"Paris"}')]),
            chat_chunk(
                None, None, tool_calls=[_tc(1, "call_b", "get_weather", '{"city": "Rome"}')]
            ),
            chat_chunk(None, "tool_calls"),
            {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 12}},
            "[DONE]",
        )
    )
    model = client(server.url, native_tools=True)
    spec = ToolSpec(name="get_weather", parameters={"type": "object", "properties": {}})
    history = [
        Message(role="user", content="Weather?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="c0", name="get_weather", arguments={"city": "Oslo"})],
        ),
        Message(role="tool", tool_call_id="c0", name="get_weather", content="cold"),
    ]
    request = ModelRequest(
        messages=history,
        tools=(spec,),
        tool_choice=FunctionChoice(name="get_weather"),
        parallel_tool_calls=False,
    )
    out = drain(model, request)
    assert [(c.id, c.name, c.arguments) for c in out.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_weather", {"city": "Rome"}),
    ]
    assert out.usage == Usage(30, 12) and out.text == ""
    _, _, body = server.requests[0]
    assert body["tools"] == [spec.openai()]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            }
        ],
    }
    assert body["messages"][2] == {"role": "tool", "content": "cold", "tool_call_id": "c0"}


def test_native_calls_with_bad_arguments_become_call_errors(canned, client):
    server = canned(
        sse(chat_chunk(None, "tool_calls", tool_calls=[_tc(0, "c", "f", '{"x": ')]), "[DONE]")
    )
    out = drain(client(server.url, native_tools=True), USER)
    assert out.tool_calls is None and "not valid JSON" in out.call_errors[0]


def test_native_tools_need_chat_mode():
    with pytest.raises(ConfigError, match="native_tools needs mode='chat'"):
        OpenAIChatModel("m", "http://127.0.0.1:1/v1", mode="completion", native_tools=True)


def test_a_context_window_error_upstream_is_a_context_window_error(canned, client):
    error = {
        "error": {
            "message": "too long",
            "type": "invalid_request_error",
            "param": "max_tokens",
            "code": "context_length_exceeded",
        }
    }
    server = canned(json.dumps(error), status=400, content_type="application/json")
    with pytest.raises(ContextWindowError) as exc:
        drain(client(server.url), USER)
    assert exc.value.param == "max_tokens"


def test_completion_mode_sends_the_chatml_prompt(canned, client):
    server = canned(sse({"choices": [{"text": "yes", "finish_reason": "stop"}]}))
    assert drain(client(server.url, mode="completion"), USER, GEN).text == "yes"
    path, _, body = server.requests[0]
    assert path == "/v1/completions"
    assert body["prompt"] == render_chatml(USER)
    assert body["prompt"].endswith("<|im_start|>assistant\n")


def test_images_are_sent_as_image_url_parts(canned, client, tmp_path):
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG fake bytes")
    server = canned(sse(chat_chunk("a cat", "stop")))
    content = [
        TextItem(text="What is this?"),
        ImageItem(image=str(png)),
        ImageItem(image="https://example.com/cat.jpg"),
    ]
    drain(client(server.url), [Message(role="user", content=content)], GEN)
    parts = server.requests[0][2]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORyBmYWtlIGJ5dGVz"},
    }
    assert parts[2]["image_url"]["url"] == "https://example.com/cat.jpg"


def test_one_model_streams_from_many_threads(serve, client):
    llm = ScriptedLLM(["alpha beta gamma", "delta epsilon"], chunk_size=2)
    model = client(serve(llm).url)
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        text = drain(model, USER, GEN).text
        with lock:
            results.append(text)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results) == sorted(["alpha beta gamma", "delta epsilon"] * 4)
    assert llm.calls == 8


def test_registry_builds_the_backend(serve, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    server = serve(ScriptedLLM("via registry"))
    spec = {
        "backend": "openai",
        "model": "qwen-agent",
        "base_url": server.url,
        "mode": "completion",
        "generation": {"max_tokens": 3},
        "extra_body": {"top_k": 20},
    }
    with get_chat_model(spec) as model:
        assert isinstance(model, OpenAIChatModel)
        assert (model.mode, model.api_key, model.extra_body) == (
            "completion",
            "sk-from-env",
            {"top_k": 20},
        )
        assert drain(model, USER, GEN) == Delta("via", "length")


def test_registry_rejects_bad_options():
    with pytest.raises(ConfigError, match="needs base_url"):
        get_chat_model({"backend": "openai", "model": "m"})
    with pytest.raises(ConfigError, match="unknown option.*temprature"):
        get_chat_model({"backend": "openai", "base_url": "http://x/v1", "temprature": 1})
    with pytest.raises(ConfigError, match="http"):
        OpenAIChatModel(model="m", base_url="127.0.0.1:8000/v1")


def test_api_key_defaults(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert OpenAIChatModel(model="m", base_url="http://h/v1").api_key == "EMPTY"
    assert OpenAIChatModel(model="m", base_url="http://h/v1", api_key="k").api_key == "k"


# -- what other servers send ----------------------------------------------------------------


def test_sse_comments_blank_lines_and_split_data_are_handled(canned, client):
    body = (
        ": keep-alive comment\n\n"
        + sse(chat_chunk(role="assistant"))
        + "\n\n"
        + f"data: {json.dumps(chat_chunk('Hel'))}\n\n"
        + 'event: message\ndata: {"choices": [{"delta": \n'  # one event, two data lines
        + 'data: {"content": "lo"}, "finish_reason": null}]}\n\n'
        + sse({"choices": [], "usage": {"completion_tokens": 2}})
        + sse(chat_chunk(finish="length"), "[DONE]")
        + sse(chat_chunk("after done"))
    )
    deltas = collect(client(canned(body).url), USER)
    assert [(d.text, d.finish_reason) for d in deltas] == [
        ("Hel", None),
        ("lo", None),
        ("", "length"),
    ]


def test_stream_without_finish_reason_or_done_ends_with_stop(canned, client):
    deltas = collect(client(canned(sse(chat_chunk("partial"))).url), USER)
    assert [(d.text, d.finish_reason) for d in deltas] == [("partial", None), ("", "stop")]


def test_reasoning_content_comes_back_as_data_never_as_think_text(canned, client):
    body = sse(
        chat_chunk(reasoning_content="Let me "),
        chat_chunk(reasoning_content="think."),
        chat_chunk("Answer."),
        chat_chunk(finish="stop"),
    )
    result = drain(client(canned(body).url), USER, GEN)
    assert (result.reasoning, result.text) == ("Let me think.", "Answer.")
    assert "<think>" not in result.text


def test_an_agent_on_a_reasoning_server_gets_reasoning_events_and_the_answer(canned, client):
    from qwen_agent import Agent
    from qwen_agent.events import ReasoningDelta, TextDelta

    body = sse(
        chat_chunk(reasoning_content="Let me "),
        chat_chunk(reasoning_content="think."),
        chat_chunk("Answer."),
        chat_chunk(finish="stop"),
        "[DONE]",
    )
    agent = Agent(llm=client(canned(body).url))
    events = list(agent.run("hi"))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert (reasoning, text) == ("Let me think.", "Answer.")
    assert events[-1].message.reasoning == "Let me think."


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("data: {not json\n\n", "not JSON"),
        (sse({"error": {"message": "KV cache exhausted", "code": 500}}), "KV cache exhausted"),
        (sse({"choices": [{"delta": {"content": 5}}]}), "non-text"),
    ],
)
def test_bad_stream_data_raises_response_error(canned, client, body, match):
    with pytest.raises(BackendResponseError, match=match):
        collect(client(canned(body).url), USER)


@pytest.mark.parametrize(
    ("body", "status", "match"),
    [
        (
            '{"error": {"message": "bad key", "type": "auth"}}',
            401,
            "HTTP 401: bad key; check api_key",
        ),
        ('{"error": "model \\"qwen\\" not found"}', 404, 'HTTP 404: model "qwen" not found'),
        ('{"detail": "Not Found"}', 404, "HTTP 404: Not Found; check base_url"),
        ("upstream exploded", 502, "HTTP 502: upstream exploded"),
    ],
)
def test_error_status_carries_the_server_message(canned, client, body, status, match):
    server = canned(body, status=status, content_type="application/json")
    with pytest.raises(BackendResponseError, match=match):
        collect(client(server.url), USER)


def test_connection_lost_mid_stream_is_a_connection_error(canned, client):
    server = canned(sse(chat_chunk("half an ans")))
    server.missing = 100
    stream = client(server.url).stream(ModelRequest(messages=USER, generation=GEN))
    assert next(stream).text == "half an ans"
    with pytest.raises(BackendConnectionError, match="connection to .* failed"):
        next(stream)


# -- errors through the project's own server ------------------------------------------------


def test_connection_refused_is_a_connection_error(client):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendConnectionError, match="cannot reach .*127.0.0.1.*is the server"):
        collect(client(url), USER)


def test_read_timeout_is_a_connection_error(client):
    with socket.socket() as sock:  # accepts connections (backlog) but never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        start = time.monotonic()
        with pytest.raises(BackendConnectionError, match="timed out after 0.3s"):
            collect(client(url, timeout=0.3), USER)
        assert time.monotonic() - start < 5


def test_unknown_path_is_a_404_response_error(serve, client):
    server = serve(ScriptedLLM("x"))
    with pytest.raises(BackendResponseError, match="HTTP 404: no route POST /v1/v1/chat"):
        collect(client(server.url + "/v1"), USER)


def test_invalid_request_is_a_400_response_error(serve, client):
    llm = ScriptedLLM("x")
    server = serve(llm)
    with pytest.raises(BackendResponseError, match="HTTP 400: 'n' is not supported.*only n=1"):
        collect(client(server.url, extra_body={"n": 2}), USER)
    with pytest.raises(BackendResponseError, match="HTTP 400: max_tokens: .*greater than"):
        collect(client(server.url, extra_body={"max_tokens": -1}), USER)
    assert llm.calls == 0


class FailingLLM:
    """Yields ``before`` deltas, then raises."""

    def __init__(self, before: int) -> None:
        self.before = before

    def stream(self, request):
        for _ in range(self.before):
            yield Delta("tick ")
        raise RuntimeError("GPU on fire")


@pytest.mark.parametrize("mode", MODES)
def test_model_failure_before_output_is_a_500(serve, client, mode):
    server = serve(FailingLLM(before=0))
    with pytest.raises(BackendResponseError, match="HTTP 500: .*RuntimeError: GPU on fire"):
        collect(client(server.url, mode=mode), USER)


@pytest.mark.parametrize("mode", MODES)
def test_model_failure_mid_stream_is_reported_in_the_stream(serve, client, mode):
    server = serve(FailingLLM(before=2))
    stream = client(server.url, mode=mode).stream(ModelRequest(messages=USER, generation=GEN))
    assert next(stream).text == "tick "
    with pytest.raises(BackendResponseError, match="mid-stream: .*GPU on fire"):
        list(stream)


class EndlessLLM:
    """Streams forever until its generator is closed; records that it was closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def stream(self, request):
        try:
            while True:
                yield Delta("more ")
                time.sleep(0.001)
        finally:
            self.closed.set()


def test_closing_the_stream_early_closes_the_response(serve, client):
    llm = EndlessLLM()
    server = serve(llm)
    model = client(server.url)
    stream = model.stream(ModelRequest(messages=USER, generation=GEN))
    assert [next(stream).text for _ in range(3)] == ["more "] * 3
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 2
    assert llm.closed.wait(10), "the server kept generating for a client that left"
    # the same client still works afterwards
    llm.closed.clear()
    again = model.stream(ModelRequest(messages=USER, generation=GEN))
    assert next(again).text == "more "
    again.close()
    assert llm.closed.wait(10)


@pytest.mark.parametrize(
    ("param", "want"),
    [
        ("chat_template_kwargs", {"chat_template_kwargs": {"enable_thinking": False, "x": 1}}),
        ("enable_thinking", {"enable_thinking": False}),
        ("think", {"think": False}),
    ],
)
def test_thinking_is_sent_the_servers_way(canned, client, param, want):
    server = canned(sse(chat_chunk("ok", "stop"), "[DONE]"))
    extra = {"chat_template_kwargs": {"x": 1}} if param == "chat_template_kwargs" else None
    model = client(server.url, thinking_param=param, extra_body=extra)
    drain(model, ModelRequest(messages=USER, thinking=False))
    drain(model, ModelRequest(messages=USER))
    (_, _, first), (_, _, second) = server.requests
    assert {k: first[k] for k in want} == want
    assert all(k not in second for k in ("enable_thinking", "think"))
    assert second.get("chat_template_kwargs", {}).get("enable_thinking") is None


def test_a_server_template_that_opens_thinking_gives_a_reply_inside_reasoning(canned, client):
    """With opens_thinking (Qwen3-Thinking-2507 behind a server with no reasoning parser)
    the text starts inside the reasoning; a server that splits it off is read as before."""
    from qwen_agent.formats.hermes import HermesFormat

    server = canned(sse(chat_chunk("Sums.</think>\n\n"), chat_chunk("4", "stop"), "[DONE]"))
    out = drain(client(server.url, opens_thinking=True), USER)
    parsed = HermesFormat().parse(out.text)
    assert (parsed.reasoning, parsed.content) == ("Sums.", "4")
    split = canned(
        sse(chat_chunk(None, None, reasoning_content="Sums."), chat_chunk("4", "stop"), "[DONE]")
    )
    out = drain(client(split.url, opens_thinking=True), USER)
    assert (out.reasoning, out.text) == ("Sums.", "4")


def test_astream_and_stream_read_a_reply_the_same(canned, client):
    import asyncio

    body = sse(
        chat_chunk(reasoning_content="Hm."),
        chat_chunk("Hello "),
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "function": {"name": "f", "arguments": '{"a": 1}'},
                            }
                        ]
                    },
                    "finish_reason": None,
                }
            ]
        },
        chat_chunk(finish="tool_calls"),
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
        "[DONE]",
    )
    model = client(canned(body).url, native_tools=True)
    request = ModelRequest(messages=USER, generation=GEN)

    async def read():
        out = [d async for d in model.astream(request)]
        await model.aclose()
        return out

    sync = list(model.stream(request))
    both = asyncio.run(read())
    key = lambda ds: [(d.text, d.reasoning, d.finish_reason, d.usage, d.tool_calls) for d in ds]  # noqa: E731
    assert key(both) == key(sync)
    assert both[-1].tool_calls[0].name == "f" and both[-1].usage.completion_tokens == 4


def test_astream_maps_errors_as_stream_does(canned, client):
    import asyncio

    from qwen_agent.errors import BackendConnectionError, BackendResponseError

    async def read(model):
        return [d async for d in model.astream(ModelRequest(messages=USER, generation=GEN))]

    bad = client(canned('{"error": {"message": "nope"}}', status=500).url)
    with pytest.raises(BackendResponseError, match="nope") as caught:
        asyncio.run(read(bad))
    assert caught.value.status_code == 500
    gone = client(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(BackendConnectionError, match="cannot reach"):
        asyncio.run(read(gone))
