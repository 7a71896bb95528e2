"""``qwen-agent serve`` tried as its users try it: with the official ``openai`` client (and
raw HTTP for what the client will not send) against a real uvicorn server on 127.0.0.1,
on a scripted model and on the bundled model."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

openai = pytest.importorskip("openai", reason="the official client is in the [dev] extra")
pytest.importorskip("fastapi", reason="serve needs the [serve] extra")

from qwen_agent.config import AgentConfig  # noqa: E402
from qwen_agent.llm import Delta, ModelRequest, Usage  # noqa: E402
from qwen_agent.serving import Server  # noqa: E402
from qwen_agent.testing import ScriptedLLM  # noqa: E402

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a timezone.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


def call(name: str, **arguments) -> str:
    body = json.dumps({"name": name, "arguments": arguments})
    return f"<tool_call>\n{body}\n</tool_call>"


TWO_CALLS = call("get_weather", city="Paris") + "\n" + call("get_weather", city="Rome")
USER = [{"role": "user", "content": "What is the weather in Paris and Rome?"}]


@pytest.fixture
def serve() -> Iterator:
    """``serve(model_or_responses, **options)`` -> (server, client); stopped after the test."""
    servers: list[Server] = []

    def start(model, agents=(), client_key="unused", **options):
        if isinstance(model, (str, list)):
            model = ScriptedLLM(model)
        server = Server(model, agents=list(agents), **options).start()
        servers.append(server)
        client = openai.OpenAI(base_url=server.url, api_key=client_key, max_retries=0, timeout=60)
        server.llm = model
        return server, client

    yield start
    for server in servers:
        server.stop()


# -- chat, streaming, usage -------------------------------------------------------------------


def test_chat_answers_with_usage(serve):
    server, client = serve(["Hello there!"])
    r = client.chat.completions.create(
        model="qwen-agent", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.object == "chat.completion" and r.model == "qwen-agent"
    assert r.choices[0].message.content == "Hello there!"
    assert r.choices[0].finish_reason == "stop" and r.choices[0].message.tool_calls is None
    assert r.usage.completion_tokens == len("Hello there!")
    assert r.usage.prompt_tokens == len("hi")  # ScriptedLLM counts a character as a token
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # no tools: the messages reach the model as they are, with no system prompt added
    assert [(m.role, m.text) for m in server.llm.prompts[-1]] == [("user", "hi")]


def test_streaming_text_and_usage_chunk(serve):
    _, client = serve(["One two three four five."])
    chunks = list(
        client.chat.completions.create(
            model="qwen-agent",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "One two three four five."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text)
    plain = list(
        client.chat.completions.create(
            model="qwen-agent", messages=[{"role": "user", "content": "count"}], stream=True
        )
    )
    assert all(c.choices for c in plain) and all(c.usage is None for c in plain)


def test_default_generation_settings_are_kept_when_a_request_leaves_them_out(serve):
    """A backend's own defaults (max_tokens here) hold unless the request sets them."""
    from qwen_agent.llm import GenerationConfig

    class Defaults(ScriptedLLM):
        def stream(self, request):
            merged = request.generation.over(GenerationConfig(max_tokens=5, temperature=0.7))
            return super().stream(request.model_copy(update={"generation": merged}))

    server, client = serve(Defaults("a long answer that goes on"))
    r = client.chat.completions.create(model="qwen-agent", messages=USER)
    assert r.choices[0].message.content == "a lon" and r.choices[0].finish_reason == "length"
    assert server.llm.configs[-1].temperature == 0.7
    r = client.chat.completions.create(model="qwen-agent", messages=USER, max_tokens=8)
    assert r.choices[0].message.content == "a long a"


# -- tools ------------------------------------------------------------------------------------


def test_tool_call_round_trip(serve):
    server, client = serve([TWO_CALLS, "Sunny in Paris, rain in Rome."])
    r = client.chat.completions.create(model="qwen-agent", messages=USER, tools=[WEATHER])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    # the model saw the tools in Qwen's hermes system prompt
    system = server.llm.prompts[-1][0].text
    assert "<tools>" in system and '"name": "get_weather"' in system
    history = [
        *USER,
        choice.message.model_dump(exclude_none=True),
        *(
            {"role": "tool", "tool_call_id": c.id, "content": f"{city}: sunny"}
            for c, city in zip(calls, ["Paris", "Rome"], strict=True)
        ),
    ]
    r = client.chat.completions.create(model="qwen-agent", messages=history, tools=[WEATHER])
    assert r.choices[0].message.content == "Sunny in Paris, rain in Rome."
    prompt = server.llm.prompts[-1]
    # the earlier calls are rendered as the model wrote them, the results as tool_response
    assert prompt[-2].role == "assistant" and '"city": "Rome"' in prompt[-2].text
    assert prompt[-1].text == (
        "<tool_response>\nParis: sunny\n</tool_response>\n<tool_response>\nRome: sunny\n"
        "</tool_response>"
    )


