"""The agent loop, driven by ScriptedLLM (a real ChatModel that plays back texts)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from qwen_agent import Agent, ConfigError, Message, TextItem, Tool, tool
from qwen_agent.events import FinalEvent, TextDelta, ToolCallEvent, ToolResultEvent
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ImageItem, ToolCall
from qwen_agent.testing import ScriptedLLM
from qwen_agent.tool import FunctionTool

H = HermesFormat()


def call_text(name, content="", **arguments):
    return H.render_calls([ToolCall(name=name, arguments=arguments)], content)


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: first factor.
        b: second factor.
    """
    return a * b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def test_single_tool_call_then_answer_streams_events_in_order():
    llm = ScriptedLLM([call_text("multiply", "Computing.", a=12, b=34), "12*34 = 408."])
    events = list(Agent(llm=llm, tools=[multiply]).run("what is 12*34?"))
    kinds = [e.type for e in events]
    assert kinds.count("tool_call") == 1 and kinds.count("tool_result") == 1
    assert kinds[-1] == "final"
    assert kinds.index("tool_call") < kinds.index("tool_result")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Computing.12*34 = 408."
    call = next(e.call for e in events if isinstance(e, ToolCallEvent))
    result = next(e.result for e in events if isinstance(e, ToolResultEvent))
    assert (call.name, call.arguments) == ("multiply", {"a": 12, "b": 34})
    assert result.call_id == call.id and result.text == "408" and not result.is_error
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.stop_reason == "answer"
    assert [m.role for m in final.messages] == ["user", "assistant", "tool", "assistant"]
    assert final.messages[1].tool_calls[0].id == call.id
    # the second prompt carries the tool's result back to the model
    assert llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"
    assert llm.prompts[1][0].role == "system" and "multiply" in llm.prompts[1][0].text


def test_chat_returns_answer_and_messages():
    llm = ScriptedLLM([call_text("multiply", a=2, b=21), "It is 42."])
    result = Agent(llm=llm, tools=[multiply]).chat("2*21?")
    answer, messages = result
    reason = result.stop_reason
    assert answer == "It is 42."
    assert reason == "answer"
    assert messages[0] == Message(role="user", content="2*21?")
    assert messages[2].content == [TextItem(text="42")]


def test_parallel_calls_run_concurrently():
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def meet(i: int) -> str:
        """Wait for the two other calls."""
        barrier.wait()  # would time out if the calls ran one after another
        return f"met {i}"

    text = "\n".join(call_text("meet", i=i) for i in range(3))
    llm = ScriptedLLM([text, "All met."])
    answer, messages = Agent(llm=llm, tools=[meet]).chat("go")
    assert answer == "All met."
    results = [m.text for m in messages if m.role == "tool"]
    assert results == ["met 0", "met 1", "met 2"]  # in call order


def test_async_tools_run_concurrently_too():
    @tool
    async def nap(i: int) -> str:
        """Sleep a little."""
        await asyncio.sleep(0.3)
        return f"slept {i}"

    text = "\n".join(call_text("nap", i=i) for i in range(4))
    agent = Agent(llm=ScriptedLLM([text, "done"]), tools=[nap])
    start = time.monotonic()
    _, messages = agent.chat("go")
    elapsed = time.monotonic() - start
    assert [m.text for m in messages if m.role == "tool"] == [f"slept {i}" for i in range(4)]
    assert elapsed < 1.0  # four 0.3 s naps one after another would take 1.2 s


def test_tool_error_becomes_observation_without_host_traceback():
    llm = ScriptedLLM([call_text("explode", reason="disk"), "The tool failed."])
    answer, messages = Agent(llm=llm, tools=[explode]).chat("go")
    assert answer == "The tool failed."
    obs = llm.prompts[1][-1].text
    assert "Error: tool 'explode' failed: RuntimeError: boom: disk" in obs
    assert "Traceback" not in obs and ".py" not in obs


def test_unknown_tool_and_bad_arguments_are_reported_to_the_model():
    text = call_text("nope", x=1) + "\n" + call_text("multiply", a="seven")
    llm = ScriptedLLM([text, "Sorry."])
    _, messages = Agent(llm=llm, tools=[multiply]).chat("go")
    tool_msgs = [m.text for m in messages if m.role == "tool"]
    assert tool_msgs[0] == "Error: there is no tool named 'nope'; available tools: multiply"
    assert tool_msgs[1].startswith("Error: invalid arguments for tool 'multiply': a: ")
    assert "b: Field required" in tool_msgs[1]


