"""Both tool-use formats: the shared contract plus each format's own rules."""

from __future__ import annotations

import json

import pytest

from qwen_agent.errors import ConfigError, RegistryError
from qwen_agent.formats import FORMATS, get_format, register_format
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.formats.react import ReactFormat
from qwen_agent.messages import Message, ToolCall
from qwen_agent.tool import tool

from .format_contract import FormatContract, stream

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@tool
def get_weather(city: str) -> str:
    """Weather of a city.

    Args:
        city: the city.
    """
    return "sunny"


def calls_of(out):
    return [(c.name, c.arguments) for c in out.calls]


class TestHermesContract(FormatContract):
    fmt = HermesFormat()
    examples = [
        "The capital of France is Paris.",
        CALL,
        "Let me look.\n" + CALL + "\n" + CALL.replace("Paris", "Rome"),
        "<think>\nThe user wants weather. <tool_call>{}</tool_call>\n</think>\n\n" + CALL,
        '<tool_call>\n{"name": "python", "arguments": {"code": "print(\'</tool_call>\')"}}\n'
        "</tool_call>",
        "<tool_call>\n```json\n{\"name\": 'f', arguments: {'a': 1,},}\n```\n</tool_call>",
        '<tool_call>\n{"name": "f", "arguments": "{\\"a\\": [1, 2]}"}\n</tool_call>',
        '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\nI will wait.',
        '<tool_call>\n{"name": "f", "arguments": {"a": 1}}',
        '<tool_call>\n{"name": "f", "arguments": {"a": "cut',
        "<tool_call>\nnot json at all\n</tool_call>\nsorry",
        '<tool_call>{"arguments": {}}</tool_call>',
        "a < b and <tool is fine </tool_call> ok",
        "<think>unfinished thought",
    ]


class TestReactContract(FormatContract):
    fmt = ReactFormat()
    examples = [
        "Thought: I know this.\nFinal Answer: Paris.",
        'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}\n',
        'Thought: two\nAction: f\nAction Input: {"a": 1}\nAction: g\nAction Input: {"b": "x"}',
        'Action: python\nAction Input: {"code": "print(\\"Action: x\\")\\nObservation: y"}\n'
        "Observation: invented",
        "Action: f\nAction Input: ```json\n{'a': 1}\n```\nThought: done",
        "Action: f\nAction Input: 12*34\nThought: oops",
        "Action: f\nThought: forgot the input",
        'Action: f\nAction Input: {"a": "cut',
        "just a plain answer with no labels at all, long enough to stream past the prefix",
        "Final Answer: 42\n\n",
        "Thought: " + "long thought " * 10 + "\nFinal Answer: done",
    ]


# -- hermes ---------------------------------------------------------------------------------


def test_hermes_parses_several_calls_and_content():
    out = HermesFormat().parse("Let me look.\n" + CALL + "\n" + CALL.replace("Paris", "Rome"))
    assert out.content == "Let me look."
    assert calls_of(out) == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert [c.id for c in out.calls] == ["call_0", "call_1"]


def test_hermes_think_is_reasoning_and_calls_inside_it_are_not_calls():
    out = HermesFormat().parse("<think>\nmaybe <tool_call>{}</tool_call>?\n</think>\n\nHi!")
    assert out.reasoning == "maybe <tool_call>{}</tool_call>?"
    assert out.calls == [] and out.errors == []
    assert out.content == "Hi!"


def test_hermes_call_containing_closing_tag_in_code_is_not_cut_short():
    code = "s = '</tool_call>'\nprint(s)"
    text = HermesFormat().render_calls([ToolCall(name="python", arguments={"code": code})])
    assert calls_of(HermesFormat().parse(text)) == [("python", {"code": code})]


