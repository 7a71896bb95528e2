"""The tool guard: which text may come next inside a hermes tool call."""

from __future__ import annotations

import random
import re
from typing import Literal

import pytest

from qwen_agent import tool
from qwen_agent.formats import get_format
from qwen_agent.formats.guard import ToolGuard, copy_spans
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import Message
from qwen_agent.tool import ToolSpec

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


REQUIRED = {"get_weather": ["city"], "get_time": ["city"], "multiply": ["a", "b"]}


@pytest.fixture
def guard():
    return ToolGuard(TOOLS, REQUIRED)


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
    # after a key's closing quote only the colon may come
    assert guard.targets(OPEN + HEAD + '"city"') == [":"]
    assert guard.targets(OPEN + HEAD + '"city" ') == [":"]
    assert guard.targets(OPEN + HEAD + '"city":') is None
    assert guard.targets(OPEN + HEAD + '"city": "x", "unit": "C", "') is None  # none left
    zero = ToolGuard({"now": []})
    assert zero.targets(OPEN + '{"name": "now", "arguments": {"') is None


def allowed_ids(guard, generated, vocab):
    """The token ids that may come next by the guard's mask, or None when any may."""
    found = guard.mask(generated, vocab)
    if found is None:
        return None
    kind, ids = found
    if kind == "only":
        return ids
    banned = set(ids)
    return [i for i in range(len(vocab)) if i not in banned]


VOCAB = ["\n", '{"', "name", '":', ' "', "get", "_", "weather", "time", '",', ' {"', "city"]
VOCAB += ["unit", '"', " ", '"}}', "mul", "tiply", 'city":', "cit", "x", "<tool_call>"]


def test_allowed_ids_on_a_vocabulary(guard):
    pick = lambda text: [VOCAB[i] for i in allowed_ids(guard, text, VOCAB)]  # noqa: E731
    assert pick("<tool_call>") == ["\n", '{"']
    assert pick(OPEN + '{"name": "') == ["get", "mul"]
    assert pick(OPEN + '{"name": "get_') == ["weather", "time"]
    assert pick(OPEN + '{"name": "get_weather') == ['",', '"']
    # a token may run past the guarded text (city": closes the key and goes on)
    assert pick(OPEN + HEAD + '"') == ["city", "unit", 'city":', "cit"]
    assert allowed_ids(guard, "hello", VOCAB) is None
    # when no token of the vocabulary fits, the guard steps aside instead of blocking
    assert allowed_ids(guard, OPEN + HEAD + '"', ["a", "b"]) is None


def test_no_key_after_the_last_and_no_close_before_the_required_ones(guard):
    vocab = ["1", ", ", ",", '"}', "}", "}}", ' "', '", "', "x", '"', "\n", ",}"]
    pick = lambda text: [vocab[i] for i in allowed_ids(guard, text, vocab)]  # noqa: E731
    mult = OPEN + '{"name": "multiply", "arguments": {'
    # "a" given, "b" required: the object may not close yet; a comma (or a digit) is fine
    assert pick(mult + '"a": 1') == ["1", ", ", ",", "\n"]
    # both given: no comma (another key) but closing is fine
    assert pick(mult + '"a": 1, "b": 2') == ["1", "}", "}}", "\n"]
    # inside a string value a comma or brace is text, but a token may close the string
    assert '", "' not in pick(mult + '"a": 1, "b": "x')  # b is an integer: no string
    assert pick(OPEN + HEAD + '"city": "Oslo", "unit": "x') == [
        "1",
        ", ",
        ",",
        '"}',
        "}",
        "}}",
        ' "',
        "x",
        '"',
        ",}",
    ]
    # "unit" is optional: get_weather may close after "city"
    assert pick(OPEN + HEAD + '"city": "Oslo"') == [", ", ",", "}", "}}", "\n"]
    # no trailing comma
    assert pick(OPEN + HEAD + '"city": "Oslo",') == [' "', '"', "\n"]
    free = ToolGuard(TOOLS)  # without required lists only the extra-key rule applies
    assert "}" in [vocab[i] for i in allowed_ids(free, mult + '"a": 1', vocab)]