def _accumulate(chunks) -> tuple[str, dict[int, dict[str, str]], str | None]:
    """What a client does with tool-call deltas: join them by index."""
    text, calls, finish = "", {}, None
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            if tc.function:
                slot["name"] += tc.function.name or ""
                slot["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    return text, calls, finish


def test_streamed_tool_call_deltas_and_parallel_calls(serve):
    server, client = serve(
        [TWO_CALLS],
    )
    server.llm.chunk_size = 3
    stream = client.chat.completions.create(
        model="qwen-agent", messages=USER, tools=[WEATHER, TIME], stream=True
    )
    chunks = list(stream)
    text, calls, finish = _accumulate(chunks)
    assert finish == "tool_calls" and text == ""
    assert sorted(calls) == [0, 1]
    # OpenAI's shape: id and name first, with empty arguments, then the arguments
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    first = [p for p in pieces if p.index == 0]
    assert first[0].id and first[0].function.name == "get_weather"
    assert first[0].function.arguments == ""
    assert all(p.id is None and p.function.name is None for p in first[1:])
    # once the call parsed: its arguments as canonical JSON
    assert [p.function.arguments for p in first[1:]] == ['{"city": "Paris"}']
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome"}),
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())


CALL_F = call("f", a=1)
HOSTILE_OUTPUTS = {
    # a call that fails after its head: it must not appear, nor share an index
    "bad_then_good": '<tool_call>\n{"name": "f", "arguments": {"a": nope}}\n</tool_call>\n'
    + call("g", b=2),
    "json5": "<tool_call>\n{\"name\": \"f\", \"arguments\": {'a': 'x', 'b': 2,}}\n</tool_call>",
    "duplicate_name_key": '<tool_call>\n{"name":"f","arguments":{"a":1},"name":"g"}\n</tool_call>',
    "array_arguments": '<tool_call>\n{"name": "f", "arguments": [1, 2]}\n</tool_call>\n'
    + call("g", b=3),
    "nan": '<tool_call>\n{"name": "f", "arguments": {"a": NaN}}\n</tool_call>',
    "deep": '<tool_call>\n{"name":"f","arguments":{"a":'
    + "[" * 3000
    + "]" * 3000
    + "}}\n</tool_call>",
    "surrogate": '<tool_call>\n{"name": "f", "arguments": {"a": "\\ud800"}}\n</tool_call>',
    "back_to_back": CALL_F + call("g", b="}{"),
}
F_G = [
    {
        "type": "function",
        "function": {"name": n, "parameters": {"type": "object", "properties": {}}},
    }
    for n in ("f", "g")
]


@pytest.mark.parametrize("chunk", [1, 4, 5, 64])
@pytest.mark.parametrize("case", sorted(HOSTILE_OUTPUTS))
def test_streamed_and_whole_replies_hold_the_same_calls_whatever_the_model_writes(
    serve, case, chunk
):
    """The red team's cases: malformed calls, JSON5, a duplicate key, NaN, nesting 3000
    deep, an escaped lone surrogate. Streamed or not, the same calls (none that did not
    parse), the same canonical JSON arguments, and never a 500 or a dropped connection."""
    server, client = serve([HOSTILE_OUTPUTS[case]])
    server.llm.chunk_size = chunk
    whole = client.chat.completions.create(model="qwen-agent", messages=USER, tools=F_G)
    want = [
        (c.function.name, json.loads(c.function.arguments))
        for c in whole.choices[0].message.tool_calls or []
    ]
    text, calls, _ = _accumulate(
        client.chat.completions.create(model="qwen-agent", messages=USER, tools=F_G, stream=True)
    )
    got = [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())]
    assert got == want, (case, calls)
    assert text == (whole.choices[0].message.content or "")


def test_a_model_that_runs_past_max_tokens_mid_call_streams_no_half_call(serve):
    server, client = serve([CALL_F + "\n" + '<tool_call>\n{"name": "g", "arguments": {"b": "long'])
    r = client.chat.completions.create(model="qwen-agent", messages=USER, tools=F_G, max_tokens=70)
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["f"]
    _, calls, _ = _accumulate(
        client.chat.completions.create(
            model="qwen-agent", messages=USER, tools=F_G, max_tokens=70, stream=True
        )
    )
    assert [c["name"] for c in calls.values()] == ["f"]


def test_arguments_nested_too_deep_in_the_history_are_a_400(serve):
    _, client = serve(["x"])
    deep = "[" * 5000 + "]" * 5000
    for arguments in (deep, '{"a": ' + deep + "}", '{"a": NaN}'):
        history = [
            *USER,
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "1",
                        "type": "function",
                        "function": {"name": "f", "arguments": arguments},
                    }
                ],
            },
        ]
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="qwen-agent", messages=history)
        assert exc.value.param == "messages[1].tool_calls"


def test_parallel_tool_calls_false_keeps_the_first_call(serve):
    server, client = serve([TWO_CALLS])
    r = client.chat.completions.create(
        model="qwen-agent", messages=USER, tools=[WEATHER], parallel_tool_calls=False
    )
    assert [json.loads(c.function.arguments) for c in r.choices[0].message.tool_calls] == [
        {"city": "Paris"}
    ]
    assert "</tool_call>" in server.llm.configs[-1].stop  # generation stops after one call