@pytest.mark.parametrize(
    "body, expected",
    [
        ('```json\n{"name": "f", "arguments": {"a": 1}}\n```', {"a": 1}),
        ("{'name': 'f', 'arguments': {'a': 1,}, /* c */}", {"a": 1}),
        ('{"name": "f", "arguments": "{\\"a\\": 1}"}', {"a": 1}),
        ('{"name": "f"}', {}),
        ('{"name": "f", "parameters": {"a": 1}}', {"a": 1}),
    ],
)
def test_hermes_is_lenient_where_models_are_sloppy(body, expected):
    out = HermesFormat().parse(f"<tool_call>\n{body}\n</tool_call>")
    assert calls_of(out) == [("f", expected)]
    assert out.errors == []


def test_hermes_missing_close_tag_only_accepted_when_complete_and_stopped():
    text = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}'
    assert calls_of(HermesFormat().parse(text, "stop")) == [("f", {"a": 1})]
    cut = HermesFormat().parse(text, "length")
    assert cut.calls == [] and "cut off by the token limit" in cut.errors[0]
    partial = HermesFormat().parse(text[:-3], "stop")
    assert partial.calls == [] and "incomplete" in partial.errors[0]


def test_hermes_text_after_call_is_kept_and_call_accepted():
    out = HermesFormat().parse('<tool_call>\n{"name": "f", "arguments": {}}\nDone soon.')
    assert calls_of(out) == [("f", {})]
    assert out.content == "Done soon."


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("not json", "not a JSON object"),
        ('{"arguments": {}}', 'no "name"'),
        ('{"name": "f", "arguments": [1]}', '"arguments" must be a JSON object'),
        ('{"name": "f", "arguments": "nope"}', "not valid JSON"),
        ('{"name": "f", "arguments": {"a": }}', "not valid JSON"),
    ],
)
def test_hermes_malformed_calls_become_errors_not_exceptions(body, fragment):
    out = HermesFormat().parse(f"<tool_call>\n{body}\n</tool_call>\nAfter.")
    assert out.calls == []
    assert len(out.errors) == 1 and fragment in out.errors[0]
    assert out.content == "After."


def test_hermes_never_shows_half_written_tag_as_text():
    text = "Sure." + CALL
    parser = HermesFormat().parser()
    shown = ""
    for ch in text:
        for ev in parser.feed(ch):
            if ev.type == "text_delta":
                shown += ev.text
        assert "<" not in shown
    parser.finish()
    assert shown == "Sure."


def test_hermes_system_prompt_matches_qwen_template():
    prompt = HermesFormat().system_prompt([get_weather], "Be brief.")
    assert prompt.startswith("Be brief.\n\n# Tools\n\nYou may call one or more functions")
    line = prompt.split("<tools>\n")[1].split("\n</tools>")[0]
    assert json.loads(line) == {"type": "function", "function": get_weather.spec()}
    assert prompt.endswith(
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )
    assert HermesFormat().system_prompt([], "") == "You are a helpful assistant."


def test_hermes_build_prompt_renders_calls_and_groups_tool_responses():
    call = ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})
    call2 = ToolCall(id="c2", name="get_weather", arguments={"city": "Rome"})
    msgs = [
        Message(role="system", content="From history."),
        Message(role="user", content="Weather?"),
        Message(role="assistant", content="Looking.", tool_calls=[call, call2], reasoning="x"),
        Message(role="tool", content="sunny", tool_call_id="c1", name="get_weather"),
        Message(role="tool", content="rainy", tool_call_id="c2", name="get_weather"),
    ]
    prompt = HermesFormat().build_prompt(msgs, [get_weather], "Be brief.")
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[0].text.startswith("Be brief.\n\nFrom history.\n\n# Tools")
    # the current turn's reasoning goes back with its calls (Qwen3's template does this)
    assert prompt[2].text == (
        "<think>\nx\n</think>\n\nLooking.\n" + CALL + "\n" + CALL.replace("Paris", "Rome")
    )
    assert prompt[3].text == (
        "<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrainy\n</tool_response>"
    )


