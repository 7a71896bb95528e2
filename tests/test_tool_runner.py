"""Sync tool calls that hang past their timeout never take capacity from other agents, and
timeouts that could never fire (or fire at once) are refused."""

from __future__ import annotations

import math
import threading

import pytest

from qwen_agent import Agent, ConfigError, tool
from qwen_agent.events import ToolResultEvent
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.testing import ScriptedLLM
from qwen_agent.toolrun import ToolRunner, runner

H = HermesFormat()


def calls(name: str, n: int) -> str:
    return H.render_calls([ToolCall(name=name, arguments={}) for _ in range(n)])


@pytest.fixture
def release():
    """Set at the end of a test, so hung calls return and their threads end."""
    event = threading.Event()
    before = runner().abandoned_running
    yield event
    event.set()
    # the hung calls return now: wait for their threads, so the next test's count starts
    # from a settled figure
    for _ in range(200):
        if runner().abandoned_running <= before:
            break
        threading.Event().wait(0.025)


def test_hung_calls_that_timed_out_leave_room_for_another_agents_tool(release):
    @tool(timeout=0.2)
    def hang() -> str:
        """Waits for the test."""
        release.wait(60)
        return "late"

    @tool(timeout=10)
    def instant() -> str:
        """Answers at once."""
        return "here"

    capacity = runner().capacity
    # more hung calls than the process runs at once, all past their timeout
    greedy = Agent(llm=ScriptedLLM([calls("hang", capacity + 8), "gave up"]), tools=[hang])
    answer, messages = greedy.chat("go")
    results = [m.text for m in messages if m.role == "tool"]
    assert answer == "gave up" and len(results) == capacity + 8
    assert all("timed out after 0.2 s" in r for r in results)

    other = Agent(llm=ScriptedLLM([calls("instant", 1), "got it"]), tools=[instant])
    failures: list[BaseException] = []
    out: list[list[str]] = []

    def use() -> None:  # from another thread, as another conversation would
        try:
            _, msgs = other.chat("go")
            out.append([m.text for m in msgs if m.role == "tool"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    t = threading.Thread(target=use)
    t.start()
    t.join(30)
    assert not failures and not t.is_alive()
    assert out == [["here"]]  # not "timed out": the hung calls gave their slots back


def test_a_runner_bounds_running_calls_and_abandoned_threads():
    gate = threading.Event()
    started = threading.Semaphore(0)

    def block() -> str:
        started.release()
        gate.wait(30)
        return "done"

    r = ToolRunner(capacity=2, max_abandoned=3)
    try:
        first = [r.submit(block) for _ in range(3)]
        assert started.acquire(timeout=5) and started.acquire(timeout=5)
        assert not started.acquire(timeout=0.3)  # the third waits for a slot
        r.abandon(first[0])  # frees its slot: the third starts
        assert started.acquire(timeout=5)
        assert r.abandoned_running == 1
        r.abandon(first[1])
        r.abandon(first[2])
        assert r.abandoned_running == 3
        from qwen_agent.errors import ToolCallError

        with pytest.raises(ToolCallError, match="still running"):
            r.submit(block)
    finally:
        gate.set()
    for _ in range(100):
        if r.abandoned_running == 0:
            break
        threading.Event().wait(0.05)
    assert r.abandoned_running == 0
    assert r.submit(lambda: 7).result(5) == 7
    assert all(f.cancelled() for f in first)


def test_closing_a_run_mid_call_gives_the_calls_slots_back(release):
    started = threading.Semaphore(0)

    @tool(timeout=30)
    def slow() -> str:
        """Waits for the test."""
        started.release()
        release.wait(60)
        return "late"

    @tool
    def fast() -> str:
        """Answers at once."""
        return "now"

    before = runner().abandoned_running
    both = H.render_calls([ToolCall(name="slow"), ToolCall(name="slow"), ToolCall(name="fast")])
    agent = Agent(llm=ScriptedLLM([both, "done"]), tools=[slow, fast])
    run = agent.run("go")
    for event in run:
        if isinstance(event, ToolResultEvent):  # fast's: the slow ones still run
            assert event.result.text == "now"
            break
    # both slow calls are running (not merely queued for a thread) when the caller leaves
    assert started.acquire(timeout=10) and started.acquire(timeout=10)
    run.close()  # the caller left mid-call
    assert runner().abandoned_running - before == 2


@pytest.mark.parametrize("bad", [math.inf, math.nan, 0, -1, "10", True, 10**9])
def test_timeouts_that_never_or_always_fire_are_refused(bad):
    with pytest.raises(ConfigError, match="timeout"):
        Agent(llm=ScriptedLLM(["x"]), tool_timeout=bad)
    with pytest.raises(ConfigError, match="timeout"):

        @tool(timeout=bad)
        def t() -> str:
            """A tool."""
            return ""


def test_closing_a_run_at_an_early_error_still_abandons_the_calls_already_started(release):
    started = threading.Event()

    @tool(timeout=30)
    def slow() -> str:
        """Waits for the test."""
        started.set()
        release.wait(60)
        return "late"

    before = runner().abandoned_running
    text = H.render_calls([ToolCall(name="slow"), ToolCall(name="nope")])
    agent = Agent(llm=ScriptedLLM([text, "done"]), tools=[slow])
    run = agent.run("go")
    for event in run:
        if isinstance(event, ToolResultEvent):  # the unknown tool's error, slow still runs
            assert "no tool named 'nope'" in event.result.text
            # a call that never started is dropped, not abandoned: make sure it started
            assert started.wait(10)
            break
    run.close()
    assert runner().abandoned_running - before == 1