def test_tool_choice_none_required_and_named(serve):
    server, client = serve(
        [
            TWO_CALLS,
            'get_time", "arguments": {"tz": "CET"}}\n</tool_call>',
            '{"city": "Oslo"}}\n</tool_call>',
        ]
    )
    r = client.chat.completions.create(
        model="qwen-agent", messages=USER, tools=[WEATHER], tool_choice="none"
    )
    assert r.choices[0].message.tool_calls is None
    # no call was allowed: none comes back, and its markup is not shown as content
    assert "<tool_call>" not in (r.choices[0].message.content or "")
    assert "get_weather" not in (r.choices[0].message.content or "")
    assert "<tool_call>" in server.llm.configs[-1].stop  # the model stops where one begins
    assert "<tools>" not in server.llm.prompts[-1][0].text

    # required: the reply begins with a call's head; the model writes the rest
    r = client.chat.completions.create(
        model="qwen-agent",
        messages=USER,
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    assert server.llm.prompts[-1][-1].role == "assistant"
    assert server.llm.prompts[-1][-1].text == '<tool_call>\n{"name": "'
    assert server.llm.requests[-1].tool_choice == "required"
    (forced,) = r.choices[0].message.tool_calls  # the prefill and the model's rest
    assert (forced.function.name, json.loads(forced.function.arguments)) == (
        "get_time",
        {"tz": "CET"},
    )

    r = client.chat.completions.create(
        model="qwen-agent",
        messages=USER,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    assert server.llm.prompts[-1][-1].text == ('<tool_call>\n{"name": "get_weather", "arguments": ')
    (only,) = r.choices[0].message.tool_calls
    assert (only.function.name, json.loads(only.function.arguments)) == (
        "get_weather",
        {"city": "Oslo"},
    )
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="qwen-agent",
            messages=USER,
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )
    assert exc.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="qwen-agent", messages=USER, tool_choice="required")


def test_a_react_model_is_served_with_format_react(serve):
    """--format react: the tools are described the ReAct way, an Action becomes a tool
    call, and its result goes back as an Observation the model continues from."""
    react = 'Thought: I should look it up.\nAction: get_weather\nAction Input: {"city": "Oslo"}\n'
    server, client = serve(
        [react, "Thought: I know it.\nFinal Answer: Cold in Oslo."], format="react"
    )
    r = client.chat.completions.create(model="qwen-agent", messages=USER, tools=[WEATHER])
    (got,) = r.choices[0].message.tool_calls
    assert (got.function.name, json.loads(got.function.arguments)) == (
        "get_weather",
        {"city": "Oslo"},
    )
    assert r.choices[0].message.model_extra["reasoning_content"] == "I should look it up."
    assert (
        "Action: the action to take, should be one of [get_weather]"
        in server.llm.prompts[-1][0].text
    )
    assert "Observation:" in server.llm.configs[-1].stop
    history = [
        *USER,
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": got.id, "content": "cold"},
    ]
    r = client.chat.completions.create(model="qwen-agent", messages=history, tools=[WEATHER])
    assert r.choices[0].message.content == "Cold in Oslo."
    trace = server.llm.prompts[-1][-1]
    assert trace.role == "assistant" and trace.text.endswith("Observation: cold\n")


