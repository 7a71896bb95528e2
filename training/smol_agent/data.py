# ruff: noqa: E501 - tables of wording read better one entry per line
"""Tool-use dialogues for fine-tuning the bundled model, in hermes and ReAct.

Each dialogue lists 1 to 8 tools (built from :mod:`training.smol_agent.families` with a
random name, docstring and parameter keys) and holds one or two exchanges. Kinds:

- ``call``: a request for a listed tool, worded many ways (paraphrases, politeness, terse
  commands, lowercase, typos, numbers in words, values before or after the verb), then
  the call, the tool's result and an answer that quotes it (sometimes the result is an
  error, and the answer says so);
- ``none``: a request for something no listed tool does, most often a near miss (a listed
  tool takes the same kind of value): a short direct answer saying so;
- ``chat``: small talk and general knowledge, answered in a sentence or two;
- ``ask``: a request that lacks a required value: the assistant asks for it;
- ``math``: arithmetic through a listed math tool or ``code_interpreter``, else directly;
- ``image``: "draw ..." through ``image_gen`` when it is listed.

A second exchange follows a first one a quarter of the time. Dialogues are rendered by the
project's own formats and ChatML, so training sees exactly the text the agent sends.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

from qwen_agent.chatml import render_chatml
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.formats.react import ReactFormat
from qwen_agent.messages import Message, ToolCall
from training.smol_agent import vocab as V
from training.smol_agent.builtins import (
    builtin_spec,
    docs_exchange,
    image_result,
    retrieval_spec,
)
from training.smol_agent.chat import CHATS, FACTS
from training.smol_agent.families import FAMILIES, Family, Param, with_clause
from training.smol_agent.nearmiss import OPERATIONS, QUESTIONS

FORMATS = {"hermes": HermesFormat(), "react": ReactFormat()}

#: the share of ``none`` requests (where a listed tool shares a kind of value with the
#: request) that are made near misses on purpose; since step 180 of the v2 run
NEAR_MISS_RATE = 0.7
# of the requests that need no tool (from step 600): another operation in a listed tool's
# domain, and a question about its domain (training/smol_agent/nearmiss.py)
OPERATION_RATE = 0.35
QUESTION_RATE = 0.2
# a search tool or a dictionary may fairly look up a question: no domain questions beside one
LOOKUP_GISTS = {"search the web", "look things up in an encyclopedia", "look up word definitions"}
BUILTIN_NAMES = ("code_interpreter", "image_gen")

# names the held-out set (benchmarks/heldout/) uses: never a training tool's name
HELDOUT_NAMES = {
    "convert_currency",
    "get_stock_price",
    "find_book",
    "define_word",
    "translate",
    "count_words",
    "transform_text",
    "multiply",
    "convert_units",
    "get_recipe",
    "flight_status",
    "track_package",
    "set_alarm",
    "create_reminder",
    "add_todo",
    "add_calendar_event",
    "send_message",
}

INSTRUCTIONS = [
    "",
    "",
    "",
    "You are a helpful assistant.",
    "You are a friendly assistant. Keep answers short.",
    "You help the user with everyday tasks.",
    "Answer briefly and use the tools when they help.",
    "You are Max, a cheerful home assistant.",
    "Be concise.",
]

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def num_words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + num_words(rest))
    return str(n)


@dataclass
class BoundTool:
    family: Family | None
    spec: dict[str, Any]
    keys: dict[str, str]  # slot -> parameter key

    @property
    def name(self) -> str:
        return self.spec["name"]


def build_tool(fam: Family, rng: random.Random) -> BoundTool:
    names = [n for n in fam.names if n not in HELDOUT_NAMES]
    name = rng.choice(names)
    style = rng.random()
    if style < 0.15:
        name = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    props: dict[str, Any] = {}
    keys: dict[str, str] = {}
    required = []
    for p in fam.params:
        key = rng.choice([k for k in p.keys if k not in props] or [p.slot])
        keys[p.slot] = key
        schema: dict[str, Any] = {"type": p.type}
        if p.descs and rng.random() < 0.5:
            schema["description"] = rng.choice(p.descs)
        if not p.required and p.default is not None and rng.random() < 0.7:
            schema["default"] = p.default
        if p.enum:
            schema["enum"] = list(p.enum)
        props[key] = schema
        if p.required:
            required.append(key)
    spec = {
        "name": name,
        "description": rng.choice(fam.descs),
        "parameters": {"type": "object", "properties": props, "required": required},
    }
    return BoundTool(fam, spec, keys)


# the built-in tools as ``Agent`` lists them (from step 415; before: shorter descriptions)
CODE_TOOL = builtin_spec("code_interpreter")
IMAGE_TOOL = builtin_spec("image_gen")
DOCS = "(docs)"  # the mark of a retrieval BoundTool's keys: the documents' names


def docs_tool(rng: random.Random) -> BoundTool:
    spec, names = retrieval_spec(rng)
    return BoundTool(None, spec, {DOCS: ",".join(names)})


MATH_OPS = [
    # names, description, symbol, words, function
    (
        ["add", "add_numbers", "plus", "sum_two"],
        "Add two numbers.",
        "+",
        ["plus", "added to", "and"],
        lambda a, b: a + b,
    ),
    (
        # "multiply" itself is a held-out name (the README's example tool)
        ["times", "product", "mul", "multiply_numbers"],
        "Product of two numbers.",
        "*",
        ["times", "multiplied by", "x"],
        lambda a, b: a * b,
    ),
    (
        ["subtract", "minus", "difference"],
        "Subtract b from a.",
        "-",
        ["minus", "take away"],
        lambda a, b: a - b,
    ),
    (
        ["divide", "division", "div"],
        "Divide a by b.",
        "/",
        ["divided by", "over"],
        lambda a, b: round(a / b, 4) if b else "error: division by zero",
    ),
    (
        ["power", "pow", "raise_to_power"],
        "Raise a to the power b.",
        "**",
        ["to the power of"],
        lambda a, b: a**b,
    ),
    (
        ["modulo", "remainder", "mod"],
        "Remainder of a divided by b.",
        "%",
        ["modulo", "mod"],
        lambda a, b: a % b if b else "error",
    ),
]
MATH_KEYS = [("a", "b"), ("x", "y"), ("first", "second"), ("num1", "num2"), ("left", "right")]


def math_tool(op, rng: random.Random) -> BoundTool:
    ka, kb = rng.choice(MATH_KEYS)
    spec = {
        "name": rng.choice(op[0]),
        "description": op[1],
        "parameters": {
            "type": "object",
            "properties": {ka: {"type": "integer"}, kb: {"type": "integer"}},
            "required": [ka, kb],
        },
    }
    return BoundTool(None, spec, {"a": ka, "b": kb, "op": op[2]})


# -- wording --------------------------------------------------------------------------------

PREFIXES = [
    "hey, ",
    "hi! ",
    "hello, ",
    "ok so ",
    "quick question: ",
    "yo ",
    "hey there. ",
    "um, ",
    "good morning! ",
]
POLITE = ["please ", "could you ", "can you ", "would you please ", "I'd like you to ", "pls "]
SUFFIXES = [
    " please",
    " thanks",
    " thx",
    " thank you!",
    " :)",
    " asap",
    " for me",
    "?",
    "!",
    " please and thank you",
]
CONTEXT = [
    "I'm planning my week. ",
    "Sorry to bother you. ",
    "My friend asked me this. ",
    "Just curious. ",
    "I'm on my phone so quick: ",
    "For work: ",
    "Need this now. ",
    "Another thing. ",
]
IMPERATIVE = re.compile(
    r"^(set|send|find|get|put|add|make|convert|translate|look|search|check|play|turn|switch|book|order|call|text|email|remind|log|record|start|shorten|generate|roll|summarize|feed|tell|give|show|list|create|schedule|write|save|jot|note|track|read|mail|ring|phone|dial|heat|wake|exchange|count|shoot|navigate|route|throw|place|draw|paint)\b",
    re.I,
)


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 1)
    r = rng.random()
    if r < 0.35:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if r < 0.7:
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def reword(text: str, protected: list[str], rng: random.Random) -> tuple[str, bool]:
    """Everyday noise on a request; returns the text and whether it was lowercased."""
    if IMPERATIVE.match(text) and rng.random() < 0.3:
        text = rng.choice(POLITE) + text[0].lower() + text[1:]
    if rng.random() < 0.15:
        text = rng.choice(PREFIXES) + text
    if rng.random() < 0.08:
        text = rng.choice(CONTEXT) + text
    if rng.random() < 0.2:
        text = text.rstrip("?.!") + rng.choice(SUFFIXES)
    if rng.random() < 0.18:
        guard = " ".join(protected).lower()
        words = text.split(" ")
        for _ in range(rng.choice([1, 1, 2])):
            j = rng.randrange(len(words))
            if words[j].lower().strip("?,.!") not in guard:
                words[j] = typo(words[j], rng)
        text = " ".join(words)
    if rng.random() < 0.25:
        text = text.rstrip("?.!")
    lower = rng.random() < 0.3
    if lower:
        text = text.lower()
    elif rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return text, lower


def say(p: Param, value: Any, rng: random.Random) -> str:
    if p.say is not None:
        return p.say(value, rng)
    if p.type == "integer" and isinstance(value, int) and 0 <= value <= 120 and rng.random() < 0.25:
        return num_words(value)
    return str(value)


def fmt_value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


# -- dialogues ------------------------------------------------------------------------------


@dataclass
class Dialogue:
    kind: str
    format: str
    tools: list[dict[str, Any]]
    instructions: str
    messages: list[Message]

    def text(self) -> str:
        fmt = FORMATS[self.format]
        rendered = fmt.build_prompt(self.messages, self.tools, self.instructions)
        text = render_chatml(rendered, add_generation_prompt=False)
        return text + "<|im_end|>\n"

    @property
    def expected_call(self) -> ToolCall | None:
        last = max(i for i, m in enumerate(self.messages) if m.role == "user")
        calls = self.messages[last + 1].tool_calls
        return calls[0] if calls else None


def unlisted_family(tools: list[BoundTool], rng: random.Random) -> Family:
    """The family a ``none`` request asks for: never a listed one, and most of the time
    (``NEAR_MISS_RATE``) a near miss, whose request carries a kind of value a listed tool
    takes (a city, when a weather tool is listed and restaurants are asked for), so the
    model learns that a fitting argument is not a fitting tool."""
    listed = {t.family.gist for t in tools if t.family is not None}
    unlisted = [f for f in FAMILIES if f.gist not in listed]
    slots = {p.slot for t in tools if t.family is not None for p in t.family.params}
    near = [f for f in unlisted if any(p.slot in slots for p in f.params)]
    return rng.choice(near if near and rng.random() < NEAR_MISS_RATE else unlisted)


class Generator:
    def __init__(self, seed: int, react_rate: float = 0.45, second_rate: float = 0.25) -> None:
        self.rng = random.Random(seed)
        self.react_rate = react_rate
        self.second_rate = second_rate
        self._n = 0

    # tools ---------------------------------------------------------------------------
    def toolset(self) -> list[BoundTool]:
        rng = self.rng
        n = rng.choices(range(1, 9), weights=[20, 18, 16, 13, 11, 9, 7, 6])[0]
        out: list[BoundTool] = []
        if rng.random() < 0.15:
            out.append(BoundTool(None, CODE_TOOL, {}))
        if rng.random() < 0.1:
            out.append(BoundTool(None, IMAGE_TOOL, {}))
        if rng.random() < 0.12:
            out.append(math_tool(rng.choice(MATH_OPS), rng))
        fams = rng.sample(FAMILIES, max(0, n - len(out)))
        out += [build_tool(f, rng) for f in fams]
        names = set()
        uniq = []
        for t in out:
            if t.name not in names:
                names.add(t.name)
                uniq.append(t)
        rng.shuffle(uniq)
        return uniq

    # one exchange ----------------------------------------------------------------------
    def exchange(self, kind: str, tools: list[BoundTool], fmt: str) -> list[Message]:
        fams = [t for t in tools if t.family is not None]
        if kind == "call" and fams:
            return self.call(self.rng.choice(fams), fmt)
        if kind == "ask" and fams:
            return self.ask(self.rng.choice(fams), fmt)
        if kind == "math":
            return self.math(tools, fmt)
        if kind == "image":
            return self.image(tools, fmt)
        docs = [t for t in tools if DOCS in t.keys]
        if kind == "docs" and docs:
            return self.docs(docs[0], fmt)
        if kind in ("none", "call", "ask", "docs"):
            return self.none(tools, fmt)
        return self.chat(fmt)

    def _finish(
        self,
        user: str,
        call: ToolCall | None,
        result: Any,
        answer: str,
        thought: str,
        fmt: str,
        direct_thought: str | None = None,
    ) -> list[Message]:
        msgs = [Message(role="user", content=user)]
        react = fmt == "react"
        if call is None:
            reasoning = (direct_thought or "I can answer this directly.") if react else ""
            msgs.append(Message(role="assistant", content=answer, reasoning=reasoning))
            return msgs
        self._n += 1
        cid = f"call_{self._n}"
        call = call.model_copy(update={"id": cid})
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        msgs += [
            Message(role="assistant", content=thought if react else "", tool_calls=[call]),
            Message(role="tool", content=text, tool_call_id=cid, name=call.name),
            Message(
                role="assistant",
                content=answer,
                reasoning="I now know the final answer" if react else "",
            ),
        ]
        return msgs

    def call(self, tool: BoundTool, fmt: str) -> list[Message]:
        rng = self.rng
        fam = tool.family
        assert fam is not None
        template = with_clause(fam, rng.choice(fam.asks), rng)
        slots = re.findall(r"{(\w+)}", template)
        params = {p.slot: p for p in fam.params}
        values = {s: params[s].pool(rng) for s in slots}
        said = {s: say(params[s], values[s], rng) for s in slots}
        user = template.format(**said)
        user, lower = reword(user, list(said.values()), rng)
        args = {}
        for s in slots:
            v = values[s]
            p = params[s]
            if lower and p.type == "string" and p.say is None and not p.enum:
                v = v.lower()
            args[tool.keys[s]] = v
        if rng.random() < 0.05:
            result: Any = {
                "error": rng.choice(
                    ["service unavailable", "not found", "timeout, try again later"]
                )
            }
            answer = rng.choice(
                [
                    "Sorry, {name} failed: {error}.",
                    "I couldn't get that: {error}.",
                    "That didn't work ({error}).",
                ]
            ).format(name=tool.name, **result)
        else:
            result = fam.result(
                dict(zip(slots, values.values(), strict=True)) | {s: values[s] for s in slots}, rng
            )
            fields = {s: fmt_value(said[s] if params[s].say else args[tool.keys[s]]) for s in slots}
            for p in fam.params:
                fields.setdefault(p.slot, fmt_value(p.default) if p.default is not None else "")
            fields.update(
                {k: fmt_value(v) for k, v in (result.items() if isinstance(result, dict) else {})}
            )
            fields["name"] = tool.name
            answer = _format(rng.choice(fam.answers), fields)
        thought = _format(fam.thought, {**{s: str(said[s]) for s in slots}, "name": tool.name})
        if "{" in thought:
            thought = f"I should use {tool.name} for this."
        return self._finish(
            user, ToolCall(name=tool.name, arguments=args), result, answer, thought, fmt
        )

    def ask(self, tool: BoundTool, fmt: str) -> list[Message]:
        rng = self.rng
        fam = tool.family
        assert fam is not None
        need = [p for p in fam.params if p.required]
        p = rng.choice(need)
        key = tool.keys[p.slot].replace("_", " ")
        user = rng.choice(
            ["can you {g}?", "I want to {g}", "{g}", "help me {g}", "I need you to {g} for me"]
        ).format(g=fam.gist)
        user, _ = reword(user, [], rng)
        answer = rng.choice(
            [
                "Sure. What {k} should I use?",
                "Happy to. Which {k}?",
                "Of course, what's the {k}?",
                "I can do that. Could you tell me the {k}?",
            ]
        ).format(k=key)
        return self._finish(
            user,
            None,
            None,
            answer,
            "",
            fmt,
            direct_thought=f"I need the {key} before I can call {tool.name}.",
        )

    def none(self, tools: list[BoundTool], fmt: str) -> list[Message]:
        rng = self.rng
        r = rng.random()
        if r < OPERATION_RATE:  # another operation in a listed tool's domain (from step 600)
            out = self.operation(tools, fmt)
            if out:
                return out
        elif r < OPERATION_RATE + QUESTION_RATE:  # a question about its domain (step 600)
            out = self.question(tools, fmt)
            if out:
                return out
        fam = unlisted_family(tools, rng)
        user = self._filled(fam, rng.choice(fam.asks))
        answer = rng.choice(
            [
                "Sorry, I can't {g} with the tools I have.",
                "I don't have a tool to {g}, so I can't help with that one.",
                "None of my tools can {g}, sorry.",
                "I'm not able to {g} here.",
                "Unfortunately I can't {g}. I can help with other things, though.",
            ]
        ).format(g=fam.gist)
        return self._finish(
            user,
            None,
            None,
            answer,
            "",
            fmt,
            direct_thought=f"None of the listed tools can {fam.gist}.",
        )

    def _filled(self, fam: Family, template: str) -> str:
        """A request from ``template``, its slots said as people say values from the
        family's pools, with everyday noise."""
        params = {p.slot: p for p in fam.params}
        said = {
            s: say(params[s], params[s].pool(self.rng), self.rng)
            for s in re.findall(r"{(\w+)}", template)
        }
        return reword(template.format(**said), list(said.values()), self.rng)[0]

    def operation(self, tools: list[BoundTool], fmt: str) -> list[Message] | None:
        """A request for something a listed tool's domain holds but the tool does not do
        ("cancel my alarm" with only an alarm setter); None when no listed tool has one."""
        rng = self.rng
        listed = {t.family.gist for t in tools if t.family is not None}
        choices = [
            (t, entry)
            for t in tools
            if t.family is not None
            for entry in OPERATIONS.get(t.family.gist, [])
            if not set(*entry[2:]) & listed
        ]
        if not choices:
            return None
        tool, (asks, cannot, *_) = rng.choice(choices)
        fam = tool.family
        assert fam is not None
        user = self._filled(fam, rng.choice(asks))
        answer = rng.choice(
            [
                "Sorry, I can't {c}. {n} can only {g}.",
                "I can {g}, but I can't {c} with the tools I have.",
                "That's not something I can do: my {n} tool can {g}, not {c}.",
                "I'm not able to {c} here. I can {g} if that helps.",
            ]
        ).format(c=cannot, g=fam.gist, n=tool.name)
        return self._finish(
            user,
            None,
            None,
            answer,
            "",
            fmt,
            direct_thought=f"{tool.name} can {fam.gist}, not {cannot}; no listed tool fits.",
        )

    def question(self, tools: list[BoundTool], fmt: str) -> list[Message] | None:
        """A question about a listed tool's domain that general knowledge answers; None
        when no listed tool has one, or a search tool could fairly look it up."""
        rng = self.rng
        listed = {t.family.gist for t in tools if t.family is not None}
        # documents or a real API operation might hold the answer: not those
        other = [
            t
            for t in tools
            if t.family is None and not t.keys.get("op") and t.name not in BUILTIN_NAMES
        ]
        if listed & LOOKUP_GISTS or other:
            return None
        choices = [
            q for t in tools if t.family is not None for q in QUESTIONS.get(t.family.gist, [])
        ]
        if not choices:
            return None
        asks, answers = rng.choice(choices)
        user, _ = reword(rng.choice(asks), [], rng)
        return self._finish(
            user,
            None,
            None,
            rng.choice(answers),
            "",
            fmt,
            direct_thought="This is a general question I can answer myself; no tool is needed.",
        )

    def chat(self, fmt: str) -> list[Message]:
        rng = self.rng
        if rng.random() < 0.55:
            users, answers = rng.choice(CHATS)
            thought = "This is small talk; no tool is needed."
        else:
            users, answers = rng.choice(FACTS)
            thought = "I know this; no tool is needed."
        user, _ = reword(rng.choice(users), [], rng)
        return self._finish(user, None, None, rng.choice(answers), "", fmt, direct_thought=thought)

    def math(self, tools: list[BoundTool], fmt: str) -> list[Message]:
        rng = self.rng
        named = [t for t in tools if t.keys.get("op")]
        code = any(t.name == "code_interpreter" for t in tools)
        by_code = code and not named and rng.random() < 0.45
        if (named and rng.random() < 0.7) or by_code:
            t = rng.choice(named) if named else None
            op = (
                next(o for o in MATH_OPS if o[2] == t.keys["op"])
                if t is not None
                else rng.choice(MATH_OPS[:4] + MATH_OPS[1:2])  # x more often than the rest
            )
            a, b = rng.randint(2, 999), rng.randint(2, 99 if op[2] == "**" else 999)
            if op[2] == "**":
                a, b = rng.randint(2, 12), rng.randint(2, 5)
            sa = num_words(a) if a <= 100 and rng.random() < 0.25 else str(a)
            sb = num_words(b) if b <= 100 and rng.random() < 0.25 else str(b)
            user = rng.choice(
                [
                    "What is {a} {s} {b}?",
                    "{a} {s} {b}",
                    "what's {a} {w} {b}",
                    "calculate {a} {w} {b}",
                    "Can you work out {a} {s} {b}?",
                    "how much is {a} {w} {b}",
                ]
            ).format(a=sa, b=sb, s=op[2], w=rng.choice(op[3]))
            user, _ = reword(user, [sa, sb], rng)
            res = op[4](a, b)
            if t is None:  # the code interpreter computes it, as Python prints it
                res = eval(f"{a} {op[2]} {b}")  # noqa: S307 - our own two integers
                call = ToolCall(
                    name="code_interpreter", arguments={"code": f"print({a} {op[2]} {b})"}
                )
                ans = rng.choice(["{a} {s} {b} = {r}.", "The answer is {r}.", "It's {r}."])
                return self._finish(
                    user,
                    call,
                    f"{res}\n",
                    ans.format(a=a, b=b, s=op[2], r=res),
                    "I'll compute this with Python.",
                    fmt,
                )
            call = ToolCall(name=t.name, arguments={t.keys["a"]: a, t.keys["b"]: b})
            ans = rng.choice(["{a} {s} {b} = {r}.", "The answer is {r}.", "It's {r}."]).format(
                a=a, b=b, s=op[2], r=res
            )
            return self._finish(
                user, call, str(res), ans, f"I'll use {t.name} with {a} and {b}.", fmt
            )
        nums = [rng.randint(1, 500) for _ in range(rng.randint(2, 6))]
        task = rng.choice(
            [
                (
                    "What is the average of {l}?",
                    "print(sum({v}) / len({v}))",
                    lambda v: round(sum(v) / len(v), 2),
                ),
                ("sum of {l}", "print(sum({v}))", sum),
                ("Sort these numbers: {l}", "print(sorted({v}))", sorted),
                ("what's the largest of {l}", "print(max({v}))", max),
                ("multiply {x} by {y} and add {z}", "print({x} * {y} + {z})", None),
                ("What is {x} squared?", "print({x} ** 2)", None),
                ("What's {x} times {y} minus {z}?", "print({x} * {y} - {z})", None),
                ("Compute {x}% of {y}", "print({x} / 100 * {y})", None),
            ]
        )
        x, y, z = nums[0], nums[1 % len(nums)], rng.randint(1, 99)
        lst = ", ".join(map(str, nums))
        user = task[0].format(l=lst, x=x, y=y, z=z)
        if code and rng.random() < 0.25:  # people name the tool they want
            lead = rng.choice(
                [
                    "Use Python: ",
                    "use python to work this out: ",
                    "With code, ",
                    "run some code - ",
                    "Using the code interpreter, ",
                ]
            )
            user = lead + user[0].lower() + user[1:]
        code_src = task[1].format(v=nums, x=x, y=y, z=z)
        value = task[2](nums) if task[2] else eval(code_src[6:-1])  # noqa: S307 - our own arithmetic
        user, _ = reword(user, [lst, str(x), str(y)], rng)
        if code:
            call = ToolCall(name="code_interpreter", arguments={"code": code_src})
            ans = rng.choice(["The result is {v}.", "It's {v}.", "{v}"]).format(v=value)
            return self._finish(
                user, call, f"{value}\n", ans, "I'll compute this with Python.", fmt
            )
        # No listed tool can compute it. A model this small writes wrong numbers when it
        # answers arithmetic itself (step 290 said 12 * 34 was 3412), so it says so instead.
        answer = rng.choice(
            [
                "I can't calculate that reliably without a calculator or code tool.",
                "I don't have a tool here that can compute that, so I'd rather not guess.",
                "None of my tools can do that calculation, and I might get it wrong by hand.",
            ]
        )
        return self._finish(
            user,
            None,
            None,
            answer,
            "",
            fmt,
            direct_thought="No listed tool can compute this; I should not guess a number.",
        )

    def docs(self, tool: BoundTool, fmt: str) -> list[Message]:
        """A question the user's documents answer: retrieval, then the cited fact."""
        user, args, result, answer, thought = docs_exchange(self.rng, tool.keys[DOCS].split(","))
        user, _ = reword(user, [], self.rng)
        call = ToolCall(name=tool.name, arguments=args)
        return self._finish(user, call, result, answer, thought, fmt)

    def image(self, tools: list[BoundTool], fmt: str) -> list[Message]:
        rng = self.rng
        subject = rng.choice(V.DRAW_SUBJECTS)
        user = rng.choice(
            [
                "draw {s}",
                "Can you draw {s}?",
                "generate an image of {s}",
                "paint {s}",
                "make a picture of {s}",
                "I'd love a picture of {s}",
                "show me {s}",
                "create an illustration of {s}",
            ]
        ).format(s=subject)
        user, lower = reword(user, [subject], rng)
        if any(t.name == "image_gen" for t in tools):
            call = ToolCall(name="image_gen", arguments={"prompt": subject})
            result = image_result(subject, rng)
            ans = rng.choice(
                ["Here is {s}.", "Done! Here's your picture of {s}.", "I drew {s} for you."]
            ).format(s=subject)
            return self._finish(
                user, call, result, ans, "I'll generate the image with image_gen.", fmt
            )
        ans = rng.choice(
            [
                "Sorry, I can't draw pictures with the tools I have.",
                "I don't have an image tool here, so I can't draw that.",
            ]
        )
        return self._finish(
            user, None, None, ans, "", fmt, direct_thought="No listed tool can make images."
        )

    # a whole dialogue ----------------------------------------------------------------------
    def kind(self) -> str:
        return self.rng.choices(
            ["call", "none", "chat", "ask", "math", "image"], weights=[44, 19, 18, 5, 9, 5]
        )[0]

    def dialogue(self) -> Dialogue:
        rng = self.rng
        fmt = "react" if rng.random() < self.react_rate else "hermes"
        tools = self.toolset() if rng.random() < 0.93 else []
        kind = self.kind()
        if kind == "image" and rng.random() < 0.7 and not any(t.name == "image_gen" for t in tools):
            tools.insert(rng.randrange(len(tools) + 1), BoundTool(None, IMAGE_TOOL, {}))
        if (
            kind == "math"
            and rng.random() < 0.6
            and not any(t.keys.get("op") or t.name == "code_interpreter" for t in tools)
        ):
            extra = (
                BoundTool(None, CODE_TOOL, {})
                if rng.random() < 0.5
                else math_tool(rng.choice(MATH_OPS), rng)
            )
            tools.insert(rng.randrange(len(tools) + 1), extra)
        msgs: list[Message] = []
        if rng.random() < self.second_rate:
            msgs += self.exchange(self.kind(), tools, fmt)
        msgs += self.exchange(kind, tools, fmt)
        return Dialogue(kind, fmt, [t.spec for t in tools], rng.choice(INSTRUCTIONS), msgs)


def _format(template: str, fields: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: fields.get(m.group(1), m.group(0)), template)


def dialogues(n: int, seed: int, **kw: Any) -> list[Dialogue]:
    g = Generator(seed, **kw)
    return [g.dialogue() for _ in range(n)]


if __name__ == "__main__":
    import sys

    for d in dialogues(
        int(sys.argv[1]) if len(sys.argv) > 1 else 3,
        seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0,
    ):
        print(f"===== {d.kind} {d.format}")
        print(d.text())
