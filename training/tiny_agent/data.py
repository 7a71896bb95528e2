"""Synthetic multi-turn tool-use dialogues for the bundled tiny agent model.

Every dialogue is rendered with the project's own ``HermesFormat`` and ChatML, so the model
is trained on exactly the text the agent sends at run time. Kinds of dialogue:

- ``lookup``: pick the right tool among several listed ones (names, parameter keys and
  descriptions are made up from word lists, so the model learns to copy them from the
  ``<tools>`` block) and copy the argument values from the question;
- ``math``: arithmetic with a custom math tool (``multiply(a, b)`` ...) when one is listed,
  else a ``code_interpreter`` call with Python code;
- ``data``: averages, sums, sorting -> ``code_interpreter``;
- ``image``: "draw / paint / generate an image of ..." -> ``image_gen`` with the prompt;
- ``chat``: greetings, facts and questions no listed tool can answer -> a direct answer;
- ``builder``: AgentFabric's "make an agent that ..." -> ``update_agent_config``.

After a ``<tool_response>`` the assistant gives a final answer that uses the result.
``split="eval"`` draws from held-out subjects (so held-out tool names and keys).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent.chatml import render_chatml
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import Message, ToolCall
from qwen_agent.tool import ToolSpec

FMT = HermesFormat()

# -- vocabulary -----------------------------------------------------------------------------

CITIES = [
    "Paris",
    "Tokyo",
    "London",
    "Berlin",
    "Madrid",
    "Rome",
    "Cairo",
    "Lima",
    "Oslo",
    "Seoul",
    "Sydney",
    "Toronto",
    "Boston",
    "Chicago",
    "Denver",
    "Dublin",
    "Vienna",
    "Prague",
    "Lisbon",
    "Athens",
    "Nairobi",
    "Mumbai",
    "Delhi",
    "Bangkok",
    "Hanoi",
    "Manila",
    "Jakarta",
    "Santiago",
    "Bogota",
    "Havana",
    "Warsaw",
    "Zurich",
    "Helsinki",
    "Istanbul",
    "Dubai",
    "Doha",
    "Riyadh",
    "Tehran",
    "Kyiv",
    "Minsk",
    "Riga",
    "Tallinn",
    "Auckland",
    "Perth",
    "Austin",
    "Seattle",
    "Miami",
    "Atlanta",
    "Phoenix",
    "Quebec",
]
COMPANIES = [
    "Apple",
    "Google",
    "Tesla",
    "Amazon",
    "Nvidia",
    "Intel",
    "Samsung",
    "Sony",
    "Toyota",
    "Nike",
    "Adidas",
    "Netflix",
    "Spotify",
    "Oracle",
    "IBM",
    "Siemens",
]
TICKERS = [
    "AAPL",
    "GOOG",
    "TSLA",
    "AMZN",
    "NVDA",
    "INTC",
    "MSFT",
    "META",
    "NFLX",
    "ORCL",
    "IBM",
    "SONY",
    "NKE",
    "BABA",
    "AMD",
    "UBER",
]
CURRENCIES = ["USD", "EUR", "JPY", "GBP", "CNY", "CHF", "CAD", "AUD", "INR", "KRW"]
LANGUAGES = [
    "French",
    "German",
    "Spanish",
    "Italian",
    "Japanese",
    "Chinese",
    "Korean",
    "Russian",
    "Arabic",
    "Portuguese",
    "Dutch",
    "Swedish",
]
PHRASES = [
    "good morning",
    "thank you very much",
    "where is the station",
    "I love music",
    "see you tomorrow",
    "how much is this",
    "the weather is nice",
    "happy birthday",
    "open the window",
    "I am hungry",
    "what time is it",
    "nice to meet you",
]
PEOPLE = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Emma",
    "Frank",
    "Grace",
    "Henry",
    "Ivy",
    "Jack",
    "Kate",
    "Leo",
    "Mia",
    "Noah",
    "Olivia",
    "Paul",
]
FOODS = [
    "pasta",
    "pizza",
    "curry",
    "sushi",
    "tacos",
    "pancakes",
    "lasagna",
    "ramen",
    "salad",
    "soup",
    "bread",
    "dumplings",
    "risotto",
    "paella",
    "burritos",
    "noodles",
]
THINGS = [
    "laptop",
    "bicycle",
    "phone",
    "camera",
    "guitar",
    "watch",
    "backpack",
    "lamp",
    "printer",
    "keyboard",
    "monitor",
    "tent",
    "kettle",
    "chair",
    "desk",
    "headphones",
]
TOPICS = [
    "space",
    "climate",
    "football",
    "music",
    "elections",
    "science",
    "art",
    "travel",
    "health",
    "movies",
    "economy",
    "technology",
    "history",
    "cooking",
    "fashion",
    "games",
]
DATES = [f"2025-{m:02d}-{d:02d}" for m in range(1, 13) for d in (3, 9, 14, 21, 28)]

VALUES: dict[str, list[str]] = {
    "city": CITIES,
    "company": COMPANIES,
    "ticker": TICKERS,
    "currency": CURRENCIES,
    "language": LANGUAGES,
    "phrase": PHRASES,
    "person": PEOPLE,
    "food": FOODS,
    "thing": THINGS,
    "topic": TOPICS,
    "date": DATES,
}


_ONSETS = [
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "cl",
    "dr",
    "fl",
    "gr",
    "pl",
    "st",
    "tr",
    "sh",
    "ch",
    "th",
    "qu",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "x", "ck", "nd", "st"]


def pseudo_word(rng: random.Random) -> str:
    """A made-up word: the model must copy it, it cannot have memorized it."""
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        for _ in range(rng.randrange(1, 4))
    )


#: real English words for made-up tool domains (``word_rate``): a model that only saw
#: made-up syllables in tool names copes badly with real words it never saw in a name. The
#: list (``words.txt``, frequent English words) has no word of the eval split's subjects or
#: keys (tests/test_training.py checks).
WORDS = [
    w
    for w in (Path(__file__).with_name("words.txt")).read_text(encoding="utf-8").split("\n")
    if w and not w.startswith("#")
]


def random_value(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return pseudo_word(rng).capitalize()
    if r < 0.6:
        return pseudo_word(rng)
    if r < 0.8:
        return f"{pseudo_word(rng)} {pseudo_word(rng)}"
    return str(rng.randrange(1, 10_000))


@dataclass
class Subject:
    """A made-up tool domain: the phrase users say, the parameters and value kinds."""

    phrase: str  # "weather"
    params: list[tuple[str, str, str]]  # (key, value kind, preposition before the value)
    result: list[str] = field(default_factory=list)


# one-parameter subjects; the eval split uses the second list only
TRAIN_SUBJECTS = [
    Subject("weather", [("city", "city", "in")], ["sunny, 21 C", "rainy, 12 C", "cloudy, 8 C"]),
    Subject("stock price", [("symbol", "ticker", "of")], ["182.5 USD", "97.2 USD", "410 USD"]),
    Subject("population", [("city", "city", "of")], ["2.1 million", "13 million", "650,000"]),
    Subject("local time", [("city", "city", "in")], ["09:15", "14:40", "23:05"]),
    Subject("news", [("topic", "topic", "about")], ["3 new articles", "a report from today"]),
    Subject("recipe", [("dish", "food", "for")], ["30 minutes, 6 ingredients"]),
    Subject("price", [("item", "thing", "of")], ["199 USD", "45 USD", "1,250 USD"]),
    Subject("phone number", [("name", "person", "of")], ["555-0142", "555-0199"]),
    Subject("email address", [("name", "person", "of")], ["user@example.com"]),
    Subject("air quality", [("location", "city", "in")], ["good (AQI 32)", "moderate (AQI 71)"]),
    Subject("hotel prices", [("city", "city", "in")], ["from 120 USD a night"]),
    Subject("ceo", [("company", "company", "of")], ["Jane Doe", "John Smith"]),
    Subject("headquarters", [("company", "company", "of")], ["California", "Tokyo"]),
    Subject("calories", [("food", "food", "in")], ["250 kcal", "540 kcal"]),
    Subject("sunrise time", [("city", "city", "in")], ["06:12", "07:48"]),
    Subject("events", [("date", "date", "on")], ["2 meetings", "a concert at 8 pm"]),
    Subject("reviews", [("product", "thing", "of")], ["4.5 stars from 210 reviews"]),
    Subject("traffic", [("city", "city", "in")], ["heavy on the ring road", "light"]),
    Subject("birthday", [("person", "person", "of")], ["March 3", "July 19"]),
    Subject("trending songs", [("country", "city", "in")], ["1. Blue Sky 2. Night Drive"]),
]
EVAL_SUBJECTS = [
    Subject("tide level", [("location", "city", "for")], ["1.8 m", "3.2 m"]),
    Subject("uv index", [("city", "city", "in")], ["7 (high)", "3 (moderate)"]),
    Subject("market cap", [("ticker", "ticker", "of")], ["2.9 trillion USD"]),
    Subject("founder", [("company", "company", "of")], ["Ada Park"]),
    Subject("wind speed", [("city", "city", "in")], ["24 km/h", "8 km/h"]),
    Subject("protein content", [("food", "food", "of")], ["12 g", "31 g"]),
    Subject("warranty", [("product", "thing", "of")], ["2 years", "1 year"]),
    Subject("contact card", [("person", "person", "of")], ["Kate Lin, 555-0101"]),
]
# two-parameter subjects: (key, kind, preposition) pairs in the order the question names them
TRAIN_PAIRS = [
    Subject(
        "exchange rate",
        [("from_currency", "currency", "from"), ("to_currency", "currency", "to")],
        ["1.08", "0.92", "151.3"],
    ),
    Subject(
        "flights",
        [("origin", "city", "from"), ("destination", "city", "to")],
        ["3 flights, from 240 USD"],
    ),
    Subject("distance", [("start", "city", "from"), ("end", "city", "to")], ["1,050 km"]),
    Subject(
        "translation",
        [("text", "phrase", "of"), ("language", "language", "into")],
        ["bonjour", "danke schoen"],
    ),
]
EVAL_PAIRS = [
    Subject(
        "train times",
        [("departure", "city", "from"), ("arrival", "city", "to")],
        ["every 30 minutes"],
    ),
    Subject(
        "conversion rate", [("source", "currency", "from"), ("target", "currency", "to")], ["1.37"]
    ),
]

VERBS = ["get", "find", "lookup", "check", "fetch", "search", "query", "show"]
NAME_STYLES = ["{v}_{s}", "{s}_{v}", "{s}", "{v}_{s}_info", "{s}_tool", "{v}{S}"]
DESC_STYLES = [
    "{V} the {p} {prep} a given {k}.",
    "Returns the {p} {prep} the {k}.",
    "Look up the {p}.",
    "Use this tool to {v} the {p} {prep} a {k}.",
]
Q_ONE = [
    "What is the {p} {prep} {x}?",
    "what's the {p} {prep} {x}",
    "Can you {v} the {p} {prep} {x}?",
    "Please {v} the {p} {prep} {x}.",
    "Tell me the {p} {prep} {x}.",
    "I need the {p} {prep} {x}.",
    "{P} {prep} {x}?",
    "Could you check the {p} {prep} {x} for me?",
]
Q_TWO = [
    "What is the {p} {prep} {x} {prep2} {y}?",
    "Can you {v} the {p} {prep} {x} {prep2} {y}?",
    "Please get the {p} {prep} {x} {prep2} {y}.",
    "I need the {p} {prep} {x} {prep2} {y}.",
    "{P} {prep} {x} {prep2} {y}?",
]
ANSWERS = [
    "The {p} {prep} {x} is {r}.",
    "Here is the {p} {prep} {x}: {r}.",
    "{P} {prep} {x}: {r}.",
]

MATH_OPS = [  # (symbol, words, python operator, tool names, verb)
    ("*", "times", "*", ["multiply", "multiply_numbers", "mul", "product"], "Multiply"),
    ("+", "plus", "+", ["add", "add_numbers", "sum_two", "plus"], "Add"),
    ("-", "minus", "-", ["subtract", "subtract_numbers", "minus", "difference"], "Subtract"),
]
MATH_KEYS = [("a", "b"), ("x", "y"), ("first", "second"), ("left", "right")]

IMAGE_VERBS = [
    "Draw",
    "Paint",
    "Generate an image of",
    "Create a picture of",
    "Sketch",
    "Make an image of",
    "draw",
    "paint me",
    "Can you draw",
    "Please paint",
]
IMAGE_SUBJECTS = [
    "a cat wearing a hat",
    "a red fox in the snow",
    "a castle on a hill",
    "a sunset over the sea",
    "a robot reading a book",
    "two dogs playing",
    "a bowl of fruit",
    "a mountain lake at dawn",
    "a city at night",
    "an old lighthouse",
    "a dragon flying over a forest",
    "a cup of coffee",
    "a blue bicycle",
    "a field of sunflowers",
    "a panda eating bamboo",
    "a spaceship landing on mars",
    "a snowy village",
    "a knight on a horse",
]

CHAT = [
    ("hi", "Hello! How can I help you today?"),
    ("Hello!", "Hello! How can I help you today?"),
    ("hey there", "Hi! What can I do for you?"),
    ("Good morning", "Good morning! How can I help?"),
    ("thanks", "You're welcome!"),
    ("Thank you!", "You're welcome! Anything else?"),
    ("Who are you?", "I am a helpful assistant. I can answer questions and use tools."),
    ("What can you do?", "I can answer questions and use the tools I have been given."),
    ("bye", "Goodbye! Have a nice day."),
    ("How are you?", "I'm doing well, thank you! How can I help?"),
    ("Tell me a joke", "Why did the computer go to the doctor? It had a virus!"),
    ("What is your name?", "I am a helpful assistant."),
    ("ok", "Great! Let me know if you need anything else."),
    ("Can you help me?", "Of course! What do you need?"),
]
CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Egypt", "Cairo"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
    ("Austria", "Vienna"),
    ("Greece", "Athens"),
    ("Kenya", "Nairobi"),
    ("Portugal", "Lisbon"),
    ("Poland", "Warsaw"),
    ("Finland", "Helsinki"),
]
COLORS = [
    ("the sky", "blue"),
    ("grass", "green"),
    ("snow", "white"),
    ("a banana", "yellow"),
    ("coal", "black"),
    ("a tomato", "red"),
]

BUILDER_SYSTEM = (
    "You are the builder of AgentFabric. You help the user create an agent. When the user "
    "describes the agent they want, call update_agent_config with a short name, a one-line "
    "description and the instructions of the agent."
)
BUILDER_TOOL = {
    "name": "update_agent_config",
    "description": "Update the agent being built: its name, description and instructions.",
    "parameters": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "short name of the agent"},
            "description": {"type": "string", "description": "one-line description"},
            "instructions": {"type": "string", "description": "the agent's instructions"},
        },
        "required": ["name", "description", "instructions"],
    },
}
BUILDER_PURPOSES = [  # (what the agent does, role noun)
    ("helps users with {t}", "Helper"),
    ("answers questions about {t}", "Expert"),
    ("writes short stories about {t}", "Writer"),
    ("teaches {t}", "Tutor"),
    ("gives tips on {t}", "Coach"),
    ("summarizes news about {t}", "Reporter"),
]
BUILDER_TOPICS = [
    "cooking",
    "travel",
    "math",
    "history",
    "music",
    "gardening",
    "fitness",
    "chess",
    "physics",
    "poetry",
    "finance",
    "photography",
    "astronomy",
    "yoga",
    "coffee",
    "movies",
    "birds",
    "painting",
    "running",
    "cars",
]
BUILDER_ASKS = [
    "Make an agent that {p}.",
    "make an agent that {p}",
    "I want an agent that {p}.",
    "Create an agent that {p}.",
    "Build me an agent that {p}.",
    "Please make an agent that {p}.",
]

ECHO_ASKS = [
    "Repeat after me: {x}",
    "Say exactly this: {x}",
    "Copy this text: {x}",
    "Echo: {x}",
    "Please repeat {x}",
]

CODE_TOOL = {
    "name": "code_interpreter",
    "description": "Run Python code in a sandboxed Jupyter kernel and return what it prints.",
    "parameters": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "the Python code to run"}},
        "required": ["code"],
    },
}
IMAGE_TOOL = {
    "name": "image_gen",
    "description": "Generate an image from a text description.",
    "parameters": {
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "what the image shows"}},
        "required": ["prompt"],
    },
}
INSTRUCTIONS = [
    "",
    "",
    "",
    "You are a helpful assistant.",
    "Be brief.",
    "You are a friendly assistant. Answer in one sentence.",
    "Use the tools when they help.",
]


# -- dialogues ------------------------------------------------------------------------------


@dataclass
class Dialogue:
    kind: str
    tools: list[dict[str, Any]]
    instructions: str
    messages: list[Message]  # user, assistant (call or answer), [tool, assistant]

    @property
    def expected_call(self) -> ToolCall | None:
        calls = self.messages[self._last_user() + 1].tool_calls
        return calls[0] if calls else None

    def _last_user(self) -> int:
        return max(i for i, m in enumerate(self.messages) if m.role == "user")

    def prompt_messages(self) -> list[Message]:
        """What the agent sends for the assistant turn after the last user message."""
        return FMT.build_prompt(
            self.messages[: self._last_user() + 1], self.tools, self.instructions
        )

    def request(self, generation: Any = None) -> Any:
        """The model request the agent makes for the assistant turn after the last user
        message (:func:`qwen_agent.turn.build_request`: rendered messages, tools,
        constraint and context)."""
        from qwen_agent.turn import build_request

        return build_request(
            FMT,
            self.messages[: self._last_user() + 1],
            [ToolSpec.of(t) for t in self.tools],
            instructions=self.instructions,
            generation=generation,
        ).request

    def text(self) -> str:
        """The whole dialogue as ChatML, as the agent would render it."""
        rendered = FMT.build_prompt(self.messages, self.tools, self.instructions)
        # the last assistant turn is complete: close it (render_chatml leaves it open)
        return render_chatml(rendered, add_generation_prompt=False) + "<|im_end|>\n"


def _snake(phrase: str) -> str:
    return phrase.replace(" ", "_")


def _camel(phrase: str) -> str:
    return "".join(w.capitalize() for w in phrase.split())


def _param_schema(key: str, kind: str, rng: random.Random) -> dict[str, Any]:
    """A string parameter described as users' ``@tool`` docstrings do (sometimes not at all,
    sometimes with an example value, which the model must not copy instead of the user's)."""
    words = key.replace("_", " ")
    r = rng.random()
    if r < 0.2:
        return {"type": "string"}
    if r < 0.5:
        example = random_value(rng) if kind == "random" else rng.choice(VALUES[kind])
        return {"type": "string", "description": f'the {words}, e.g. "{example}".'}
    if r < 0.7:
        return {"type": "string", "description": f"the {words}'s name."}
    return {"type": "string", "description": f"the {words}"}


