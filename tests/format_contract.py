"""The contract every tool-call format passes (cf. vLLM's tool-parser common tests).

A test class sets ``fmt`` and ``examples`` and inherits :class:`FormatContract`:
streamed parse equals whole parse for every chunking, text is only emitted when certain,
render -> parse round trips for any JSON arguments, and ``parse`` never raises.
"""

from __future__ import annotations

import random
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_agent.events import CallParseError, ReasoningDelta, TextDelta, ToolCallEvent
from qwen_agent.formats import ParsedOutput, ToolFormat
from qwen_agent.messages import ToolCall

# JSON values with the characters that break naive parsers
_tricky = st.sampled_from(
    [
        "</tool_call>",
        "<tool_call>",
        "Action:",
        "\nObservation:",
        "}",
        "{",
        '"',
        "'",
        "\\",
        "\n",
        "Final Answer:",
        "```",
        "<think>",
        "é",
        "数学",
        "🙂",
        "\u2028",
        "null",
    ]
)
_text = st.lists(st.one_of(st.text(max_size=12), _tricky), max_size=5).map("".join)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)
    ),
    max_leaves=12,
)
arguments = st.dictionaries(_text, json_values, max_size=5)
tool_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
calls_st = st.lists(
    st.builds(lambda n, a: ToolCall(name=n, arguments=a), tool_names, arguments),
    min_size=1,
    max_size=3,
)
plain_content = st.text(string.ascii_letters + string.digits + " ,.?!", max_size=40).map(str.strip)


# each format class runs the same mixin methods: that is the point, not a flakiness risk
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.differing_executors]


def key(out: ParsedOutput) -> tuple[Any, ...]:
    return (out.content, [(c.name, c.arguments) for c in out.calls], out.errors, out.reasoning)


def split_at(text: str, cuts: list[int]) -> list[str]:
    cuts = sorted({c % (len(text) + 1) for c in cuts})
    pieces, prev = [], 0
    for c in [*cuts, len(text)]:
        pieces.append(text[prev:c])
        prev = c
    return pieces


def stream(fmt: ToolFormat, pieces: list[str], finish: str = "stop") -> ParsedOutput:
    """Feed pieces; check at every step that what was emitted is a prefix of the end."""
    whole = fmt.parse("".join(pieces), finish)
    parser = fmt.parser()
    text, reasoning, calls, errors = "", "", [], []
    for i, piece in enumerate([*pieces, None]):
        events = parser.feed(piece) if piece is not None else parser.finish(finish)
        for ev in events:
            if isinstance(ev, TextDelta):
                text += ev.text
            elif isinstance(ev, ReasoningDelta):
                reasoning += ev.text
            elif isinstance(ev, ToolCallEvent):
                calls.append((ev.call.name, ev.call.arguments))
            elif isinstance(ev, CallParseError):
                errors.append(ev.message)
        assert whole.content.startswith(text), (i, text, whole.content)
        assert whole.reasoning.startswith(reasoning), (i, reasoning, whole.reasoning)
        assert [(c.name, c.arguments) for c in whole.calls][: len(calls)] == calls
    assert (text, calls, errors, reasoning) == (
        whole.content,
        [(c.name, c.arguments) for c in whole.calls],
        whole.errors,
        whole.reasoning,
    )
    result = parser.result()
    assert key(result) == key(whole)
    return result


# -- Qwen3 thinking: the shapes of vLLM's reasoning-parser and hermes tool-parser cases ----

#: a backend whose chat template opens <think> in the prompt (Qwen3-Thinking-2507, QwQ,
#: Qwen3.5) starts the reply's text with this, so the parser sees the shape an opening
#: <think> in the output has
OPENED = "<think>\n"


