"""The async core: many runs on one event loop, cancellation that stops what a run started,
upstream errors that keep their status through the server, and one turn pipeline for the
agent and the server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator

import openai
import pytest

from qwen_agent import Agent, tool
from qwen_agent.backends.openai import OpenAIChatModel
from qwen_agent.errors import BackendTimeoutError, RateLimitError
from qwen_agent.events import FinalEvent, ToolCallEvent, ToolResultEvent
from qwen_agent.formats import get_format
from qwen_agent.llm import Delta, ModelRequest, Usage, adrain
from qwen_agent.messages import ToolCall
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM
from qwen_agent.tool import ToolSpec
from tests.test_openai_backend import _Canned

H = get_format("hermes")


class AsyncScripted:
    """An async-only model (no sync ``stream``): the first turn of a run calls ``lookup``
    for the city named in the question, the next answers with the tool's result. Each
    delta waits a little on the loop, so runs interleave."""

    def __init__(self) -> None:
        self.open_streams = 0
        self.requests: list[ModelRequest] = []

    async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        self.open_streams += 1
        try:
            last = request.messages[-1].text
            if "<tool_response>" in last:
                result = last.split("<tool_response>")[1].split("</tool_response>")[0].strip()
                text = f"The answer is {result}."
            else:
                city = last.rsplit(" ", 1)[-1].rstrip("?")
                text = H.render_calls([ToolCall(name="lookup", arguments={"city": city})])
            for i in range(0, len(text), 5):
                await asyncio.sleep(0.001)
                yield Delta(text[i : i + 5])
            yield Delta("", "stop", Usage(1, len(text)))
        finally:
            self.open_streams -= 1


@tool
async def lookup(city: str) -> str:
    """Looks a city up.

    Args:
        city: the city.
    """
    await asyncio.sleep(0.01)
    return f"code-{city}"


def test_fifty_concurrent_runs_on_one_loop_get_their_own_tool_results():
    model = AsyncScripted()
    agent = Agent(llm=model, tools=[lookup])

    async def one(i: int) -> tuple[str, list[str]]:
        results, answer = [], ""
        async for ev in agent.arun(f"What is the code of city{i}"):
            if isinstance(ev, ToolResultEvent):
                results.append(ev.result.text)
            elif isinstance(ev, FinalEvent):
                answer = ev.message.text
        return answer, results

    async def main() -> list[tuple[str, list[str]]]:
        start = time.perf_counter()
        out = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)
        return out, time.perf_counter() - start

    out, took = asyncio.run(main())
    for i, (answer, results) in enumerate(out):
        assert results == [f"code-city{i}"]
        assert answer == f"The answer is code-city{i}."
    assert model.open_streams == 0 and len(model.requests) == 100
    # they ran together: 50 runs one after another would take over 50 x 2 x 10 ms
    assert took < 5


def test_cancelling_a_run_mid_tool_stops_the_tool_and_nothing_is_left_running():
    started, cancelled = asyncio.Event(), []

    @tool
    async def wait_forever(city: str) -> str:
        """Never returns.

        Args:
            city: the city.
        """
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(city)
            raise
        return "never"

    model_call = H.render_calls([ToolCall(name="wait_forever", arguments={"city": "Oslo"})])
    agent = Agent(llm=ScriptedLLM([model_call, "done"]), tools=[wait_forever])

    async def main() -> set[asyncio.Task]:
        run = asyncio.ensure_future(_drain(agent.arun("go")))
        await asyncio.wait_for(started.wait(), 10)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await asyncio.sleep(0)
        return asyncio.all_tasks() - {asyncio.current_task()}

    left = asyncio.run(main())
    assert cancelled == ["Oslo"]  # the tool's task got the cancellation
    assert left == set()  # no task of the run is still running


def test_cancelling_a_run_mid_reply_closes_the_model_stream():
    class Slow(AsyncScripted):
        async def astream(self, request: ModelRequest) -> AsyncIterator[Delta]:
            self.open_streams += 1
            self.opened.set()
            try:
                yield Delta("Thinking ")
                await asyncio.sleep(3600)
                yield Delta("never", "stop")
            finally:
                self.open_streams -= 1

    model = Slow()
    agent = Agent(llm=model)

    async def main() -> None:
        model.opened = asyncio.Event()
        run = asyncio.ensure_future(_drain(agent.arun("go")))
        await asyncio.wait_for(model.opened.wait(), 10)
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(main())
    assert model.open_streams == 0


def test_leaving_the_sync_run_mid_tool_cancels_the_async_tool_too():
    cancelled = threading.Event()

    @tool
    async def hang() -> str:
        """Hangs."""
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    call = H.render_calls([ToolCall(name="hang"), ToolCall(name="lookup", arguments={"city": "x"})])
    agent = Agent(llm=ScriptedLLM([call, "done"]), tools=[hang, lookup])
    run = agent.run("go")
    for ev in run:
        if isinstance(ev, ToolResultEvent):  # lookup's: hang still runs
            break
    run.close()
    assert cancelled.is_set()


def test_a_sync_model_streams_through_the_one_adapter_and_its_thread_ends():
    from qwen_agent.llm import _ThreadedStream, astream

    class SyncOnly:
        def stream(self, request):
            yield Delta("a")
            yield Delta("b", "stop")

    async def main():
        deltas = astream(SyncOnly(), ModelRequest(messages=[]))
        assert isinstance(deltas, _ThreadedStream)
        texts = [d.text async for d in deltas]
        assert deltas.stopped.wait(5)
        return texts, await adrain(SyncOnly(), ModelRequest(messages=[]))

    texts, whole = asyncio.run(main())
    assert texts == ["a", "b"] and whole.text == "ab"


# -- errors through the server -------------------------------------------------------------


def _upstream_429() -> _Canned:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit_error"}})
    server = _Canned(429, body.encode(), "application/json")
    server.extra_headers = {"Retry-After": "7"}
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_429_reaches_the_client_as_429_with_retry_after(stream):
    upstream = _upstream_429()
    model = OpenAIChatModel(model="m", base_url=upstream.url)
    try:
        with Server(model) as server:
            client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
            with pytest.raises(openai.RateLimitError) as caught:
                client.chat.completions.create(
                    model="qwen-agent", messages=[{"role": "user", "content": "hi"}], stream=stream
                )
            assert caught.value.status_code == 429
            assert caught.value.response.headers["retry-after"] == "7"
            assert "slow down" in str(caught.value)
    finally:
        model.close()
        upstream.shutdown()


def test_the_backend_error_carries_status_and_retry_after():
    upstream = _upstream_429()
    model = OpenAIChatModel(model="m", base_url=upstream.url)
    try:
        with pytest.raises(RateLimitError) as caught:
            from qwen_agent.llm import drain

            drain(model, ModelRequest(messages=[{"role": "user", "content": "hi"}]))
        assert caught.value.status_code == 429 and caught.value.retry_after == 7.0
    finally:
        model.close()
        upstream.shutdown()


def test_an_upstream_that_never_answers_is_a_504():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                conn, _ = listener.accept()
                held.append(conn)  # read nothing, answer nothing
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    model = OpenAIChatModel(model="m", base_url=url, timeout=0.5)
    try:
        with pytest.raises(BackendTimeoutError):
            from qwen_agent.llm import drain

            drain(model, ModelRequest(messages=[{"role": "user", "content": "hi"}]))
        with Server(model) as server:
            client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
            with pytest.raises(openai.APIStatusError) as caught:
                client.chat.completions.create(
                    model="qwen-agent", messages=[{"role": "user", "content": "hi"}]
                )
            assert caught.value.status_code == 504
    finally:
        model.close()
        listener.close()
        for conn in held:
            conn.close()


# -- one turn pipeline ---------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather of a city.

    Args:
        city: the city.
    """
    return "sunny"


