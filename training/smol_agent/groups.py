"""Groups of requests under one shared system prompt and tool list, for shared-prefix training.

A group is one format (hermes or ReAct), one instruction line and one list of 3 to 12
tools, then ``size`` independent dialogues that all start with that same system prompt:
calls of different listed tools, requests that no listed tool fits although near-miss
tools are listed (the assistant says what it cannot do), small talk, requests missing a
required value (a clarifying question), arithmetic, drawing, and second turns, some of
which refer back to the first ("and in Paris?"). In about a third of the groups every
tool and parameter name is replaced by a random string and the tools are shuffled, so the
model must read the descriptions; values are still copied from the user's words.

The trainer runs the prefix once and every request of the group against its keys and
values (``training.smol_agent.prefix``), which is what makes a CPU hour buy several times
more examples than one whole dialogue per pass.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Any

from qwen_agent.messages import Message, ToolCall
from training.smol_agent import vocab as V
from training.smol_agent.builder import (
    builder_request,
    builder_tool,
    builder_tool_names,
    current_config,
)
from training.smol_agent.data import (
    CODE_TOOL,
    DOCS,
    IMAGE_TOOL,
    INSTRUCTIONS,
    MATH_OPS,
    BoundTool,
    Dialogue,
    Generator,
    _format,
    build_tool,
    docs_tool,
    fmt_value,
    math_tool,
    reword,
    say,
)
from training.smol_agent.families import FAMILIES

SYSTEM_END = "<|im_end|>\n"


@dataclass
class Group:
    format: str
    obfuscated: bool
    prefix: str  # the system turn, through its <|im_end|> and newline
    suffixes: list[str]  # each dialogue after the system turn
    kinds: list[str]

    def texts(self) -> list[str]:
        return [self.prefix + s for s in self.suffixes]


def random_name(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    letters = string.ascii_lowercase
    out = rng.choice(letters) + "".join(
        rng.choice(letters + "_" + string.digits) for _ in range(n - 1)
    )
    return out.rstrip("_") or "x" + out


def obfuscate(tool: BoundTool, rng: random.Random) -> BoundTool:
    """The same tool with a random name and random parameter keys; every parameter keeps
    (or gains) a description, since the names no longer say anything."""
    spec = tool.spec
    params = spec["parameters"]
    renamed: dict[str, str] = {}
    for key in params["properties"]:
        new = random_name(rng, 4, 10)
        while new in renamed.values():
            new = random_name(rng, 4, 10)
        renamed[key] = new
    slot_of = {key: slot for slot, key in tool.keys.items()}
    props = {}
    for key, schema in params["properties"].items():
        schema = dict(schema)
        schema["description"] = _describe(tool, slot_of.get(key, key), key)
        props[renamed[key]] = schema
    new_spec = {
        "name": random_name(rng, 5, 15),
        "description": spec["description"],
        "parameters": {
            "type": "object",
            "properties": props,
            "required": [renamed[k] for k in params.get("required", [])],
        },
    }
    keys = {slot: renamed.get(key, key) for slot, key in tool.keys.items()}
    return BoundTool(tool.family, new_spec, keys)


def _describe(tool: BoundTool, slot: str, key: str) -> str:
    """The most telling description: the longest one the family has (``"ISO code of the
    source currency"`` rather than ``"currency code, e.g. USD"``, which fits both ends)."""
    if tool.family is not None:
        for p in tool.family.params:
            if p.slot == slot:
                if p.descs:
                    return max(p.descs, key=len)
                return "the " + p.keys[0].replace("_", " ")
    if slot in ("a", "b"):
        return "the first number" if slot == "a" else "the second number"
    return "the " + key.replace("_", " ")


FOLLOWUPS = [
    "and {v}?",
    "what about {v}?",
    "And for {v}?",
    "now the same for {v}",
    "same thing but {v}",
    "ok, and {v}",
    "how about {v} then?",
    "do it again with {v}",
]


class GroupGenerator(Generator):
    """Draws groups; ``Generator``'s exchanges fill them."""

    def __init__(
        self,
        seed: int,
        react_rate: float = 0.45,
        obfuscate_rate: float = 0.33,
        api_rate: float = 0.5,
        builder_rate: float = 0.06,
    ) -> None:
        super().__init__(seed, react_rate=react_rate, second_rate=0.25)
        self.obfuscate_rate = obfuscate_rate
        self.api_rate = api_rate
        self.builder_rate = builder_rate

    def big_toolset(self) -> list[BoundTool]:
        rng = self.rng
        # 1 and 2 tools too: a person's first agent lists one or two (the README's does);
        # up to 14, so that prompts as long as 12 documented tools (about 1,500 tokens) are
        # seen in training (step 260 lost its way in them: docs/bundled-model-v2.md)
        n = rng.choices(range(1, 15), weights=[8, 8, 6, 12, 12, 11, 10, 9, 8, 8, 7, 7, 7, 7])[0]
        out: list[BoundTool] = []
        extras = n > 1 or rng.random() < 0.3  # an agent of one tool mostly lists just it
        apis = _api_tools()
        if apis and n > 1 and rng.random() < self.api_rate:  # real API operations
            k = rng.randint(1, min(4, n - 1))
            out += [BoundTool(None, spec, {API: ""}) for spec in rng.sample(apis, k)]
        # the built-in tools more often from step 595: ReAct still declined drawings and sums
        # with them listed (step 584, benchmarks/first_use.py), where declines outnumbered calls
        if extras and rng.random() < 0.25:
            out.append(BoundTool(None, CODE_TOOL, {}))
        if extras and rng.random() < 0.22:
            out.append(BoundTool(None, IMAGE_TOOL, {}))
        if extras and rng.random() < 0.12:  # an agent with documents (from step 415)
            out.append(docs_tool(rng))
        if extras and rng.random() < 0.35:  # adding and multiplying twice as often as the rest
            out.append(math_tool(rng.choice(MATH_OPS + MATH_OPS[:2]), rng))
        fams = rng.sample(FAMILIES, max(1, n - len(out)))
        out += [build_tool(f, rng) for f in fams]
        seen: set[str] = set()
        uniq = []
        for t in out:
            if t.name not in seen:
                seen.add(t.name)
                uniq.append(t)
        rng.shuffle(uniq)
        return uniq

    def group(self, size: int) -> Group:
        rng = self.rng
        if rng.random() < self.builder_rate:
            return self.builder_group(size)
        fmt = "react" if rng.random() < self.react_rate else "hermes"
        tools = self.big_toolset()
        hidden = rng.random() < self.obfuscate_rate
        if hidden:
            # built-in tools keep their names: users see those names in every agent
            # built-in and real API tools keep theirs (the latter are already all different)
            tools = [
                t
                if t.name in ("code_interpreter", "image_gen") or _is_api(t) or DOCS in t.keys
                else obfuscate(t, rng)
                for t in tools
            ]
        instructions = rng.choice(INSTRUCTIONS)
        specs = [t.spec for t in tools]
        texts, kinds = [], []
        has_math = any(t.keys.get("op") for t in tools)
        has_code = any(t.name == "code_interpreter" for t in tools)
        has_image = any(t.name == "image_gen" for t in tools)
        has_docs = any(DOCS in t.keys for t in tools)
        for _ in range(size):
            kind = self.kind()
            if kind == "call" and has_math and rng.random() < 0.25:
                kind = "math"  # a listed calculator gets used, not bypassed
            elif kind == "call" and has_docs and rng.random() < 0.3:
                kind = "docs"
            elif kind == "call" and (has_code or has_image) and rng.random() < 0.15:
                kind = "math" if has_code and (not has_image or rng.random() < 0.5) else "image"
            # declines of arithmetic and drawing were most of what those requests got (the
            # model learnt to decline them with the tool listed, step 390): fewer from 415
            if kind == "math" and not (has_math or has_code) and rng.random() < 0.75:
                kind = "call"
            if kind == "image" and not has_image and rng.random() < 0.75:
                kind = "call"
            msgs: list[Message] = []
            r = rng.random()
            fams = [t for t in tools if t.family is not None]
            apis = [t for t in tools if _is_api(t)]
            if apis and rng.random() < 0.2:
                kind = "api"
                msgs += self.api_call(rng.choice(apis), fmt)
            elif r < 0.1 and fams:
                kind = "followup"
                first = self.call(rng.choice(fams), fmt)
                msgs += first + self.followup(first, tools, fmt)
            else:
                if r < 0.3:
                    msgs += self.exchange(self.kind(), tools, fmt)
                msgs += self.exchange(kind, tools, fmt)
            texts.append(Dialogue(kind, fmt, specs, instructions, msgs).text())
            kinds.append(kind)
        return _split(fmt, hidden, texts, kinds)

    def followup(self, first: list[Message], tools: list[BoundTool], fmt: str) -> list[Message]:
        """A second request that refers back to the first call: one value changes."""
        rng = self.rng
        call = next(m for m in first if m.tool_calls).tool_calls[0]
        tool = next(t for t in tools if t.name == call.name)
        fam = tool.family
        if fam is None:
            return self.chat(fmt)
        slot_of = {key: slot for slot, key in tool.keys.items()}
        params = {p.slot: p for p in fam.params}
        changeable = [
            k
            for k in call.arguments
            if k in slot_of and params[slot_of[k]].type in ("string", "integer", "number")
        ]
        if not changeable:
            return self.chat(fmt)
        key = rng.choice(changeable)
        p = params[slot_of[key]]
        value = p.pool(rng)
        for _ in range(5):
            if value != call.arguments[key]:
                break
            value = p.pool(rng)
        said = say(p, value, rng)
        user, lower = reword(rng.choice(FOLLOWUPS).format(v=said), [said], rng)
        if lower and p.type == "string" and p.say is None and not p.enum:
            value = value.lower()
        args = dict(call.arguments) | {key: value}
        values = {slot_of[k]: v for k, v in args.items() if k in slot_of}
        result = fam.result(values, rng)
        fields = {s: fmt_value(v) for s, v in values.items()}
        for q in fam.params:
            fields.setdefault(q.slot, fmt_value(q.default) if q.default is not None else "")
        if isinstance(result, dict):
            fields.update({k: fmt_value(v) for k, v in result.items()})
        fields["name"] = tool.name
        answer = _format(rng.choice(fam.answers), fields)
        thought = f"The user wants the same with {said}; I'll call {tool.name} again."
        return self._finish(
            user, ToolCall(name=tool.name, arguments=args), result, answer, thought, fmt
        )

    # -- builder dialogues (AgentFabric) ------------------------------------------------------
    def builder_group(self, size: int) -> Group:
        """Requests to an assistant builder, each a partial config update (or a question
        back when the request is too vague)."""
        rng = self.rng
        fmt = "react" if rng.random() < self.react_rate else "hermes"
        spec = builder_tool(rng)
        specs = [spec] + ([IMAGE_TOOL] if rng.random() < 0.3 else [])
        instructions = rng.choice(
            [
                "You help the user build an assistant. Turn each request into an update of "
                "its configuration; ask when a request is unclear.",
                "You are the builder: configure the assistant the user describes.",
                "You help a person build an AI assistant. When they say what it should be or "
                "do, call the tool with the fields that change, then say briefly what you "
                "changed. If the request is unclear, ask one short question.",
            ]
        )
        has: list[str] = []
        if rng.random() < 0.6:  # the app's way: the assistant as it is now
            pool = ["code_interpreter", "image_gen", "retrieval"]
            has = sorted(rng.sample(pool, rng.randint(0, 2)))
            instructions += "\n\nThe assistant now: " + current_config(rng, has)
        texts, kinds = [], []
        for _ in range(size):
            said, update, answer = builder_request(rng, spec, has)
            user, lower = reword(said, [str(v) for v in (update or {}).values()], rng)
            if lower and set(update or {}) - {"description", "instructions", "tools"}:
                user = said  # a name or a quoted text is copied as written
            if update is None:
                msgs = self._finish(
                    user, None, None, answer, "", fmt, direct_thought="I need to know more."
                )
                kinds.append("builder_ask")
            else:
                call = ToolCall(name=spec["name"], arguments=update)
                result = {"ok": True, "updated": sorted(update)}
                thought = f"I'll update the configuration with {spec['name']}."
                msgs = self._finish(user, call, result, answer, thought, fmt)
                kinds.append("builder")
                if "tools" in update and rng.random() < 0.25:
                    msgs = self._corrected(msgs, spec, update, fmt)
                    kinds[-1] = "builder_fix"
            texts.append(Dialogue("builder", fmt, specs, instructions, msgs).text())
        return _split(fmt, False, texts, kinds)

    def _corrected(
        self, msgs: list[Message], spec: dict[str, Any], update: dict[str, Any], fmt: str
    ) -> list[Message]:
        """``msgs`` with a first call that names a tool that is not built in, the app's
        error for it, and then the right call: a failed update is fixed, not given up."""
        rng = self.rng
        wrong = rng.choice(["web_search", "python", "calculator", "search", "drawing", "code"])
        bad = ToolCall(id="", name=spec["name"], arguments={**update, "tools": [wrong]})
        self._n += 1
        bad = bad.model_copy(update={"id": f"call_{self._n}"})
        choices = ", ".join(sorted(builder_tool_names()))
        error = (
            f"Error: tool {spec['name']!r} failed: ToolCallError: {spec['name']}: there is no "
            f"built-in tool {wrong!r}; choose from {choices}"
        )
        react = fmt == "react"
        fix = f"{wrong} is not a built-in tool; I'll use the right one." if react else ""
        first = msgs[1].content if react else ""
        return [
            msgs[0],
            Message(role="assistant", content=first, tool_calls=[bad]),
            Message(role="tool", content=error, tool_call_id=bad.id, name=bad.name),
            msgs[1].model_copy(update={"content": fix}),
            *msgs[2:],
        ]

    # -- real API operations ---------------------------------------------------------------
    def api_call(self, tool: BoundTool, fmt: str) -> list[Message]:
        """A request for a real API operation, worded from its summary and its parameters'
        descriptions, with values the call copies."""
        rng = self.rng
        params = tool.spec["parameters"]
        props, required = params["properties"], params.get("required", [])
        chosen = [k for k in props if k in required or rng.random() < 0.25] or [
            rng.choice(list(props))
        ]
        args = {k: _api_value(k, props[k], rng) for k in chosen}
        phrases = [_api_phrase(k, props[k], v, rng) for k, v in args.items()]
        what = tool.spec["description"].rstrip(".")
        what = what[0].lower() + what[1:]
        joined = ", ".join(phrases)
        user = rng.choice(
            [
                "{w}: {p}",
                "{w} for {p}",
                "please {w} ({p})",
                "can you {w}? {p}",
                "I need to {w}. {p}",
                "{p} - {w}",
            ]
        ).format(w=what, p=joined)
        user, _ = reword(user, [str(v) for v in args.values()], rng)
        result: Any = rng.choice(
            [
                {"status": "ok", "count": rng.randint(0, 40)},
                {"status": "ok", "id": _api_value("id", {"type": "string"}, rng)},
                {"error": rng.choice(["not found", "access denied", "rate limited"])},
            ]
        )
        if "error" in result:
            answer = f"That failed: {result['error']}."
        elif "count" in result:
            answer = f"Done. It returned {result['count']} results."
        else:
            answer = f"Done, the new id is {result['id']}."
        thought = f"I should use {tool.name} for this."
        call = ToolCall(name=tool.name, arguments=args)
        return self._finish(user, call, result, answer, thought, fmt)


def _split(fmt: str, hidden: bool, texts: list[str], kinds: list[str]) -> Group:
    """A group from whole dialogues that share their system turn."""
    prefix = texts[0][: texts[0].index(SYSTEM_END) + len(SYSTEM_END)]
    if not all(t.startswith(prefix) for t in texts):
        raise ValueError("dialogues of one group must share the system turn")
    return Group(fmt, hidden, prefix, [t[len(prefix) :] for t in texts], kinds)


_API: list[dict[str, Any]] | None = None
API = "(api)"  # the mark a real API operation's BoundTool carries in its keys


def _api_tools() -> list[dict[str, Any]]:
    global _API
    if _API is None:
        from training.smol_agent.data import HELDOUT_NAMES
        from training.smol_agent.openapi import load

        held = {n.lower() for n in HELDOUT_NAMES}
        _API = [t for t in load() if t["name"].lower() not in held]
    return _API


def _is_api(tool: BoundTool) -> bool:
    return API in tool.keys


def _api_value(key: str, schema: dict[str, Any], rng: random.Random) -> Any:
    kind, low = schema.get("type"), key.lower()
    if schema.get("enum"):
        return rng.choice(schema["enum"])
    if kind == "integer":
        return rng.choice([rng.randint(1, 20), rng.randint(1, 500)])
    if kind == "number":
        return round(rng.uniform(1, 500), rng.choice([0, 1, 2]))
    if kind == "boolean":
        return rng.random() < 0.6
    if "email" in low:
        return f"{rng.choice(V.FIRST).lower()}@{rng.choice(V.EMAIL_DOMAINS)}"
    if "date" in low or "time" in low:
        return rng.choice(V.DATES)
    if "city" in low or "location" in low:
        return rng.choice(V.CITIES)
    if "country" in low or "region" in low:
        return rng.choice(V.COUNTRIES)
    if "lang" in low:
        return rng.choice(V.LANGUAGES)
    if "name" in low or "owner" in low or "user" in low:
        return rng.choice(
            [rng.choice(V.FIRST), rng.choice(V.FIRST).lower() + str(rng.randint(1, 99))]
        )
    if "id" in low or "token" in low or "key" in low or "arn" in low or "number" in low:
        alphabet = string.ascii_lowercase + string.digits
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 12)))
    pick = rng.choice([V.TOPICS, V.COMPANIES, V.PRODUCTS, V.CITIES])
    value = rng.choice(pick)
    return value[0] if isinstance(value, tuple) else value


def _api_phrase(key: str, schema: dict[str, Any], value: Any, rng: random.Random) -> str:
    said = ("yes" if value else "no") if isinstance(value, bool) else str(value)
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|_", " ", key).lower().strip()
    desc = schema.get("description", "")
    label = desc.rstrip(".") if desc and len(desc) < 50 and rng.random() < 0.5 else words
    return rng.choice(["{l} {v}", "{l}: {v}", "{l} = {v}"]).format(l=label, v=said)


def groups(n: int, size: int, seed: int, **kw: Any) -> list[Group]:
    g = GroupGenerator(seed, **kw)
    return [g.group(size) for _ in range(n)]


def _show(seed: int = 0) -> None:
    g = GroupGenerator(seed).group(4)
    print(f"===== {g.format} obfuscated={g.obfuscated} kinds={g.kinds}")
    print(g.prefix)
    for s in g.suffixes:
        print("-----")
        print(s)


if __name__ == "__main__":
    import sys

    _show(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