def reasoning_shapes(fmt: ToolFormat) -> list[tuple[str, dict[str, Any]]]:
    """(model output, what it means) for every way Qwen models think, with the calls
    written the format's way. ``errors`` holds words each error must contain."""
    rm = fmt.render_calls([ToolCall(name="rm", arguments={"path": "/"})])
    weather = fmt.render_calls([ToolCall(name="get_weather", arguments={"city": "Paris"})])
    none: list[str] = []
    return [
        # the prompt opened the reasoning: the output only closes it
        (
            OPENED + "The user wants a sum.\n</think>\n\nIt is 4.",
            dict(reasoning="The user wants a sum.", content="It is 4.", calls=[], errors=none),
        ),
        # a call only drafted while thinking never runs; the answer after it stands
        (
            OPENED + f"Maybe {rm} no, wait.</think>I will not do that.",
            dict(reasoning="Maybe", content="I will not do that.", calls=[], errors=none),
        ),
        (f"<think>{rm}</think>\nNo.", dict(reasoning="rm", content="No.", calls=[], errors=none)),
        # reasoning, then the real call
        (
            f"<think>\nI need the weather.\n</think>\n\n{weather}",
            dict(reasoning="I need the weather.", content="", calls=["get_weather"], errors=none),
        ),
        (
            OPENED + f"I need the weather.</think>\n{weather}",
            dict(reasoning="I need the weather.", content="", calls=["get_weather"], errors=none),
        ),
        # a model that forgot to close its thought: no call runs, and the model is told
        (
            f"<think>\nLet me call it. {weather}",
            dict(
                reasoning="Let me call it.",
                content="",
                calls=[],
                errors=["not closed", "1 tool call", "not run"],
            ),
        ),
        (
            OPENED + "still thinking",
            dict(reasoning="still thinking", content="", calls=[], errors=["not closed"]),
        ),
        # no reasoning, an empty one, one the prompt opened and the output closed at once
        (
            "No thinking at all.",
            dict(reasoning="", content="No thinking at all.", calls=[], errors=none),
        ),
        ("<think></think>Hi", dict(reasoning="", content="Hi", calls=[], errors=none)),
        (
            OPENED + "</think>\n\nDirect.",
            dict(reasoning="", content="Direct.", calls=[], errors=none),
        ),
        (
            OPENED + "Line one.\nLine two.\n</think>\nAnswer one.\nAnswer two.",
            dict(
                reasoning="Line one.\nLine two.",
                content="Answer one.\nAnswer two.",
                calls=[],
                errors=none,
            ),
        ),
        # vLLM's Qwen3 reasoning-parser cases (tests/reasoning/test_qwen3_reasoning_parser.py),
        # re-typed; where vLLM takes a <tool_call> in an unclosed reasoning as its implicit
        # end and returns the call, here it is a draft that does not run (issue 15's rule)
        (
            OPENED + "This is a reasoning section</think>This is the rest",
            dict(
                reasoning="This is a reasoning section",
                content="This is the rest",
                calls=[],
                errors=none,
            ),
        ),
        (
            OPENED + "This is a reasoning section</think>",
            dict(
                reasoning="This is a reasoning section",
                content="",
                calls=[],
                errors=["no answer or tool call"],
            ),
        ),
        (
            "<think>This is a reasoning\nsection</think>This is the rest\nThat",
            dict(
                reasoning="This is a reasoning\nsection",
                content="This is the rest\nThat",
                calls=[],
                errors=none,
            ),
        ),
        (
            OPENED + "This is a reasoning section",
            dict(
                reasoning="This is a reasoning section", content="", calls=[], errors=["not closed"]
            ),
        ),
        (
            OPENED + f"I need to read the file.\n\n{rm}",
            dict(
                reasoning="I need to read the file.",
                content="",
                calls=[],
                errors=["not closed", "1 tool call"],
            ),
        ),
        # a call inside a closed thought, and nothing after it: the model is told
        (
            f"<think>{weather}</think>",
            dict(
                reasoning="get_weather",
                content="",
                calls=[],
                errors=["no answer or tool call after </think>", "1 tool call"],
            ),
        ),
        (
            f"<think>Two: {weather} {rm}</think>\n\n",
            dict(reasoning="Two:", content="", calls=[], errors=["2 tool calls", "were not run"]),
        ),
    ]