@pytest.mark.parametrize("fmt", ["hermes", "react"])
def test_a_backend_sees_the_same_request_from_the_agent_and_through_the_server(fmt):
    """The same conversation and tools, once from an Agent and once as a chat completion
    through ``serve``: the backend gets the same constraint, messages and stop words."""
    direct = ScriptedLLM(["It is sunny."])
    Agent(llm=direct, tools=[get_weather], format=fmt).chat("Weather in Oslo?")
    served = ScriptedLLM(["It is sunny."])
    with Server(served, format=fmt) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
        client.chat.completions.create(
            model="qwen-agent",
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[ToolSpec.of(get_weather).openai()],
        )
    a, b = direct.requests[0], served.requests[0]
    assert a.constraint == b.constraint
    if fmt == "hermes":
        assert a.constraint is not None and [t.name for t in a.constraint.tools] == ["get_weather"]
        assert a.constraint.open == "<tool_call>"
    else:
        assert a.constraint is None
    assert [m.text for m in a.messages] == [m.text for m in b.messages]
    assert a.generation.stop == b.generation.stop and a.format == b.format == fmt
    assert a.exchanges == b.exchanges == (1,)


def test_calls_stream_as_events_with_the_agents_ids():
    call = H.render_calls([ToolCall(name="get_weather", arguments={"city": "Oslo"})])
    agent = Agent(llm=ScriptedLLM([call, "ok"]), tools=[get_weather])
    calls = [ev.call for ev in agent.run("Weather in Oslo?") if isinstance(ev, ToolCallEvent)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_1_0", "get_weather", {"city": "Oslo"})
    ]