def test_response_format_reaches_the_model_as_a_constraint(serve):
    server, client = serve(['{"ok": true}'])
    r = client.chat.completions.create(
        model="qwen-agent", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(r.choices[0].message.content) == {"ok": True}
    assert server.llm.requests[-1].response_format.type == "json_object"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    client.chat.completions.create(
        model="qwen-agent",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    )
    assert server.llm.requests[-1].response_format.json_schema == schema


def test_completions_endpoint(serve):
    server, client = serve(["forty-two"])
    r = client.completions.create(model="qwen-agent", prompt="The answer is", max_tokens=20)
    assert r.choices[0].text == "forty-two" and r.usage.completion_tokens == 9
    chunks = list(client.completions.create(model="qwen-agent", prompt="x", stream=True))
    assert "".join(c.choices[0].text for c in chunks) == "forty-two"


# -- errors: the right status, OpenAI's body, the client's class ------------------------------


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"n": 2}, "n"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 1.0}, "frequency_penalty"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"extra_body": {"min_tokens": 3}}, "min_tokens"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_unsupported_or_invalid_parameters_are_400s_that_name_them(serve, extra, param):
    server, client = serve(["x"])
    extra = dict(extra)
    kwargs = {"extra_body": extra.pop("extra_body")} if "extra_body" in extra else {}
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="qwen-agent", messages=USER, **extra, **kwargs)
    assert exc.value.param == param, exc.value.body
    body = exc.value.body
    assert set(body) >= {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error" and not isinstance(body["code"], int)
    assert server.llm.calls == 0


def test_unknown_models_are_404s(serve):
    _, client = serve(["x"])
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert exc.value.body["code"] == "model_not_found" and exc.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    assert [m.id for m in client.models.list()] == ["qwen-agent"]
    assert client.models.retrieve("qwen-agent").id == "qwen-agent"


def test_malformed_bodies_and_floods_of_nesting_are_400s_and_the_server_lives(serve):
    server, _ = serve(["x"], max_body_bytes=256 * 1024)
    url = server.url + "/chat/completions"
    with httpx.Client(timeout=30) as http:
        for body in [
            b"[" * 100_000,
            b"{" * 50_000,
            b"{not json",
            b"[1, 2]",
            "\ud800".encode("utf-8", "surrogatepass"),
        ]:
            r = http.post(url, content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, (body[:20], r.text)
            assert r.json()["error"]["type"] == "invalid_request_error"
        deep = {"model": "qwen-agent", "messages": USER, "metadata": None}
        nested: object = "x"
        for _ in range(200):
            nested = [nested]
        deep["stop"] = nested
        assert http.post(url, json=deep).status_code == 400
        r = http.post(url, content=b" " * (257 * 1024))
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        ok = http.post(url, json={"model": "qwen-agent", "messages": USER})
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "x"
    assert server.llm.calls == 1


def test_a_body_that_trickles_in_is_cut_off(serve):
    import socket

    server, _ = serve(["x"], body_timeout=1.0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        start = time.monotonic()
        reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert b"request_timeout" in reply and time.monotonic() - start < 8
    assert server.llm.calls == 0


def test_api_key_is_required_when_set(serve):
    server, client = serve(["ok"], client_key="sk-right", api_key="sk-right")
    assert client.chat.completions.create(model="qwen-agent", messages=USER).choices
    wrong = openai.OpenAI(base_url=server.url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="qwen-agent", messages=USER)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert httpx.get(server.url.removesuffix("/v1") + "/metrics").status_code == 401
    assert httpx.get(server.url.removesuffix("/v1") + "/health").json() == {"status": "ok"}


# -- concurrency, the queue, disconnects ------------------------------------------------------


class Held:
    """A model whose generations wait for ``release``; records starts and closes."""

    def __init__(self, max_concurrency: int | None = None) -> None:
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency
        self.release = threading.Event()
        self.started: list[str] = []
        self.closed = threading.Semaphore(0)
        self._lock = threading.Lock()

    def stream(self, request: ModelRequest) -> Iterator[Delta]:
        with self._lock:
            self.started.append(request.messages[-1].text)
        try:
            yield Delta("waiting ")
            while not self.release.wait(0.01):
                yield Delta("")
            yield Delta("done", "stop", Usage(1, 2))
        finally:
            self.closed.release()


def test_requests_beyond_the_queue_get_429_with_retry_after_and_a_long_wait_503(serve):
    held = Held(max_concurrency=1)
    server, client = serve(held, max_queue=1, queue_timeout=1.0)
    first = threading.Thread(
        target=lambda: client.chat.completions.create(model="qwen-agent", messages=USER)
    )
    first.start()
    deadline = time.monotonic() + 10
    while not held.started and time.monotonic() < deadline:
        time.sleep(0.01)
    results: list[BaseException] = []

    def waiter():
        try:
            client.chat.completions.create(model="qwen-agent", messages=USER)
        except openai.APIStatusError as exc:
            results.append(exc)

    second = threading.Thread(target=waiter)
    second.start()
    time.sleep(0.3)  # the second one is queued now
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="qwen-agent", messages=USER)
    assert exc.value.response.headers["retry-after"] == "1"
    second.join(10)
    assert isinstance(results[0], openai.InternalServerError)
    assert results[0].status_code == 503 and results[0].response.headers["retry-after"]
    held.release.set()
    first.join(10)
    metrics = httpx.get(server.url.removesuffix("/v1") + "/metrics").text
    assert 'qwen_agent_requests_total{endpoint="/v1/chat/completions",status="429"} 1.0' in metrics
    assert "qwen_agent_waiting" in metrics and "qwen_agent_queue_wait_seconds" in metrics


def test_one_at_a_time_backends_are_served_in_arrival_order(serve):
    held = Held(max_concurrency=1)
    server, client = serve(held, max_queue=16)
    threads = []
    for i in range(5):
        msgs = [{"role": "user", "content": f"r{i}"}]
        t = threading.Thread(
            target=lambda m=msgs: client.chat.completions.create(model="qwen-agent", messages=m)
        )
        t.start()
        threads.append(t)
        time.sleep(0.15)  # arrive in order
    assert held.started == ["r0"]  # the others wait for the one slot
    held.release.set()
    for t in threads:
        t.join(20)
    assert held.started == ["r0", "r1", "r2", "r3", "r4"]


def test_concurrent_requests_run_at_once_on_a_concurrent_backend(serve):
    barrier = threading.Barrier(8, timeout=20)

    class Together(ScriptedLLM):
        def stream(self, request):
            barrier.wait()  # breaks unless 8 generations are in flight together
            return super().stream(request)

    _, client = serve(Together(["together"]))
    out: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: out.append(
                client.chat.completions.create(model="qwen-agent", messages=USER)
                .choices[0]
                .message.content
            )
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert out == ["together"] * 8


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_stops_its_generation(serve, stream):
    held = Held(max_concurrency=1)
    server, _ = serve(held)
    body = {"model": "qwen-agent", "messages": USER, "stream": stream}
    with httpx.Client(timeout=httpx.Timeout(30, read=0.5)) as http:
        with pytest.raises(httpx.ReadTimeout):
            r = http.post(server.url + "/chat/completions", json=body)
            if stream:  # read past the first chunk, then wait
                for _ in r.iter_bytes():
                    pass
    assert held.closed.acquire(timeout=10), "the generation went on after the client left"
    # the slot is free again: the next request starts at once
    held.release.set()
    r = httpx.post(server.url + "/chat/completions", json=body | {"stream": False}, timeout=10)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "waiting done"


def test_queued_clients_that_leave_give_their_place_back(serve):
    """A race of the queue: clients that give up while waiting (and one that gives up just
    as its turn comes) leave the gate's count right, so later requests are served."""
    held = Held(max_concurrency=1)
    server, _ = serve(held, max_queue=16)
    url = server.url + "/chat/completions"
    body = {"model": "qwen-agent", "messages": USER}
    first = threading.Thread(target=lambda: httpx.post(url, json=body, timeout=30))
    first.start()
    deadline = time.monotonic() + 10
    while not held.started and time.monotonic() < deadline:
        time.sleep(0.01)

    outcomes: list[str] = []
    host, port = server.url.split("//")[1].split("/")[0].rsplit(":", 1)
    payload = json.dumps(body).encode()
    raw = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload

    def leaver():
        # a client that sends its request, waits 0.3 s in the queue and hangs up
        try:
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(raw)
                time.sleep(0.3)
            outcomes.append("left")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes.append(repr(exc))

    leavers = [threading.Thread(target=leaver) for _ in range(6)]
    for t in leavers:
        t.start()
    time.sleep(0.32)
    held.release.set()  # the slot passes on while they are leaving (or just left)
    for t in leavers:
        t.join(10)
    first.join(10)
    assert outcomes == ["left"] * 6, outcomes
    time.sleep(0.5)
    gate = server.app.state.gates["qwen-agent"]
    assert gate.running == 0 and gate.waiting == 0, (gate.running, gate.waiting)
    r = httpx.post(url, json=body, timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_clients_that_leave_while_queued_free_their_place_at_once(serve, stream):
    """A client gone from the queue is out of it before the slot frees, and its generation
    never starts: a live request behind it is not refused for a full queue."""
    held = Held(max_concurrency=1)
    server, _ = serve(held, max_queue=2)
    url = server.url + "/chat/completions"
    running = threading.Thread(
        target=lambda: httpx.post(url, json={"model": "qwen-agent", "messages": USER}, timeout=30)
    )
    running.start()
    deadline = time.monotonic() + 10
    while not held.started and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(2):
        body = {"model": "qwen-agent", "messages": [{"role": "user", "content": f"gone{i}"}]}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url, json=body | {"stream": stream}, timeout=httpx.Timeout(10, read=0.3))
    gate = server.app.state.gates["qwen-agent"]
    deadline = time.monotonic() + 5
    while gate.waiting and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (gate.running, gate.waiting) == (1, 0)
    live = {"model": "qwen-agent", "messages": [{"role": "user", "content": "live"}]}
    result: list[int] = []
    t = threading.Thread(
        target=lambda: result.append(httpx.post(url, json=live, timeout=30).status_code)
    )
    t.start()
    time.sleep(0.3)
    held.release.set()
    running.join(10)
    t.join(20)
    assert result == [200]
    assert held.started[0] == USER[0]["content"] and "live" in held.started
    assert not any(s.startswith("gone") for s in held.started), held.started


def test_a_flood_of_connections_past_the_limit_gets_503_and_the_server_recovers(serve):
    import socket

    server, _ = serve(["ok"], max_connections=8)
    socks = []
    try:
        for _ in range(40):  # idle connections, as a slow or hostile client holds them
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.3)
        r = httpx.post(
            server.url + "/chat/completions",
            json={"model": "qwen-agent", "messages": USER},
            timeout=10,
        )
        assert r.status_code == 503
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.5)
    r = httpx.post(
        server.url + "/chat/completions", json={"model": "qwen-agent", "messages": USER}, timeout=10
    )
    assert r.status_code == 200