TYPED = ToolGuard(
    {"f": ["n", "x", "s", "ok", "xs", "any"]},
    {"f": ["n"]},
    {"f": {"n": "integer", "x": "number", "s": "string", "ok": "boolean", "xs": "array"}},
)
F = OPEN + '{"name": "f", "arguments": {'


@pytest.mark.parametrize(
    ("tail", "good", "bad"),
    [
        ('"n": ', ["12", "-3", "0", "7,", " 4}"], ['"12"', "1.5", "true", "x", "[1]", "01"]),
        ('"n": 12', ["3", ", ", "}", "\n"], [".5", "a", '"', "e3", "-"]),
        ('"n": 1, "x": ', ["1.5", "-0.25", "3e8", "2", "1.", "1e"], ['"1"', ".5", "1.e", "--1"]),
        ('"n": 1, "x": 1', [".5", "e3", "0", "."], ["..", "x", ".e"]),
        ('"n": 1, "s": ', ['"Oslo"', '"', ' "a b'], ["Oslo", "12", "null", "{"]),
        ('"n": 1, "s": "a', ["b", " c", "\\n", '"', '",', '"}}'], ["\n", '"x', '" x']),
        ('"n": 1, "s": "a\\', ["n", '"', "\\", "u00e9"], ["x", "q"]),
        ('"n": 1, "ok": ', ["true", "false", "tr", " f"], ["True", "1", '"true"', "nul"]),
        ('"n": 1, "ok": tr', ["ue", "u", "ue}"], ["ee", "ue x"]),
        ('"n": 1, "xs": ', ["[", '["a", ', "[1]"], ['"a"', "1", "{"]),
        ('"n": 1, "xs": [1, "}', ["]", '", ', "2]", '"]}'], ["\n"]),
        ('"n": 1, "any": ', ['"a"', "1", "[", "{", "null", "true"], ["x", "}"]),
        ('"n": 1}', ["}", "}\n</tool_call>", "}</tool_call>"], ["]", "x", "}}", ", "]),
        ('"n": 1}}', ["\n", "</tool", "\n</tool_call>"], ["x", " hi", "}"]),
    ],
)
def test_values_follow_the_schema_type(tail, good, bad):
    vocab = good + bad
    allowed = allowed_ids(TYPED, F + tail, vocab)
    assert allowed is not None
    assert [vocab[i] for i in allowed] == good, tail


def test_answers_are_cached_per_lexer_state_and_stay_right():
    vocab = ['"', "a", ",", "}", "}}", "1", " "]
    g = ToolGuard({"f": ["s", "t"]}, {"f": ["s", "t"]}, {"f": {"s": "string", "t": "string"}})
    head = OPEN + '{"name": "f", "arguments": {'
    assert g.mask(head + '"s": "abc', vocab) is None  # any token may come in a string
    assert g.mask(head + '"s": "abcdef', vocab) is None
    # the same phase with another key used: the answer differs
    assert [vocab[i] for i in allowed_ids(g, head + '"s": "a"', vocab)] == [",", " "]
    assert [vocab[i] for i in allowed_ids(g, head + '"s": "a", "t": "b"', vocab)] == [
        "}",
        "}}",
        " ",
    ]


def test_the_guard_comes_from_the_formats_constraint_as_data():
    from qwen_agent.llm import CallConstraint

    specs = (ToolSpec.of(get_weather),)
    guard = ToolGuard.for_constraint(HermesFormat().constraint(specs))
    assert guard.tools == {"get_weather": ["city", "unit"]}
    assert guard.required == {"get_weather": {"city"}}
    assert guard.types == {"get_weather": {"city": "string", "unit": "string"}}
    both = HermesFormat().constraint((ToolSpec.of(get_weather), ToolSpec.of(multiply)))
    assert ToolGuard.for_constraint(both).tools == {
        "get_weather": ["city", "unit"],
        "multiply": ["a", "b"],
    }
    # a framing this guard does not know is not guessed at
    other = CallConstraint(tools=specs, open="<call>", close="</call>")
    assert ToolGuard.for_constraint(other) is None
    with pytest.raises(ValueError):
        ToolGuard({})