# -- react ----------------------------------------------------------------------------------


def test_react_action_and_final_answer():
    fmt = ReactFormat()
    out = fmt.parse('Thought: need it\nAction: get_weather\nAction Input: {"city": "Paris"}')
    assert calls_of(out) == [("get_weather", {"city": "Paris"})]
    assert out.reasoning == "need it" and out.content == ""
    final = fmt.parse("Thought: I now know the final answer\nFinal Answer: It is sunny.")
    assert final.content == "It is sunny." and final.calls == []
    assert final.reasoning == "I now know the final answer"


def test_react_invented_observation_is_ignored():
    out = ReactFormat().parse('Action: f\nAction Input: {"a": 1}\nObservation: 5\nFinal Answer: 5')
    assert calls_of(out) == [("f", {"a": 1})]
    assert out.content == ""


def test_react_input_text_that_looks_like_labels_stays_in_json():
    args = {"code": "print('Action: x')\nObservation: y\nFinal Answer: z"}
    text = ReactFormat().render_calls([ToolCall(name="python", arguments=args)], "run it")
    assert text.startswith("Thought: run it\nAction: python\nAction Input: {")
    assert calls_of(ReactFormat().parse(text)) == [("python", args)]


def test_react_cut_off_input_is_not_executed():
    out = ReactFormat().parse('Action: f\nAction Input: {"a": "par', "length")
    assert out.calls == []
    assert "cut off by the token limit" in out.errors[0]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Action: f\nAction Input: 12*34", "not a JSON object"),
        ("Action: f\nThought: hm", "not followed by 'Action Input:'"),
        ("Action: f", "has no 'Action Input:'"),
        ('Action Input: {"a": 1}', "without an 'Action:'"),
        ('Action: f\nAction Input: {"a": }', "not valid JSON"),
    ],
)
def test_react_malformed_actions_become_errors(text, fragment):
    out = ReactFormat().parse(text)
    assert out.calls == []
    assert any(fragment in e for e in out.errors), out.errors


def test_react_plain_text_without_labels_is_the_answer():
    assert ReactFormat().parse("Paris is the capital.").content == "Paris is the capital."


def test_react_prompt_and_trace():
    fmt = ReactFormat()
    system = fmt.system_prompt([get_weather], "Be brief.")
    assert "get_weather: Call this tool to interact with the get_weather API." in system
    assert "Action: the action to take, should be one of [get_weather]" in system
    assert system.startswith("Be brief.\n\nAnswer the following questions")
    call = ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})
    msgs = [
        Message(role="user", content="Weather?"),
        Message(role="assistant", content="", reasoning="look it up", tool_calls=[call]),
        Message(role="tool", content="sunny", tool_call_id="c1"),
    ]
    prompt = fmt.build_prompt(msgs, [get_weather])
    assert [m.role for m in prompt] == ["system", "user", "assistant"]
    assert prompt[1].text == "Question: Weather?"
    assert prompt[2].text == (
        'Thought: look it up\nAction: get_weather\nAction Input: {"city": "Paris"}\n'
        "Observation: sunny\n"
    )
    assert fmt.stop_words == ["Observation:"]


# -- registry -------------------------------------------------------------------------------


def test_get_format_by_name_and_errors():
    assert isinstance(get_format("hermes"), HermesFormat)
    assert isinstance(get_format("react"), ReactFormat)
    fmt = ReactFormat()
    assert get_format(fmt) is fmt
    with pytest.raises(RegistryError, match="unknown format 'nope'; known: hermes, react"):
        get_format("nope")
    with pytest.raises(ConfigError):
        get_format(42)  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="already registered"):
        register_format("hermes", HermesFormat)
    register_format("mine", "qwen_agent.formats.react:ReactFormat")
    try:
        assert isinstance(get_format("mine"), ReactFormat)
    finally:
        FORMATS.unregister("mine")