async def _drain(events: AsyncIterator) -> None:
    async for _ in events:
        pass


def test_the_sync_api_works_where_an_event_loop_already_runs():
    """A notebook cell or an async handler that calls the sync API: it runs on the shared
    loop thread instead of failing with 'this event loop is already running'."""
    call = H.render_calls([ToolCall(name="lookup", arguments={"city": "Oslo"})])
    agent = Agent(llm=ScriptedLLM([call, "done"]), tools=[lookup])

    async def inside() -> tuple[str, list[str]]:
        results = [e.result.text for e in agent.run("go") if isinstance(e, ToolResultEvent)]
        return agent.chat("again").answer, results

    answer, results = asyncio.run(inside())
    assert results == ["code-Oslo"] and answer == "done"


def test_sync_api_from_an_async_tool_on_the_shared_loop_is_a_clear_error():
    from qwen_agent import aio
    from qwen_agent.errors import ConfigError

    async def nested() -> None:
        Agent(llm=ScriptedLLM(["x"])).chat("hi")

    fut = asyncio.run_coroutine_threadsafe(nested(), aio.loop())
    with pytest.raises(ConfigError, match="await the async API"):
        fut.result(10)


def test_closing_a_sync_models_stream_returns_once_its_generation_stopped():
    """A sync backend's generation runs in the adapter's thread; closing the stream (a run
    cancelled mid-reply) waits until that thread has closed it, so nothing of it is left
    running (a torch thread alive at exit aborts the interpreter)."""
    from qwen_agent.llm import astream

    closed = threading.Event()

    class Slow:
        def stream(self, request):
            try:
                for i in range(1000):
                    time.sleep(0.02)
                    yield Delta(f"{i} ")
            finally:
                time.sleep(0.1)  # what stopping a generation takes
                closed.set()

    async def main() -> None:
        deltas = astream(Slow(), ModelRequest(messages=[]))
        assert (await anext(deltas)).text == "0 "
        await deltas.aclose()
        assert closed.is_set()

    asyncio.run(main())


# -- the sync wrapper blocks on sync tool calls where nothing else uses its loop --------
def _call_turn(*names: str) -> str:
    return H.render_calls([ToolCall(name=n, arguments={}) for n in names])


def test_a_sync_run_shows_a_slow_sync_calls_event_before_waiting_for_it():
    release = threading.Event()

    @tool
    def slow() -> str:
        """Waits until the test lets it go."""
        if not release.wait(5):
            raise RuntimeError("nobody saw the call before it was waited on")
        return "released"

    agent = Agent(llm=ScriptedLLM([_call_turn("slow"), "done"]), tools=[slow])
    results = []
    for ev in agent.run("go"):
        if isinstance(ev, ToolCallEvent):
            release.set()  # only possible if the event came before the wait
        elif isinstance(ev, ToolResultEvent):
            results.append(ev.result.text)
    assert results == ["released"]


def test_a_sync_run_times_out_a_hung_sync_call_and_frees_its_slot():
    from qwen_agent.toolrun import runner

    stop = threading.Event()

    @tool(timeout=0.3)
    def hang() -> str:
        """Hangs."""
        stop.wait(10)
        return "late"

    agent = Agent(llm=ScriptedLLM([_call_turn("hang"), "done"]), tools=[hang])
    t0 = time.monotonic()
    try:
        results = [ev.result.text for ev in agent.run("go") if isinstance(ev, ToolResultEvent)]
        took = time.monotonic() - t0
        assert results == ["Error: tool 'hang' timed out after 0.3 s"]
        assert took < 5
        assert runner()._slots._value == runner().capacity  # the slot came back at once
    finally:
        stop.set()


def test_sync_and_async_calls_of_one_turn_from_sync_code_and_from_threads():
    @tool
    def plain() -> str:
        """A sync tool."""
        time.sleep(0.02)
        return "plain-ok"

    @tool
    async def waits() -> str:
        """An async tool."""
        await asyncio.sleep(0.02)
        return "async-ok"

    def one(out: list, i: int) -> None:
        agent = Agent(llm=ScriptedLLM([_call_turn("plain", "waits"), "done"]), tools=[plain, waits])
        for ev in agent.run("go"):
            if isinstance(ev, ToolResultEvent):
                out.append((i, ev.result.text))

    outs: list = []
    threads = [threading.Thread(target=one, args=(outs, i)) for i in range(4)]
    for t in threads:
        t.start()
    one(outs, 99)
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    for i in [0, 1, 2, 3, 99]:
        assert sorted(text for j, text in outs if j == i) == ["async-ok", "plain-ok"]