def test_a_guided_walk_always_yields_a_valid_call():
    """Pick random allowed tokens from a character vocabulary plus some JSON pieces: every
    finished call the parser reads names a listed tool with its required keys and listed
    keys only."""
    free = ['"', ': "v"', ": 1", ' "v"', " 1", ", ", "}}\n</tool_call>"]
    vocab = [chr(c) for c in range(32, 127)] + ["\n", *free]
    fmt = HermesFormat()
    rng = random.Random(0)
    guard = ToolGuard(TOOLS, REQUIRED)
    seen = 0
    for _ in range(300):
        text = "<tool_call>"
        for _ in range(120):
            found = guard.mask(text, vocab)
            if found and found[0] == "only":
                nxt = vocab[rng.choice(found[1])]
                text += nxt
                continue
            # the model's own JSON: open a key, give a value, or go on / close
            if text.endswith(("{", ", ")):
                options = ['"', "}}\n</tool_call>"]
            elif re.search(r'(\{|, )"[^"]*":$', text):
                options = [' "v"', " 1"]
            elif re.search(r'(\{|, )"[^"]*"$', text):
                options = [': "v"', ": 1"]
            else:
                options = [", ", "}}\n</tool_call>"]
            banned = found[1] if found else []
            options = [o for o in options if vocab.index(o) not in banned] or options
            nxt = rng.choice(options)
            text += nxt
            if text.endswith("</tool_call>"):
                break
        parsed = fmt.parse(text, "stop")
        for call in parsed.calls:
            assert call.name in TOOLS
            assert set(REQUIRED[call.name]) <= set(call.arguments) <= set(TOOLS[call.name])
            seen += 1
    assert seen > 20


def test_copy_nudge_follows_spans_of_the_source_from_word_starts():
    g = ToolGuard({"f": ["city"]}, types={"f": {"city": "string"}})
    vocab = ["Dub", "lin", 'lin"', '"', "New", " York", "Dublin", "x", "D", 'New"', "in", "ew"]
    head = OPEN + '{"name": "f", "arguments": {"city": "'
    src = "Weather in New York or Dublin?"

    def copies(value):
        return [vocab[i] for i in g.copy_nudge(head + value, src, vocab)[0]]

    def locked(value):
        return g.copy_nudge(head + value, src, vocab)[1]

    assert copies("") == ["Dub", "New", "Dublin", "D", 'New"', "in"]  # not "ew": mid-word
    assert copies("Dub") == ["lin", 'lin"']
    assert copies("New") == ['"', " York"]  # close at the word's end, or go on
    assert copies("New York") == ['"']
    assert copies("Paris") == []  # not a copy: no nudge
    assert copies("a\\") == []  # inside an escape
    assert g.copy_nudge(OPEN + '{"name": "f", "arguments": {"', src, vocab) == ([], False)
    assert g.copy_nudge("Dub", src, vocab) == ([], False)  # outside a call
    # a copied word is copied whole: locked in the middle of one, free at its end
    assert locked("Dub") and locked("Dubl")
    assert not any(locked(v) for v in ["", "Dublin", "New", "Paris", "ew"])
    assert not locked("Du")  # no token of the vocabulary goes on with "blin": no lock


def test_copy_spans_run_from_word_starts_to_word_ends():
    spans = copy_spans("Rate from GBP to CAD?", max_words=2)
    assert [t for _, t in spans] == [
        "Rate",
        "Rate from",
        "from",
        "from GBP",
        "GBP",
        "GBP to",
        "to",
        "to CAD",
        "CAD",
    ]
    assert spans[4] == (10, "GBP")
    assert [t for _, t in copy_spans("New York, New York")] == [
        "New",
        "New York",
        "New York, New",
        "New York, New York",
        "York",
        "York, New",
        "York, New York",
    ]  # each text once
    assert copy_spans("?!") == [] and copy_spans("") == []