def test_huge_arguments_stream_correctly():
    # a 200 kB argument streamed in 4-character pieces (speed: benchmarks/parser_speed.py)
    code = "x = 1\n" * 35_000
    text = HermesFormat().render_calls([ToolCall(name="python", arguments={"code": code})])
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    out = stream(HermesFormat(), pieces)
    assert out.calls[0].arguments["code"] == code


def test_openai_shaped_tool_dicts_work_wherever_a_tool_dict_does():
    """Both formats take OpenAI's {"type": "function", "function": {...}} like the bare
    dict (ReAct raised KeyError on it, hermes wrapped it twice); other dicts are a
    ConfigError that shows both shapes."""
    from qwen_agent.errors import ConfigError
    from qwen_agent.formats.react import ReactFormat

    bare = {
        "name": "get_time",
        "description": "Local time.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    }
    wrapped = {"type": "function", "function": bare}
    for fmt in (HermesFormat(), ReactFormat()):
        assert fmt.system_prompt([wrapped], "x") == fmt.system_prompt([bare], "x")
    assert '{"type": "function", "function": {"name": "get_time"' in HermesFormat().system_prompt(
        [wrapped]
    )
    for bad in ({"type": "function"}, {"function": "get_time"}, {"description": "no name"}):
        with pytest.raises(ConfigError, match="name|function"):
            HermesFormat().system_prompt([bad])


def test_hermes_history_sends_reasoning_back_only_within_the_current_turn():
    """Qwen3's template rule: earlier turns' reasoning is dropped; the current turn's steps
    (after the last user message) keep theirs, so a multi-step tool loop can go on."""
    call = ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})
    history = [
        Message(role="user", content="Hi"),
        Message(role="assistant", content="Hello!", reasoning="greet them"),
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", tool_calls=[call], reasoning="need the tool"),
        Message(role="tool", tool_call_id="c1", name="get_weather", content="sunny"),
    ]
    prompt = HermesFormat().build_prompt(history, [get_weather])
    texts = [m.text for m in prompt if m.role == "assistant"]
    assert texts[0] == "Hello!"  # the earlier turn's reasoning is not sent back
    assert texts[1].startswith("<think>\nneed the tool\n</think>\n\n<tool_call>")


def test_lenient_json_refuses_non_numbers_and_deep_nesting_wherever_they_are():
    from qwen_agent.formats.base import MAX_ARGUMENT_DEPTH, loads_lenient

    for text in ("NaN", "[1, Infinity]", '{"a": {"b": [2, -Infinity]}}', '{"a": [[NaN]]}'):
        with pytest.raises(ValueError, match="not a JSON number"):
            loads_lenient(text)
    ok = "[" * MAX_ARGUMENT_DEPTH + "]" * MAX_ARGUMENT_DEPTH
    assert loads_lenient(ok) is not None
    too_deep = "[" * (MAX_ARGUMENT_DEPTH + 1) + "]" * (MAX_ARGUMENT_DEPTH + 1)
    with pytest.raises(ValueError, match="nests deeper"):
        loads_lenient(too_deep)
    assert loads_lenient('{"a": [1.5, {"b": "x"}], "c": null}') == {
        "a": [1.5, {"b": "x"}],
        "c": None,
    }


def test_hermes_text_fast_path_matches_whole_parse():
    """Chunks with no '<' skip the state machine; the events must be what one parse of the
    whole text gives, whitespace handling included."""
    fmt = get_format("hermes")
    text = (
        '  Hello  there,\n\n friend.  <tool_call>\n{"name": "f", "arguments": {}}\n'
        "</tool_call>  bye  "
    )
    whole = fmt.parse(text)
    for size in (1, 2, 3, 5, 8):
        parser = fmt.parser()
        for i in range(0, len(text), size):
            parser.feed(text[i : i + size])
        parser.finish()
        got = parser.result()
        assert (got.content, got.calls, got.errors) == (whole.content, whole.calls, whole.errors)