# -- agents over HTTP -------------------------------------------------------------------------


def test_an_agent_runs_its_tools_server_side_and_streams_its_events(serve):
    llm = ScriptedLLM([call("multiply", a=12, b=34), "12 * 34 = 408"])
    agent = AgentConfig(name="calc", tools=["tests._tools_fixture:multiply"])
    server, client = serve(llm, agents=[agent])
    assert "agent:calc" in [m.id for m in client.models.list()]
    chunks = list(
        client.chat.completions.create(
            model="agent:calc",
            messages=[{"role": "user", "content": "What is 12 * 34?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    events = [
        c.choices[0].delta.model_extra.get("agent_event")
        for c in chunks
        if c.choices and c.choices[0].delta.model_extra
    ]
    events = [e for e in events if e]
    assert [e["type"] for e in events] == ["tool_call", "tool_result"]
    assert (
        json.loads(events[0]["arguments"]) == {"a": 12, "b": 34} and events[1]["content"] == "408"
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "12 * 34 = 408"
    assert chunks[-1].usage.completion_tokens > 0
    # the tool's result went back to the model, on the server
    assert "<tool_response>\n408\n</tool_response>" in llm.prompts[-1][-1].text
    r = client.chat.completions.create(
        model="agent:calc", messages=[{"role": "user", "content": "again?"}]
    )
    assert r.choices[0].message.content == "12 * 34 = 408"
    assert [e["type"] for e in r.choices[0].message.model_extra["agent_events"]] == [
        "tool_call",
        "tool_result",
    ]
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="agent:calc", messages=USER, tools=[WEATHER])
    assert exc.value.param == "tools"


def test_an_agents_tools_do_not_hold_the_model_while_they_work(serve, monkeypatch):
    """The transformers backend runs one generation at a time; an agent run holds that slot
    for its model calls only, so a slow tool does not stall other users."""
    import tests._tools_fixture as fixture
    from qwen_agent.tool import tool

    busy, free = threading.Event(), threading.Event()

    @tool
    def slow(x: int) -> int:
        """Takes its time."""
        busy.set()
        free.wait(20)
        return x

    monkeypatch.setattr(fixture, "slow", slow, raising=False)
    llm = ScriptedLLM([call("slow", x=1), "done"])
    llm.max_concurrency = 1
    server, client = serve(llm, agents=[AgentConfig(name="s", tools=["tests._tools_fixture:slow"])])
    out: list[str] = []
    t = threading.Thread(
        target=lambda: out.append(
            client.chat.completions.create(model="agent:s", messages=USER)
            .choices[0]
            .message.content
        )
    )
    t.start()
    assert busy.wait(20)
    llm.responses = ["meanwhile"]
    llm._next = 0
    r = client.chat.completions.create(model="qwen-agent", messages=USER, timeout=10)
    assert r.choices[0].message.content == "meanwhile"
    llm.responses = ["done"]
    free.set()
    t.join(20)
    assert out == ["done"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_an_agent_run_cancels_its_tool_call(serve, monkeypatch, stream):
    """With a conversation id too: the run is cancelled when its client leaves, and the
    tool call it waits on with it, not when the tool's deadline passes."""
    import asyncio

    import tests._tools_fixture as fixture
    from qwen_agent.tool import tool

    started, cancelled = threading.Event(), threading.Event()

    @tool(timeout=600)
    async def hang(x: int) -> int:
        """Waits until cancelled."""
        started.set()
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    monkeypatch.setattr(fixture, "hang", hang, raising=False)
    llm = ScriptedLLM([call("hang", x=1), "done"])
    server, _ = serve(llm, agents=[AgentConfig(name="h", tools=["tests._tools_fixture:hang"])])
    body = {
        "model": "agent:h",
        "messages": USER,
        "stream": stream,
        "metadata": {"conversation_id": "c-1"},
    }
    with httpx.Client(timeout=httpx.Timeout(30, read=1.0)) as http:
        with pytest.raises(httpx.ReadTimeout):
            with http.stream("POST", server.url + "/chat/completions", json=body) as r:
                for _ in r.iter_bytes():
                    pass
    assert started.is_set()
    assert cancelled.wait(10), "the tool call went on after its client left"


def test_agent_code_interpreter_sessions_follow_the_conversation_id(serve):
    from tests.sandbox_helpers import sandbox_skip_reason

    if sandbox_skip_reason():
        pytest.skip(sandbox_skip_reason())
    llm = ScriptedLLM(
        [
            call("code_interpreter", code="x = 41"),
            "set",
            call("code_interpreter", code="print(x + 1)"),
            "printed",
            call("code_interpreter", code="print(x + 1)"),
            "other",
        ]
    )
    agent = AgentConfig(name="py", tools=["code_interpreter"])
    _, client = serve(llm, agents=[agent])

    def run(conversation: str) -> list[dict]:
        r = client.chat.completions.create(
            model="agent:py", messages=USER, metadata={"conversation_id": conversation}
        )
        return r.choices[0].message.model_extra["agent_events"]

    first = "conv-" + "a" * 32
    run(first)
    assert run(first)[1]["content"].strip() == "42"  # the same kernel: x is still there
    other = run("conv-" + "b" * 32)[1]
    assert "NameError" in other["content"]  # another conversation never sees it


def test_a_conversation_belongs_to_the_key_that_opened_it(serve):
    from tests.sandbox_helpers import sandbox_skip_reason

    if sandbox_skip_reason():
        pytest.skip(sandbox_skip_reason())
    llm = ScriptedLLM(
        [
            call("code_interpreter", code="secret = 'alice-only'"),
            "set",
            call("code_interpreter", code="print(secret)"),
            "tried",
            call("code_interpreter", code="print(secret)"),
            "mine",
        ]
    )
    agent = AgentConfig(name="py", tools=["code_interpreter"])
    server, alice = serve(llm, agents=[agent], client_key="alice", api_key=["alice", "bob"])
    bob = openai.OpenAI(base_url=server.url, api_key="bob", max_retries=0, timeout=60)

    def run(client, conversation: str) -> list[dict]:
        r = client.chat.completions.create(
            model="agent:py", messages=USER, metadata={"conversation_id": conversation}
        )
        return r.choices[0].message.model_extra["agent_events"]

    run(alice, "shared-name")
    seen_by_bob = run(bob, "shared-name")[1]["content"]
    assert "alice-only" not in seen_by_bob and "NameError" in seen_by_bob
    assert run(alice, "shared-name")[1]["content"].strip() == "alice-only"


@pytest.mark.parametrize(
    "bad", ["", "a" * 129, "a\x00b", "x" * 100_000, "../../etc", "with space", "émoji😀"]
)
def test_bad_conversation_ids_are_400s(serve, bad):
    agent = AgentConfig(name="plain", tools=[])
    _, client = serve(["never"], agents=[agent])
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="agent:plain", messages=USER, metadata={"conversation_id": bad}
        )
    assert "conversation_id" in str(exc.value)


def test_one_key_over_its_share_of_conversations_is_429_and_others_go_on(serve):
    agent = AgentConfig(name="plain", tools=[])
    server, greedy = serve(
        ["ok"] * 20,
        agents=[agent],
        client_key="greedy",
        api_key=["greedy", "polite"],
        max_conversations_per_key=3,
    )
    polite = openai.OpenAI(base_url=server.url, api_key="polite", max_retries=0, timeout=60)

    def ask(client, conversation):
        return client.chat.completions.create(
            model="agent:plain", messages=USER, metadata={"conversation_id": conversation}
        )

    for i in range(3):
        ask(greedy, f"c{i}")
    with pytest.raises(openai.RateLimitError) as exc:
        ask(greedy, "c3")
    assert "open conversations" in str(exc.value)
    assert exc.value.response.headers.get("retry-after")
    ask(greedy, "c1")  # its own open ones still work
    for i in range(3):  # another key is not locked out
        assert ask(polite, f"c{i}").choices[0].message.content == "ok"


def test_tools_without_conversation_state_are_made_once_per_served_agent(serve):
    from tests._tools_fixture import Counted, PerConversation

    Counted.made = Counted.closed = PerConversation.made = PerConversation.closed = 0
    both = "\n".join([call("counted"), call("per_conversation")])
    llm = ScriptedLLM([both, "a", both, "b", both, "c"])
    agent = AgentConfig(
        name="t", tools=["tests._tools_fixture:Counted", "tests._tools_fixture:PerConversation"]
    )
    server, client = serve(llm, agents=[agent])
    made_at_start = Counted.made
    for conversation in ("one", "two", None):
        extra = {"metadata": {"conversation_id": conversation}} if conversation else {}
        client.chat.completions.create(model="agent:t", messages=USER, **extra)
    assert Counted.made == made_at_start == 1  # built when the server started, then lent
    assert Counted.closed == 0  # a request's agent does not close what it borrowed
    assert PerConversation.made >= 3  # one per conversation
    server.stop()
    assert Counted.closed == 1  # the server releases it when it stops


def test_a_non_streamed_client_that_leaves_mid_tool_frees_its_kernel_at_once(serve):
    from tests.sandbox_helpers import sandbox_skip_reason

    if sandbox_skip_reason():
        pytest.skip(sandbox_skip_reason())
    from qwen_agent.tools.code_interpreter import default_pool

    llm = ScriptedLLM([call("code_interpreter", code="import time; time.sleep(60)"), "slept"])
    server, _ = serve(llm, agents=[AgentConfig(name="py", tools=["code_interpreter"])])
    pool = default_pool()
    before = set(pool.sessions())
    body = {"model": "agent:py", "messages": USER}
    with pytest.raises(httpx.ReadTimeout):
        with httpx.Client(timeout=httpx.Timeout(30, read=4)) as http:
            with http.stream("POST", server.url + "/chat/completions", json=body) as r:
                r.read()
    deadline = time.monotonic() + 15  # well before the 60 s the code would sleep
    while set(pool.sessions()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(pool.sessions()) - before  # the run's own session is closed


# -- the bundled model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    """The tiny bundled model: these check the server's mechanics on a real local model
    (its 1,024-token window makes the overflow case cheap)."""
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    from qwen_agent.backends.transformers import TransformersChatModel

    return TransformersChatModel("qwen-tiny-agent")


def test_bundled_model_with_tool_choice_none_answers_without_call_markup(serve, bundled):
    server, client = serve(bundled)
    for stream in (False, True):
        r = client.chat.completions.create(
            model="qwen-agent",
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=[WEATHER, TIME],
            tool_choice="none",
            max_tokens=40,
            stream=stream,
        )
        if stream:
            content, calls, _ = _accumulate(r)
        else:
            content, calls = r.choices[0].message.content or "", r.choices[0].message.tool_calls
        assert not calls
        assert "<tool_call>" not in content and "</tool_call>" not in content


def test_bundled_model_forced_tool_call_and_json_schema_over_http(serve, bundled):
    server, client = serve(bundled)
    r = client.chat.completions.create(
        model="qwen-agent",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=40,
    )
    (only,) = r.choices[0].message.tool_calls
    assert only.function.name == "get_weather"
    assert set(json.loads(only.function.arguments)) == {"city"}  # the guard's schema holds
    assert r.usage.prompt_tokens > 50 and r.usage.completion_tokens > 0
    stream = client.chat.completions.create(
        model="qwen-agent",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER, TIME],
        tool_choice="required",
        max_tokens=40,
        stream=True,
    )
    _, calls, finish = _accumulate(stream)
    assert finish == "tool_calls" and calls[0]["name"] in ("get_weather", "get_time")
    assert isinstance(json.loads(calls[0]["arguments"]), dict)
    schema = {
        "type": "object",
        "properties": {"sunny": {"type": "boolean"}, "unit": {"enum": ["C", "F"]}},
        "required": ["sunny", "unit"],
        "additionalProperties": False,
    }
    r = client.chat.completions.create(
        model="qwen-agent",
        messages=[{"role": "user", "content": "Is it sunny? Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
        max_tokens=40,
    )
    answer = json.loads(r.choices[0].message.content)
    assert set(answer) == {"sunny", "unit"} and isinstance(answer["sunny"], bool)


def test_bundled_model_context_errors_are_400s(serve, bundled):
    server, client = serve(bundled)
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="qwen-agent", messages=[{"role": "user", "content": "word " * 3000}]
        )
    assert exc.value.code == "context_length_exceeded" and exc.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="qwen-agent", messages=USER, max_tokens=100_000)
    assert exc.value.code == "context_length_exceeded" and exc.value.param == "max_tokens"
    r = httpx.post(
        server.url.removesuffix("/v1") + "/tokenize",
        json={"model": "qwen-agent", "prompt": "hello world"},
    )
    assert r.json()["count"] == len(bundled._encode("hello world"))
    assert r.json()["max_model_len"] == bundled.max_context


# -- fuzzing the request body -------------------------------------------------------------------


def _bodies():
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.text(max_size=20),
    )
    anything = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
    role = st.sampled_from(["system", "developer", "user", "assistant", "tool", "robot", 3])
    content = st.one_of(
        st.text(max_size=40),
        st.none(),
        st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "image_url", "audio"])},
                optional={"text": anything, "image_url": anything},
            ),
            max_size=3,
        ),
        anything,
    )
    message = st.fixed_dictionaries(
        {"role": role},
        optional={
            "content": content,
            "tool_calls": anything,
            "tool_call_id": anything,
            "name": anything,
        },
    )
    tool = st.one_of(
        st.just(WEATHER),
        st.fixed_dictionaries({"type": anything, "function": anything}),
        anything,
    )
    fields = {
        "model": st.one_of(st.just("qwen-agent"), st.text(max_size=10), anything),
        "messages": st.one_of(st.lists(message, max_size=4), anything),
        "tools": st.one_of(st.lists(tool, max_size=3), anything),
        "tool_choice": st.one_of(
            st.sampled_from(["auto", "none", "required", "nope"]),
            st.just({"type": "function", "function": {"name": "get_weather"}}),
            anything,
        ),
        "stream": st.one_of(st.booleans(), anything),
        "stream_options": anything,
        "max_tokens": st.one_of(st.integers(-5, 10**9), anything),
        "temperature": anything,
        "top_p": anything,
        "stop": anything,
        "response_format": st.one_of(
            st.sampled_from([{"type": "json_object"}, {"type": "text"}]), anything
        ),
        "parallel_tool_calls": anything,
        "n": anything,
        "logprobs": anything,
        "seed": anything,
        "metadata": anything,
    }
    wild = st.fixed_dictionaries({}, optional=fields)
    # mostly valid: a real request with some of the fields above on top
    valid = st.fixed_dictionaries(
        {
            "model": st.just("qwen-agent"),
            "messages": st.lists(
                st.fixed_dictionaries({"role": st.just("user"), "content": st.text(max_size=30)}),
                min_size=1,
                max_size=3,
            ),
        },
        optional={k: v for k, v in fields.items() if k not in ("model", "messages")},
    )
    return st.one_of(wild, valid)


def test_fuzzed_request_bodies_never_get_a_500_or_a_dropped_connection(serve):
    from hypothesis import HealthCheck, example, given, settings

    llm = ScriptedLLM([TWO_CALLS, "plain text", '{"a": 1}'])
    server, _ = serve(llm)
    http = httpx.Client(timeout=30)
    seen: set[int] = set()

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=_bodies())
    @example(body={"model": "qwen-agent", "messages": USER, "tools": [WEATHER], "stream": True})
    def check(body):
        raw = json.dumps(body, allow_nan=True)
        for path in ("/chat/completions", "/completions"):
            r = http.post(
                server.url + path, content=raw, headers={"content-type": "application/json"}
            )
            seen.add(r.status_code)
            assert r.status_code in (200, 400, 404), (path, raw, r.text)
            if r.status_code != 200:
                error = r.json()["error"]
                assert isinstance(error["message"], str) and error["type"]
            elif body.get("stream") is True:
                assert r.text.rstrip().endswith("data: [DONE]"), r.text[-200:]
            else:
                assert r.json()["usage"]["total_tokens"] >= 0

    try:
        check()
    finally:
        http.close()
    assert {200, 400} <= seen  # the strategy reaches both the model and the validation


def test_serving_a_transformers_model_keeps_its_own_generation_defaults(serve, bundled):
    """The server sets no option the request left out: the backend's max_tokens holds."""
    from qwen_agent.backends.transformers import TransformersChatModel
    from qwen_agent.llm import GenerationConfig

    short = TransformersChatModel("qwen-tiny-agent", generation=GenerationConfig(max_tokens=5))
    _, client = serve(short)
    r = client.chat.completions.create(
        model="qwen-agent", messages=[{"role": "user", "content": "Tell me a long story."}]
    )
    assert r.usage.completion_tokens <= 5
    r = client.chat.completions.create(
        model="qwen-agent",
        messages=[{"role": "user", "content": "Tell me a long story."}],
        max_tokens=9,
    )
    assert 5 < r.usage.completion_tokens <= 9 or r.choices[0].finish_reason == "stop"