def test_string_start_is_right_after_a_string_arguments_opening_quote():
    g = ToolGuard(
        TOOLS, REQUIRED, {"get_weather": {"city": "string"}, "multiply": {"a": "integer"}}
    )
    assert g.string_start(OPEN + HEAD + '"city": "')
    assert not g.string_start("no call here")
    assert not g.string_start(OPEN + '{"name": "')
    assert not g.string_start(OPEN + HEAD + '"city": "Os')  # the value has started
    assert not g.string_start(OPEN + HEAD + '"city": ')
    assert not g.string_start(OPEN + HEAD + '"city": "Os", "unit": "')  # untyped: any value
    assert not g.string_start(OPEN + '{"name": "multiply", "arguments": {"a": ')


def test_spelling_and_starting_with_on_a_vocabulary(guard):
    vocab = ["Os", "O", "slo", "lo", 'lo"', '"', '"}', "x", ""]
    assert sorted(vocab[i] for i in guard.spelling("Oslo", vocab)) == ["O", "Os"]
    assert [vocab[i] for i in guard.spelling("lo", vocab)] == ["lo"]
    assert guard.spelling("", vocab) == [] and guard.spelling("zzz", vocab) == []
    assert sorted(vocab[i] for i in guard.starting_with('"', vocab)) == ['"', '"}']


def test_tool_variants_list_no_tool_then_each_tool_alone():
    from qwen_agent.bundled.aids import tool_variants
    from qwen_agent.turn import build_request

    convo = [Message(role="user", content="hi")]
    specs = [ToolSpec.of(get_weather), ToolSpec.of(multiply)]
    request = build_request(HermesFormat(), convo, specs, instructions="Be brief.").request
    system = request.messages[0].text
    variants = tool_variants(request)
    assert [name for name, _ in variants] == [None, "get_weather", "multiply"]
    empty, weather, product = (text for _, text in variants)
    assert "<tools>\n</tools>" in empty and "get_weather" not in empty
    for text, name, other in [
        (weather, "get_weather", "multiply"),
        (product, "multiply", "get_weather"),
    ]:
        assert name in text and other not in text
        # all but the block is the prompt as it was
        assert text.rsplit("<tools>", 1)[0] == system.rsplit("<tools>", 1)[0]
        assert text.rsplit("</tools>", 1)[1] == system.rsplit("</tools>", 1)[1]
    # a request with no constraint (ReAct, or tool_choice none) has no variants
    react = build_request(get_format("react"), convo, specs, instructions="").request
    assert tool_variants(react) is None


def test_one_run_of_blanks_between_json_tokens(guard):
    """A model that loops on newlines inside a call cannot: after a blank, the next token
    is what the JSON expects (the colon after a key here), not another blank."""
    vocab = ["\n", " ", ":", ': "', '"', "x"]
    pick = lambda text: [vocab[i] for i in allowed_ids(guard, text, vocab)]  # noqa: E731
    key = OPEN + HEAD + '"city"'
    assert pick(key) == ["\n", " ", ":", ': "']
    assert pick(key + " ") == [":", ': "']
    assert pick(key + "\n") == [":", ': "']
    # inside a string value blanks are text, and stay allowed
    assert {"\n", " "} & set(pick(key + ': "Santa ')) == {" "}


def test_no_call_tag_inside_a_string_value(guard):
    """A call's opening tag inside a value would read as a new call: it is ruled out."""
    vocab = ["<tool_call>", "x<tool_call>", "x", '"', "<", "tool"]
    value = OPEN + HEAD + '"city": "Santa '
    found = guard.mask(value, vocab)
    assert found is not None and found[0] == "ban"
    assert {vocab[i] for i in found[1]} == {"<tool_call>", "x<tool_call>"}


def test_copy_continuations_finish_a_quoted_unit_then_offer_the_next():
    from qwen_agent.formats.guard import copy_continuations

    source = "8 km/h, gusty\nWhat is the wind speed in Santa Cruz?"
    # inside a unit (a word, or a number or code like km/h): its remainder
    assert copy_continuations("The wind sp", source) == (["eed"], True)
    assert copy_continuations("It is 8 km/", source) == (["h"], True)
    # at a unit's end: the next unit with what separates them (a space or a comma)
    assert copy_continuations("It is 8", source) == ([" km/h"], False)
    assert copy_continuations("It is 8 km/h", source) == ([", gusty"], False)
    assert copy_continuations("in Santa", source) == ([" Cruz"], False)
    # the copy ends where the source's line or sentence does
    assert copy_continuations("in Santa Cruz", source) == ([], False)
    assert copy_continuations("gusty", source) == ([], False)
    # a copy that ends in a blank goes on with the next unit
    assert copy_continuations("It is ", source) == (["the"], False)
    # no copy: a word that is no unit start of the source
    assert copy_continuations("It is windy", source) == ([], False)
    assert copy_continuations("Hello ", source) == ([], False)
    # the longest copy decides: "speed in" goes on with " Santa", not another "in"
    assert copy_continuations("wind speed in", source) == ([" Santa"], False)