def test_malformed_call_is_an_observation_and_the_loop_goes_on():
    llm = ScriptedLLM(
        ["<tool_call>\n{not json}\n</tool_call>", call_text("multiply", a=1, b=2), "2"]
    )
    answer, messages = Agent(llm=llm, tools=[multiply]).chat("go")
    assert answer == "2"
    assert llm.calls == 3
    second_prompt = llm.prompts[1][-1].text
    assert second_prompt.startswith("<tool_response>\nError: the tool call is not valid JSON")


def test_tool_timeout_becomes_observation():
    @tool(timeout=0.2)
    def hang() -> str:
        """Never returns in time."""
        time.sleep(3)
        return "late"

    agent = Agent(llm=ScriptedLLM([call_text("hang"), "gave up"]), tools=[hang])
    start = time.monotonic()
    answer, messages = agent.chat("go")
    assert time.monotonic() - start < 2
    assert answer == "gave up"
    assert messages[2].text == "Error: tool 'hang' timed out after 0.2 s"


def test_garbage_result_becomes_observation():
    @tool
    def weird() -> object:
        """Returns something unprintable."""
        return object()

    _, messages = Agent(llm=ScriptedLLM([call_text("weird"), "ok"]), tools=[weird]).chat("go")
    assert messages[2].text.startswith("Error: tool 'weird' returned a value that cannot be shown")


def test_max_steps_bounds_the_loop_with_a_clear_message():
    llm = ScriptedLLM([call_text("multiply", a=1, b=1)])  # cycles: calls forever
    result = Agent(llm=llm, tools=[multiply], max_steps=3).chat("loop")
    answer, messages, reason = result.answer, result.messages, result.stop_reason
    assert llm.calls == 3
    assert reason == "max_steps"
    assert answer == "I stopped after 3 steps without reaching a final answer."
    assert sum(1 for m in messages if m.role == "tool") == 3


def test_cut_off_call_is_not_executed():
    ran = []

    @tool
    def record(note: str) -> str:
        """Record a note."""
        ran.append(note)
        return "ok"

    llm = ScriptedLLM([call_text("record", note="a long note"), "fine"])
    agent = Agent(llm=llm, tools=[record], generation={"max_tokens": 30})
    _, messages = agent.chat("go")
    assert ran == []
    assert "cut off by the token limit" in messages[2].text


def test_react_format_end_to_end_with_stop_word():
    react = [
        'Thought: multiply\nAction: multiply\nAction Input: {"a": 6, "b": 7}\nObservation: 41',
        "Thought: I now know the final answer\nFinal Answer: 42",
    ]
    llm = ScriptedLLM(react, chunk_size=3)
    answer, messages = Agent(llm=llm, tools=[multiply], format="react").chat("6*7?")
    assert answer == "42"
    assert "Observation:" in llm.configs[0].stop
    trace = llm.prompts[1][-1]
    assert trace.role == "assistant"
    assert trace.text.endswith('Action Input: {"a": 6, "b": 7}\nObservation: 42\n')
    assert messages[1].reasoning == "multiply"


def test_history_is_sent_and_extended():
    llm = ScriptedLLM(["Second answer."])
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    answer, messages = Agent(llm=llm).chat("again", history=history)
    assert answer == "Second answer."
    assert [m.text for m in messages] == ["hi", "hello", "again", "Second answer."]
    assert [m.role for m in llm.prompts[0]] == ["system", "user", "assistant", "user"]


def test_class_based_tool_with_state_and_image_result():
    class Counter(Tool):
        name = "counter"
        description = "Counts calls and returns an image."
        parameters = {
            "type": "object",
            "properties": {"step": {"type": "integer"}},
            "required": ["step"],
        }

        def __init__(self):
            super().__init__()
            self.total = 0

        def call(self, step):
            self.total += step
            return [TextItem(text=f"total {self.total}"), ImageItem(image="/tmp/plot.png")]

    counter = Counter()
    llm = ScriptedLLM([call_text("counter", step=2) + "\n" + call_text("counter", step=3), "5"])
    _, messages = Agent(llm=llm, tools=[counter]).chat("count")
    assert counter.total == 5
    assert isinstance(messages[2].content[1], ImageItem)
    bad = Agent(llm=ScriptedLLM([call_text("counter", step="x"), "no"]), tools=[counter])
    _, messages = bad.chat("count")
    assert messages[2].text.startswith("Error: invalid arguments for tool 'counter': step: ")


