"""The tool guard: which text may come next inside a hermes tool call."""

from __future__ import annotations

import random

import pytest

from qwen_agent import tool
from qwen_agent.formats.guard import ToolGuard
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import Message

TOOLS = {"get_weather": ["city", "unit"], "get_time": ["city"], "multiply": ["a", "b"]}
OPEN = "<tool_call>\n"
HEAD = '{"name": "get_weather", "arguments": {'


@tool
def get_weather(city: str, unit: str = "C") -> str:
    """Weather in a city."""
    return "sunny"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture
def guard():
    return ToolGuard(TOOLS)


def test_free_outside_calls(guard):
    assert guard.targets("") is None
    assert guard.targets("The answer is 42.") is None
    assert guard.targets(OPEN + HEAD + '"city": "Oslo"}}\n</tool_call>') is None
    assert guard.targets(OPEN + HEAD + '"city": "Os') is None  # values are the model's


def test_call_head_names_a_listed_tool(guard):
    assert guard.targets("<tool_call>")[0] == '{"name": "get_weather", "arguments": {'
    assert "\n" + HEAD in guard.targets("<tool_call>")  # the usual newline may come first
    assert guard.targets(OPEN + '{"name": "get_') == [
        'weather", "arguments": {',
        'time", "arguments": {',
    ]
    assert guard.targets(OPEN + '{"name": "mul') == ['tiply", "arguments": {']
    assert guard.targets(OPEN + '{"name": "get_weather') == ['", "arguments": {']
    # a head that is no longer a listed tool's: left to the parser to report
    assert guard.targets(OPEN + '{"name": "nope') is None


def test_argument_keys_are_the_tools_parameters_once_each(guard):
    assert guard.targets(OPEN + HEAD + '"') == ['city"', 'unit"']
    assert guard.targets(OPEN + HEAD + '"ci') == ['ty"']
    assert guard.targets(OPEN + HEAD + '"city": "O\\"s,lo", "') == ['unit"']
    # nested values do not count as keys, and a used key is not offered again
    assert guard.targets(OPEN + HEAD + '"unit": {"a": [1, "x"], "b": 2}, "') == ['city"']
    assert guard.targets(OPEN + HEAD + '"unit": {"') is None
    assert guard.targets(OPEN + HEAD + '"city": "x", "unit": "C", "') is None  # none left
    zero = ToolGuard({"now": []})
    assert zero.targets(OPEN + '{"name": "now", "arguments": {"') is None


VOCAB = ["\n", '{"', "name", '":', ' "', "get", "_", "weather", "time", '",', ' {"', "city"]
VOCAB += ["unit", '"', " ", '"}}', "mul", "tiply", 'city":', "cit", "x", "<tool_call>"]


def test_allowed_ids_on_a_vocabulary(guard):
    pick = lambda text: [VOCAB[i] for i in guard.allowed_ids(text, VOCAB)]  # noqa: E731
    assert pick("<tool_call>") == ["\n", '{"']
    assert pick(OPEN + '{"name": "') == ["get", "mul"]
    assert pick(OPEN + '{"name": "get_') == ["weather", "time"]
    assert pick(OPEN + '{"name": "get_weather') == ['",', '"']
    # a token may run past the guarded text (city": closes the key and goes on)
    assert pick(OPEN + HEAD + '"') == ["city", "unit", 'city":', "cit"]
    assert guard.allowed_ids("hello", VOCAB) is None
    # when no token of the vocabulary fits, the guard steps aside instead of blocking
    assert guard.allowed_ids(OPEN + HEAD + '"', ["a", "b"]) is None


def test_from_prompt_reads_the_rendered_hermes_tools():
    prompt = HermesFormat().build_prompt([Message(role="user", content="hi")], [get_weather])
    guard = ToolGuard.from_prompt(prompt[0].text)
    assert guard.tools == {"get_weather": ["city", "unit"]}
    prompt = HermesFormat().build_prompt([], [get_weather, multiply])
    assert ToolGuard.from_prompt(prompt[0].text).tools == {
        "get_weather": ["city", "unit"],
        "multiply": ["a", "b"],
    }
    assert ToolGuard.from_prompt("You are a helpful assistant.") is None
    assert ToolGuard.from_prompt("<tools>\nnot json\n</tools>") is None
    with pytest.raises(ValueError):
        ToolGuard({})


def test_a_guided_walk_always_yields_a_valid_call():
    """Pick random allowed tokens from a character vocabulary: every finished call the
    parser reads names a listed tool with listed keys."""
    vocab = [chr(c) for c in range(32, 127)] + ["\n", '", "', '": "', '"}}\n</tool_call>']
    fmt = HermesFormat()
    rng = random.Random(0)
    guard = ToolGuard(TOOLS)
    seen = 0
    for _ in range(200):
        text = "<tool_call>"
        for _ in range(120):
            allowed = guard.allowed_ids(text, vocab)
            if allowed is None:  # free: some JSON-ish text of the model's own
                nxt = rng.choice(['"', ': "v"', ": 1", ", ", "}}\n</tool_call>"])
            else:
                nxt = vocab[rng.choice(allowed)]
            text += nxt
            if text.endswith("</tool_call>"):
                break
        parsed = fmt.parse(text, "stop")
        for call in parsed.calls:
            assert call.name in TOOLS
            assert set(call.arguments) <= set(TOOLS[call.name])
            seen += 1
    assert seen > 20