def test_an_enum_parameter_takes_only_its_listed_values():
    @tool
    def set_alarm(time: str, repeat: Literal["once", "daily", "weekdays"] = "once") -> str:
        """Set an alarm."""
        return "ok"

    guard = ToolGuard.from_specs([set_alarm.spec()])
    vocab = [
        '"',
        "d",
        "da",
        "daily",
        "dai",
        "ly",
        'ly"',
        "weekly",
        "w",
        "weekdays",
        'x"',
        "o",
        "k",
        "kly",
    ]
    head = OPEN + '{"name": "set_alarm", "arguments": {"time": "7:00", "repeat": "'
    pick = lambda text: {vocab[i] for i in allowed_ids(guard, text, vocab)}  # noqa: E731
    assert pick(head) == {"d", "da", "daily", "dai", "w", "weekdays", "o"}
    assert pick(head + "dai") == {"ly", 'ly"'}
    assert '"' in pick(head + "daily") and "d" not in pick(head + "daily")
    assert pick(head + "wee") == {"k"}  # "weekly" is not a listed value
    # the free-text parameter beside it is still the model's
    assert allowed_ids(guard, OPEN + '{"name": "set_alarm", "arguments": {"time": "', vocab) is None


def test_an_array_of_listed_strings_takes_only_listed_items():
    """AgentFabric's builder lists its tools as ``{"type": "array", "items": {"enum": ...}}``;
    a model wrote the builder's own name there before items were guided."""
    spec = {
        "name": "update",
        "parameters": {
            "type": "object",
            "properties": {
                "tools": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["code_interpreter", "image_gen"]},
                    "maxItems": 2,
                },
                "name": {"type": "string"},
            },
        },
    }
    guard = ToolGuard.from_specs([spec])
    vocab = ['"', "code", "_interpreter", "image", "_gen", '",', '"]', "]", ", ", "up", " ", "}"]
    vocab += ['"update_agent_config', "update", '"c', 'ode_interpreter"]']
    head = OPEN + '{"name": "update", "arguments": {"tools": ['
    pick = lambda text: {vocab[i] for i in allowed_ids(guard, text, vocab)}  # noqa: E731
    assert pick(head) == {'"', "]", " ", '"c'}  # an item, or an empty list
    assert pick(head + '"') == {"code", "image"}  # not "update..."
    assert pick(head + '"code') == {"_interpreter"}
    assert pick(head + '"code_interpreter') == {'"', '",', '"]'}
    assert pick(head + '"code_interpreter",') == {'"', " ", '"c'}  # a trailing comma: no ]
    assert pick(head + '"c') == {'ode_interpreter"]'}
    # maxItems: after two items only the end of the list
    two = head + '"code_interpreter", "image_gen"'
    assert pick(two) == {"]", " "}
    # the free-text parameter beside it is the model's
    free = OPEN + '{"name": "update", "arguments": {"tools": [], "name": "'
    assert {"update", "up", "code", "image"} <= pick(free)


def test_lexing_goes_on_from_the_last_step_with_the_same_answers():
    """Feeding a call a character at a time (the incremental path) gives the answers a
    fresh guard gives for the whole text at once."""
    vocab = [chr(c) for c in range(32, 127)] + ["}}\n</tool_call>", '": ']
    text = (
        OPEN + '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}\n</tool_call>'
    )
    stepwise = ToolGuard(TOOLS, REQUIRED)
    for i in range(len(OPEN), len(text) + 1):
        fresh = ToolGuard(TOOLS, REQUIRED)
        assert stepwise.mask(text[:i], vocab) == fresh.mask(text[:i], vocab), text[:i]
        assert stepwise.guiding(text[:i]) == fresh.guiding(text[:i]), text[:i]
    # a closed call is no longer followed: generation may end after it
    assert not stepwise.guiding(text) and not stepwise.guiding(text + "\n")