def test_bad_configuration_is_rejected_clearly(monkeypatch, tmp_path):
    import qwen_agent.bundled.smol
    import qwen_agent.llm

    # an install that lost the bundled model's files says so, and what to pass instead
    monkeypatch.setattr(qwen_agent.bundled.smol, "SMOL_AGENT", tmp_path / "gone")
    monkeypatch.setattr(qwen_agent.llm, "_default_model", None)
    with pytest.raises(ConfigError, match="bundled model is missing .* or pass llm="):
        Agent()
    with pytest.raises(ConfigError, match="max_steps"):
        Agent(llm=ScriptedLLM("x"), max_steps=0)
    with pytest.raises(ConfigError, match="two tools are named 'multiply'"):
        Agent(llm=ScriptedLLM("x"), tools=[multiply, multiply])
    with pytest.raises(ConfigError, match="at least one user message"):
        list(Agent(llm=ScriptedLLM("x")).run([{"role": "system", "content": "s"}]))
    with pytest.raises(ConfigError, match="or a dict, not str"):
        Agent(llm="qwen")  # type: ignore[arg-type]


def test_plain_functions_are_accepted_as_tools():
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    llm = ScriptedLLM([call_text("add", a=1, b=2), "3"])
    _, messages = Agent(llm=llm, tools=[add]).chat("1+2")
    assert messages[2].text == "3"


def test_scripted_llm_honours_stop_and_length():
    from qwen_agent.llm import GenerationConfig, drain

    llm = ScriptedLLM(["abc STOP def", "abcdef"], chunk_size=2)
    out = drain(llm, [], GenerationConfig(stop=["STOP"]))
    assert (out.text, out.finish_reason) == ("abc ", "stop")
    out = drain(llm, [], GenerationConfig(max_tokens=4))
    assert (out.text, out.finish_reason) == ("abcd", "length")
    with pytest.raises(ConfigError):
        ScriptedLLM([])


def test_toolset_tools_join_the_agent_and_close_with_it():
    from qwen_agent import Toolset

    closed = []

    class Pair(Toolset):
        def tools(self):
            return [FunctionTool(lambda: "a", name="one"), get_tool_two()]

        def close(self):
            closed.append("pair")

    def get_tool_two():
        return FunctionTool(lambda: "b", name="two")

    with Agent(llm=ScriptedLLM(["done"]), tools=[Pair()]) as agent:
        assert sorted(agent.tools) == ["one", "two"]
    assert closed == ["pair"]


def test_toolset_name_clash_is_an_error_and_closes_what_was_opened():
    from qwen_agent import Toolset

    closed = []

    class One(Toolset):
        def tools(self):
            return [FunctionTool(lambda: "a", name="same")]

        def close(self):
            closed.append("one")

    with pytest.raises(ConfigError, match="two tools are named 'same'"):
        Agent(llm=ScriptedLLM(["x"]), tools=[One(), One()])
    assert closed == ["one", "one"]


def test_a_half_made_agent_closes_what_it_opened():
    from qwen_agent import Toolset

    closed = []

    class Held(Toolset):
        def tools(self):
            return [FunctionTool(lambda: "a", name="held")]

        def close(self):
            closed.append("held")

    for bad in ({"llm": {"backend": "no-such-backend"}}, {"format": "no-such-format"}):
        with pytest.raises(Exception):  # noqa: B017 - each fails its own way
            Agent(**{"llm": ScriptedLLM(["x"]), **bad}, tools=[Held()])
    assert closed == ["held", "held"]


def test_a_borrowed_toolset_is_not_closed_by_the_agent():
    from qwen_agent import Toolset

    closed = []

    class Shared(Toolset):
        def tools(self):
            return [FunctionTool(lambda: "a", name="shared")]

        def close(self):
            closed.append("shared")

    shared = Shared()
    with Agent(llm=ScriptedLLM(["x"]), tools=[shared.borrowed()]) as agent:
        assert list(agent.tools) == ["shared"]
    assert closed == []