class FormatContract:
    fmt: ToolFormat
    #: representative model outputs: answers, calls, malformed calls, cut-offs
    examples: list[str] = []

    def test_stream_equals_whole_for_every_chunk_size(self) -> None:
        for text in self.examples:
            for size in (1, 2, 3, 5, 8, 13, 64):
                pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
                for finish in ("stop", "length"):
                    stream(self.fmt, pieces, finish)

    def test_reasoning_shapes_whole_and_streamed(self) -> None:
        rng = random.Random(99)
        for text, want in reasoning_shapes(self.fmt):
            splits = [[text[i : i + n] for i in range(0, len(text), n)] for n in (1, 2, 3, 7, 64)]
            splits += [split_at(text, [rng.randrange(len(text) + 1) for _ in range(6)])]
            for pieces in splits:
                out = stream(self.fmt, pieces)
                assert out.content == want["content"], (text, out)
                assert [c.name for c in out.calls] == want["calls"], (text, out)
                assert want["reasoning"] in out.reasoning, (text, out)
                assert "</think>" not in out.content + out.reasoning, (text, out)
                if want["errors"]:
                    assert len(out.errors) == 1, (text, out.errors)
                    for words in want["errors"]:
                        assert words in out.errors[0], (text, out.errors)
                else:
                    assert out.errors == [], (text, out.errors)

    def test_reasoning_shapes_at_every_split_point(self) -> None:
        for text, _ in reasoning_shapes(self.fmt):
            for cut in range(len(text) + 1):
                stream(self.fmt, [text[:cut], text[cut:]])

    def test_stream_equals_whole_for_random_splits(self) -> None:
        rng = random.Random(1234)
        for text in self.examples:
            for _ in range(40):
                cuts = [rng.randrange(len(text) + 1) for _ in range(rng.randrange(1, 12))]
                stream(self.fmt, split_at(text, cuts))

    @settings(deadline=None, suppress_health_check=_SUPPRESS)
    @given(calls=calls_st, content=plain_content, cuts=st.lists(st.integers(0, 10**6)))
    def test_render_parse_round_trip(self, calls: list[ToolCall], content: str, cuts: list[int]):
        text = self.fmt.render_calls(calls, content)
        out = self.fmt.parse(text)
        assert [(c.name, c.arguments) for c in out.calls] == [(c.name, c.arguments) for c in calls]
        assert out.errors == []
        streamed = stream(self.fmt, split_at(text, cuts))
        assert [(c.name, c.arguments) for c in streamed.calls] == [
            (c.name, c.arguments) for c in calls
        ]

    @settings(deadline=None, suppress_health_check=_SUPPRESS)
    @given(
        text=st.text(max_size=200),
        cuts=st.lists(st.integers(0, 10**6), max_size=6),
        finish=st.sampled_from(["stop", "length"]),
    )
    def test_parse_never_raises_on_random_text(self, text: str, cuts: list[int], finish: str):
        stream(self.fmt, split_at(text, cuts), finish)

    @settings(deadline=None, suppress_health_check=_SUPPRESS)
    @given(data=st.data())
    def test_parse_never_raises_on_mangled_examples(self, data: st.DataObject) -> None:
        text = data.draw(st.sampled_from(self.examples))
        # drop, duplicate or insert a few characters of a real example
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(text)))
            op = data.draw(st.sampled_from(["drop", "dup", "insert"]))
            if op == "drop":
                text = text[:i] + text[i + 1 :]
            elif op == "dup":
                text = text[:i] + text[i : i + 5] + text[i:]
            else:
                text = text[:i] + data.draw(_tricky) + text[i:]
        cuts = data.draw(st.lists(st.integers(0, 10**6), max_size=6))
        stream(self.fmt, split_at(text, cuts), data.draw(st.sampled_from(["stop", "length"])))