# -- schema limits (bounds, lengths, patterns, array sizes, enums of any scalar) ------------

LIMITED = [
    {
        "name": "image_gen",
        "parameters": {
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "minLength": 2, "maxLength": 12},
                "width": {"type": "integer", "minimum": 64, "maximum": 2048},
                "scale": {"type": "number", "exclusiveMinimum": 0, "maximum": 20},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "every": {"enum": [1, 4, 12]},
                "style": {"type": "string", "enum": ["photo", "sketch"]},
            },
            "required": ["prompt"],
        },
    }
]
IMG = OPEN + '{"name": "image_gen", "arguments": {"prompt": "a cat", '


def _ok(guard: ToolGuard, text: str) -> bool:
    """Whether the guard's lexer still accepts ``text`` (what a mask's trial does)."""
    _, state, _ = guard._arguments(text)
    return state is not None and not state.bad


@pytest.mark.parametrize(
    ("tail", "ok"),
    [
        ('"width": 512', True),
        ('"width": 2048}', True),
        ('"width": 5355', False),  # past the maximum: no digit more can help
        ('"width": 5', True),  # could still become 512
        ('"width": 32}', False),  # under the minimum once it ends
        ('"width": 0', False),  # 0 starts no integer of 64 or more
        ('"width": -1', False),
        ('"width": 1e3', False),
        ('"scale": 0}', False),  # exclusive minimum
        ('"scale": 0.5}', True),
        ('"scale": 20.5', False),
        ('"scale": 20}', True),
        ('"prompt2": 1', False),
        ('"tags": ["a", "b"]}', True),
        ('"tags": ["a", "b", "c"', False),  # maxItems
        ('"tags": [["x", "y", "z"], "b"]}', True),  # nested items are not top-level items
        ('"code": "EUR"}', True),
        ('"code": "EU"}', False),
        ('"code": "eur', False),  # the pattern cannot match any more
        ('"every": 12}', True),
        ('"every": 1,', True),
        ('"every": 10', False),  # an enum of integers: not a listed value
        ('"every": "4"', False),
        ('"style": "the', False),  # a string enum: not a listed value
    ],
)
def test_schema_limits_are_kept_as_the_value_is_written(tail, ok):
    guard = ToolGuard.from_specs(LIMITED)
    assert _ok(guard, IMG + tail) is ok


def test_string_lengths_are_kept():
    guard = ToolGuard.from_specs(LIMITED)
    head = OPEN + '{"name": "image_gen", "arguments": {"prompt": "'
    assert not _ok(guard, head + 'a"')  # minLength 2
    assert _ok(guard, head + "a" * 12)
    assert not _ok(guard, head + "a" * 13)  # maxLength 12
    vocab = ["aaaa", "a" * 20, '"', '",', "b"]
    allowed = [vocab[i] for i in allowed_ids(guard, head + "a" * 10, vocab)]
    assert "a" * 20 not in allowed and "aaaa" not in allowed and "b" in allowed


def test_the_arguments_may_end_once_the_required_ones_are_written():
    guard = ToolGuard.from_specs(LIMITED)
    vocab = ["}", ", ", ',"', " ", "x"]
    text = OPEN + '{"name": "image_gen", "arguments": {"prompt": "a cat"'
    assert "}" in [vocab[i] for i in allowed_ids(guard, text, vocab)]


def test_no_value_can_write_a_calls_tag():
    guard = ToolGuard(TOOLS, REQUIRED, {"get_weather": {"city": "string"}})
    text = OPEN + HEAD + '"city": "Oslo </tool_call'
    assert not _ok(guard, text + ">")
    vocab = [">", "> x", "x"]
    assert [vocab[i] for i in allowed_ids(guard, text, vocab)] == ["x"]