def make_tool(subject: Subject, rng: random.Random) -> dict[str, Any]:
    v = rng.choice(VERBS)
    name = rng.choice(NAME_STYLES).format(v=v, s=_snake(subject.phrase), S=_camel(subject.phrase))
    k = subject.params[0][0].replace("_", " ")
    desc = rng.choice(DESC_STYLES).format(
        V=v.capitalize(), v=v, p=subject.phrase, prep=subject.params[0][2], k=k
    )
    props = {key: _param_schema(key, kind, rng) for key, kind, _ in subject.params}
    return {
        "name": name,
        "description": desc,
        "parameters": {
            "type": "object",
            "properties": props,
            "required": [p[0] for p in subject.params],
        },
    }


def math_tool(op: tuple[Any, ...], rng: random.Random) -> tuple[dict[str, Any], tuple[str, str]]:
    keys = rng.choice(MATH_KEYS)
    name = rng.choice(op[3])
    tool = {
        "name": name,
        "description": f"{op[4]} two integers.",
        "parameters": {
            "type": "object",
            "properties": {keys[0]: {"type": "integer"}, keys[1]: {"type": "integer"}},
            "required": list(keys),
        },
    }
    return tool, keys


class Generator:
    def __init__(
        self,
        seed: int,
        split: str = "train",
        random_rate: float = 0.5,
        echo_rate: float = 0.0,
        history_rate: float = 0.0,
        word_rate: float = 0.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.split = split
        #: share of lookups (and of their results) made of made-up words; 0 gives the data
        #: of the first training stage
        self.random_rate = random_rate
        #: share of copy drills (training only): they teach copying text from the prompt
        self.echo_rate = echo_rate if split == "train" else 0.0
        #: share of dialogues that follow an earlier exchange (a second user turn)
        self.history_rate = history_rate if split == "train" else 0.0
        #: share of made-up domains named with real words (training only); as much again
        #: of the distractor tools are made-up domains too, so an unfamiliar tool name is
        #: no hint that it is the one to call
        self.word_rate = word_rate if split == "train" else 0.0
        held_out = split == "eval"
        self.subjects = EVAL_SUBJECTS if held_out else TRAIN_SUBJECTS
        self.pairs = EVAL_PAIRS if held_out else TRAIN_PAIRS

    def distractors(self, n: int, exclude: Subject | None = None) -> list[dict[str, Any]]:
        pool = [s for s in TRAIN_SUBJECTS + TRAIN_PAIRS if s is not exclude]
        if self.split == "eval":
            pool += [s for s in EVAL_SUBJECTS + EVAL_PAIRS if s is not exclude]
        picked = self.rng.sample(pool, n)
        if self.word_rate:
            rng = self.rng
            picked = [
                self.random_subject(rng.random() < 0.3) if rng.random() < self.word_rate else s
                for s in picked
            ]
        return [make_tool(s, self.rng) for s in picked]

    def toolset(
        self,
        main: dict[str, Any] | None,
        n_extra: int,
        exclude: Subject | None = None,
        math_ok: bool = True,
    ) -> list[dict[str, Any]]:
        tools = self.distractors(n_extra, exclude)
        if self.rng.random() < 0.3:
            tools.append(CODE_TOOL)
        if self.rng.random() < 0.2:
            tools.append(IMAGE_TOOL)
        # a math tool listed beside the one that fits: listing multiply must not mean
        # "call multiply" (off for arithmetic that code_interpreter should do)
        if math_ok and self.rng.random() < 0.3:
            tools.append(math_tool(self.rng.choice(MATH_OPS), self.rng)[0])
        if main is not None:
            tools.insert(self.rng.randrange(len(tools) + 1), main)
        names, unique = set(), []
        for t in tools:
            if t["name"] not in names:
                names.add(t["name"])
                unique.append(t)
        return unique

    def dialogue(self) -> Dialogue:
        d = self._dialogue()
        if not self.history_rate or _alone(d) or self.rng.random() >= self.history_rate:
            return d
        before = self._dialogue()
        while _alone(before):
            before = self._dialogue()
        # one agent, one toolset: the earlier exchange's tools are listed too
        names = {t["name"] for t in d.tools}
        tools = d.tools + [t for t in before.tools if t["name"] not in names]
        return Dialogue(d.kind, tools, d.instructions, before.messages + d.messages)

    def _dialogue(self) -> Dialogue:
        if self.echo_rate and self.rng.random() < self.echo_rate:
            return self.echo()
        r = self.rng.random()
        if r < 0.40:
            return self.lookup()
        if r < 0.52:
            return self.math()
        if r < 0.60:
            return self.data()
        if r < 0.70:
            return self.image()
        if r < 0.92:
            return self.chat()
        return self.builder()

    def _finish(
        self,
        kind: str,
        tools: list[dict[str, Any]],
        user: str,
        call: ToolCall | None,
        result: str,
        answer: str,
        instructions: str | None = None,
    ) -> Dialogue:
        if instructions is None:
            instructions = self.rng.choice(INSTRUCTIONS)
        msgs = [Message(role="user", content=user)]
        if call is None:
            msgs.append(Message(role="assistant", content=answer))
        else:
            call = call.model_copy(update={"id": "call_1"})
            msgs += [
                Message(role="assistant", content="", tool_calls=[call]),
                Message(role="tool", content=result, tool_call_id="call_1", name=call.name),
                Message(role="assistant", content=answer),
            ]
        return Dialogue(kind, tools, instructions, msgs)

    def random_subject(self, two: bool) -> Subject:
        """A made-up subject, so names, keys and values must be copied: of made-up
        syllables, or (``word_rate``) of real words in made-up combinations."""
        rng = self.rng
        words = self.word_rate and rng.random() < self.word_rate
        word = (lambda: rng.choice(WORDS)) if words else (lambda: pseudo_word(rng))
        phrase = " ".join(word() for _ in range(rng.randrange(1, 3)))
        preps = rng.sample(["of", "for", "in", "from", "to", "about", "on"], 2)
        keys = [word() for _ in range(2 if two else 1)]
        if two and keys[0] == keys[1]:
            keys[1] += "2"
        # real-word domains take real values half of the time (cities, companies, ...)
        kinds = [rng.choice(list(VALUES)) if words and rng.random() < 0.5 else "random"] * 2
        params = [(k, kinds[i], preps[i]) for i, k in enumerate(keys)]
        return Subject(phrase, params, [random_value(rng) for _ in range(3)])

    def lookup(self) -> Dialogue:
        rng = self.rng
        two = rng.random() < 0.3
        if self.random_rate and self.split == "train" and rng.random() < self.random_rate:
            subject = self.random_subject(two)
        else:
            subject = rng.choice(self.pairs if two else self.subjects)
        tool = make_tool(subject, rng)
        tools = self.toolset(tool, rng.randrange(0, 4), exclude=subject)
        values = []
        for _, kind, _ in subject.params:
            if kind == "random":
                values.append(random_value(rng))
                continue
            choices = [v for v in VALUES[kind] if v not in values]
            values.append(rng.choice(choices))
        p, v = subject.phrase, rng.choice(VERBS[:4])
        fields = dict(p=p, P=p.capitalize(), v=v, prep=subject.params[0][2], x=values[0])
        if two:
            fields.update(prep2=subject.params[1][2], y=values[1])
        user = rng.choice(Q_TWO if two else Q_ONE).format(**fields)
        args = {key: val for (key, _, _), val in zip(subject.params, values, strict=True)}
        if self.random_rate:
            r = rng.random()
            result = rng.choice(subject.result) if r < 1 - self.random_rate else random_value(rng)
        else:
            result = rng.choice(subject.result)
        x = values[0] if not two else f"{values[0]} {subject.params[1][2]} {values[1]}"
        answer = rng.choice(ANSWERS).format(
            p=p, P=p.capitalize(), prep=subject.params[0][2], x=x, r=result
        )
        return self._finish(
            "lookup", tools, user, ToolCall(name=tool["name"], arguments=args), result, answer
        )

    def math(self) -> Dialogue:
        rng = self.rng
        op = rng.choice(MATH_OPS)
        a, b = rng.randrange(2, 1000), rng.randrange(2, 100)
        user = rng.choice(
            [
                f"What is {a} {op[0]} {b}?",
                f"what is {a}{op[0]}{b}?",
                f"What is {a} {op[1]} {b}?",
                f"Calculate {a} {op[0]} {b}.",
                f"{a} {op[0]} {b} = ?",
                f"compute {a} {op[1]} {b}",
            ]
        )
        value = eval(f"{a} {op[2]} {b}")  # noqa: S307 - two small ints we made
        expr = f"{a} {op[2]} {b}"
        answer = rng.choice(
            [
                f"{a} {op[0]} {b} = {value}.",
                f"The answer is {value}.",
                f"{a} {op[1]} {b} is {value}.",
            ]
        )
        if rng.random() < 0.5:  # a custom math tool is listed: use it
            tool, keys = math_tool(op, rng)
            tools = self.toolset(tool, rng.randrange(0, 3), math_ok=False)
            call = ToolCall(name=tool["name"], arguments={keys[0]: a, keys[1]: b})
        else:
            tools = self.toolset(None, rng.randrange(0, 3), math_ok=False)
            if CODE_TOOL not in tools:
                tools.insert(rng.randrange(len(tools) + 1), CODE_TOOL)
            call = ToolCall(name="code_interpreter", arguments={"code": f"print({expr})"})
        return self._finish("math", tools, user, call, str(value), answer)

    def data(self) -> Dialogue:
        rng = self.rng
        nums = [rng.randrange(1, 100) for _ in range(rng.randrange(3, 7))]
        lst = ", ".join(map(str, nums))
        task = rng.choice(["average", "sum", "sort", "max", "min"])
        if task == "average":
            user = rng.choice([f"What is the average of {lst}?", f"Compute the mean of {lst}."])
            code = f"nums = [{lst}]\nprint(sum(nums) / len(nums))"
            value = str(sum(nums) / len(nums))
        elif task == "sum":
            user = rng.choice([f"What is the sum of {lst}?", f"Add up {lst}."])
            code, value = f"print(sum([{lst}]))", str(sum(nums))
        elif task == "sort":
            user = rng.choice([f"Sort these numbers: {lst}", f"Sort {lst} in ascending order."])
            code, value = f"print(sorted([{lst}]))", str(sorted(nums))
        else:
            user = f"What is the {'largest' if task == 'max' else 'smallest'} of {lst}?"
            code, value = f"print({task}([{lst}]))", str(max(nums) if task == "max" else min(nums))
        tools = self.toolset(None, rng.randrange(0, 3), math_ok=False)
        if CODE_TOOL not in tools:
            tools.insert(rng.randrange(len(tools) + 1), CODE_TOOL)
        call = ToolCall(name="code_interpreter", arguments={"code": code})
        return self._finish("data", tools, user, call, value, f"The result is {value}.")

    def image(self) -> Dialogue:
        rng = self.rng
        subject = rng.choice(IMAGE_SUBJECTS)
        user = f"{rng.choice(IMAGE_VERBS)} {subject}" + rng.choice(["", ".", "!", " please"])
        tools = self.toolset(None, rng.randrange(0, 3))
        if IMAGE_TOOL not in tools:
            tools.insert(rng.randrange(len(tools) + 1), IMAGE_TOOL)
        call = ToolCall(name="image_gen", arguments={"prompt": subject})
        result = f"image saved as image_{rng.randrange(1, 99)}.png"
        return self._finish("image", tools, user, call, result, f"Here is {subject}.")

    def chat(self) -> Dialogue:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            user, answer = rng.choice(CHAT)
        elif r < 0.55:
            country, capital = rng.choice(CAPITALS)
            user = rng.choice([f"What is the capital of {country}?", f"capital of {country}?"])
            answer = f"The capital of {country} is {capital}."
        elif r < 0.65:
            thing, color = rng.choice(COLORS)
            user, answer = f"What color is {thing}?", f"{thing.capitalize()} is {color}."
        else:  # a lookup that no listed tool can do
            if self.random_rate and self.split == "train" and rng.random() < self.random_rate:
                subject = self.random_subject(False)
                x = random_value(rng)
            else:
                subject = rng.choice(self.subjects + self.pairs)
                x = rng.choice(VALUES[subject.params[0][1]])
            user = rng.choice(Q_ONE).format(
                p=subject.phrase,
                P=subject.phrase.capitalize(),
                v="get",
                prep=subject.params[0][2],
                x=x,
            )
            answer = f"Sorry, I don't have a tool to get the {subject.phrase}."
            tools = self.toolset(None, rng.randrange(1, 4), exclude=subject)
            return self._finish("chat", tools, user, None, "", answer)
        tools = self.toolset(None, rng.randrange(0, 4))
        return self._finish("chat", tools, user, None, "", answer)

    def echo(self) -> Dialogue:
        """A copy drill: the answer repeats made-up words and numbers from the question."""
        rng = self.rng
        items = [
            str(rng.randrange(0, 10 ** rng.randrange(1, 6)))
            if rng.random() < 0.4
            else random_value(rng)
            for _ in range(rng.randrange(1, 5))
        ]
        x = rng.choice([" ", ", "]).join(items)
        user = rng.choice(ECHO_ASKS).format(x=x)
        tools = self.toolset(None, rng.randrange(0, 2))
        return self._finish("echo", tools, user, None, "", x)

    def builder(self) -> Dialogue:
        rng = self.rng
        topic = rng.choice(BUILDER_TOPICS)
        purpose_t, role = rng.choice(BUILDER_PURPOSES)
        purpose = purpose_t.format(t=topic)
        user = rng.choice(BUILDER_ASKS).format(p=purpose)
        name = f"{topic.capitalize()} {role}"
        args = {
            "name": name,
            "description": f"An agent that {purpose}.",
            "instructions": f"You are an agent that {purpose}. Answer clearly and kindly.",
        }
        call = ToolCall(name="update_agent_config", arguments=args)
        return self._finish(
            "builder",
            [BUILDER_TOOL],
            user,
            call,
            "ok",
            f"I have set up {name}. Try it in the preview.",
            instructions=BUILDER_SYSTEM,
        )


def _alone(d: Dialogue) -> bool:
    """Dialogues that do not pair with another: the builder's (its own system prompt) and
    "no listed tool can do that" (the other exchange's tools might)."""
    return d.kind == "builder" or "have a tool" in d.messages[-1].text


def dialogues(
    n: int,
    seed: int,
    split: str = "train",
    random_rate: float = 0.5,
    echo_rate: float = 0.0,
    history_rate: float = 0.0,
    word_rate: float = 0.0,
) -> list[Dialogue]:
    gen = Generator(seed, split, random_rate, echo_rate, history_rate, word_rate)
    return [gen.dialogue() for _ in range(n)]


if __name__ == "__main__":  # print a few samples
    for d in dialogues(6, seed=0):
        print(d.kind, json.dumps(d.expected_call.model_dump() if d.expected_call else None))
        print(d.text())
        print("-" * 60)