def test_copy_nudge_and_lookahead_leave_enum_values_alone():
    """The path by which a value outside an enum got through (then an unknown key, with
    the guard stepped aside): the copy nudge and the lookahead chose the user's words for
    an enum parameter."""
    spec = {
        "name": "stats",
        "parameters": {
            "type": "object",
            "properties": {
                "demographic_group": {"type": "string", "enum": ["the elderly", "teens"]},
                "region": {"type": "string"},
            },
        },
    }
    guard = ToolGuard.from_specs([spec])
    head = OPEN + '{"name": "stats", "arguments": {"demographic_group": "'
    vocab = ["the", " elderly", "teens", '"', "x"]
    assert guard.copy_nudge(head, "the numbers for the young ones", vocab) == ([], False)
    assert not guard.string_start(head)
    region = OPEN + '{"name": "stats", "arguments": {"region": "'
    assert guard.string_start(region)


def test_guarded_random_calls_on_a_real_vocabulary_always_meet_their_schema():
    """Property: whatever a model picks among the tokens the guard allows, the call that
    comes out parses and validates against its tool's schema (limits included)."""
    jsonschema = pytest.importorskip("jsonschema")
    transformers = pytest.importorskip("transformers")
    import json

    from qwen_agent.bundled import TINY_AGENT

    tok = transformers.AutoTokenizer.from_pretrained(TINY_AGENT)
    vocab = tok.batch_decode([[i] for i in range(len(tok))])
    specs = LIMITED + [
        {
            "name": "loan",
            "parameters": {
                "type": "object",
                "properties": {
                    "principal": {"type": "number", "minimum": 1, "maximum": 10**6},
                    "compounding_frequency": {"enum": [1, 4, 12, 365]},
                    "note": {"type": "string", "maxLength": 30},
                    "channels": {
                        "type": "array",
                        "items": {"type": "string", "enum": ["mail", "sms", "push"]},
                        "maxItems": 2,
                    },
                },
                "required": ["principal", "compounding_frequency"],
            },
        }
    ]
    # nested values (arrays, objects) are lexed for their brackets and strings only: what
    # they hold is left to the model, so the property is about scalar parameters
    specs[0] = json.loads(json.dumps(specs[0]))
    del specs[0]["parameters"]["properties"]["tags"]
    by_name = {s["name"]: s for s in specs}
    guard = ToolGuard.from_specs(specs)
    rng = random.Random(7)
    finished = 0
    for _ in range(150):
        text = "<tool_call>"
        for _ in range(80):
            found = guard.mask(text, vocab)
            assert found is not None or not guard.guiding(text), text
            if found is None:
                break
            kind, ids = found
            if kind == "only":
                text += vocab[rng.choice(ids)]
            else:
                banned = set(ids)
                i = rng.randrange(len(vocab))
                while i in banned:
                    i = rng.randrange(len(vocab))
                text += vocab[i]
            if "</tool_call>" in text:
                break
        if "</tool_call>" not in text:
            continue
        body = text[len("<tool_call>") : text.index("</tool_call>")]
        try:
            call = json.loads(body)
        except ValueError:
            raise AssertionError(repr(body)) from None
        jsonschema.validate(call["arguments"], by_name[call["name"]]["parameters"])
        finished += 1
    assert finished > 50


def test_nested_values_cannot_write_a_calls_tag_and_decimal_bounds_are_exact():
    spec = {
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {
                "xs": {"type": "array", "items": {"type": "string"}},
                "p": {"type": "number", "minimum": 0.1, "maximum": 0.3},
            },
        },
    }
    guard = ToolGuard.from_specs([spec])
    head = OPEN + '{"name": "f", "arguments": {'
    assert not _ok(guard, head + '"xs": ["a </tool_call>')
    assert not _ok(guard, head + '"xs": ["a", </tool_call>')
    vocab = ["</tool_call>", "</tool", "_call>", "b", '"]']
    allowed = [vocab[i] for i in allowed_ids(guard, head + '"xs": ["a </tool', vocab)]
    assert "_call>" not in allowed and "</tool_call>" not in allowed and "b" in allowed
    assert _ok(guard, head + '"p": 0.1}') and _ok(guard, head + '"p": 0.3}')
    assert not _ok(guard, head + '"p": 0.31')
