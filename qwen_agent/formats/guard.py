"""Constrained decoding of hermes tool calls ("tool guard").

A small model, or a large one on a bad day, may call a tool that does not exist, pass an
argument the tool does not take, or leave out a required one. When the prompt lists tools
in a hermes ``<tools>`` block, the guard tells a backend which text may come next inside a
``<tool_call>``, like the JSON-schema guided decoding of vLLM or OpenAI's strict mode:

- the call's head is ``{"name": "<one of the listed names>", "arguments": {``;
- each argument key is one of that tool's parameters, each at most once, followed by ``:``;
- a parameter with an ``enum`` of strings (``Literal[...]``) takes one of those values;
- each value is well-formed JSON of the parameter's schema type (``string``, ``integer``,
  ``number``, ``boolean``, ``array``, ``object``; any JSON value when the schema gives no
  single type): no raw newline inside a string, no ``"12"`` for an integer, no ``1.5``
  for an integer, no text after a closed value but ``,`` or ``}``;
- the arguments object does not close while a required parameter is missing, and takes no
  further key once every parameter is there; then ``}`` and ``</tool_call>`` follow.

What a string value says, whitespace, nested values and all text outside calls are left to
the model. The guard is pure Python; :meth:`ToolGuard.mask` turns its answer into token ids
for a vocabulary given as decoded strings, so any tokenizer works, and caches its answers
per lexer state, so a long string value costs one look at the vocabulary. From one step to
the next it lexes only the new text (the state of the last step goes on), so a step costs
O(new tokens), not a re-read of the call. A backend
applies it at every step of generation (see ``backends/transformers.py``).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from qwen_agent.formats.rules import Rule, rule_for

__all__ = ["CALL_HEAD", "ToolGuard", "copy_continuations", "copy_spans"]

_CALL_OPEN, _CALL_CLOSE = "<tool_call>", "</tool_call>"
_HEAD = re.compile(r'\{"name": "([^"\\]*)", "arguments": \{')
#: how a hermes call starts, up to its tool's name
CALL_HEAD = _CALL_OPEN + '\n{"name": "'

#: ("only", ids): just these tokens may come next; ("ban", ids): any token but these
Mask = tuple[Literal["only", "ban"], list[int]]


class ToolGuard:
    """What may follow a partial generation, for the tools ``{name: [parameter keys]}``
    (and, optionally, ``required``: ``{name: [keys that must be given]}``, ``types``:
    ``{name: {key: JSON-schema type}}``, where a key without a type takes any JSON value,
    and ``enums``: ``{name: {key: (allowed strings, ...)}}``)."""

    def __init__(
        self,
        tools: dict[str, list[str]],
        required: dict[str, list[str]] | None = None,
        types: dict[str, dict[str, str]] | None = None,
        enums: dict[str, dict[str, tuple[str, ...]]] | None = None,
        rules: dict[str, dict[str, Rule]] | None = None,
    ) -> None:
        if not tools:
            raise ValueError("a tool guard needs at least one tool")
        #: what opens a call
        self.open = _CALL_OPEN
        self.tools = tools
        self.rules = {name: dict((rules or {}).get(name, {})) for name in tools}
        self.required = {name: set((required or {}).get(name, ())) for name in tools}
        self.types = {
            name: {k: t for k, t in (types or {}).get(name, {}).items() if t in _VALUE_STARTS}
            for name in tools
        }
        self.enums = {name: dict((enums or {}).get(name, {})) for name in tools}
        self._heads = [f'{{"name": "{name}", "arguments": {{' for name in tools]
        self._vocab: Sequence[str] = ()
        self._by_first: dict[str, list[int]] = {}
        self._by_lead: dict[str, list[int]] = {}  # by the first character that is not blank
        self._blank: list[int] = []  # whitespace-only tokens
        self._blank_set: frozenset[int] = frozenset()
        self._special: list[int] = []  # tokens a string value cannot take as plain text
        self._cache: dict[tuple[object, ...], Mask | None] = {}
        self._last: tuple[str, tuple[str | None, _Args | None, str]] | None = None

    @classmethod
    def from_specs(cls, specs: Sequence[object]) -> ToolGuard | None:
        """The guard for these tools (:class:`~qwen_agent.tool.ToolSpec` objects or
        function dicts), or None when there are none."""
        fns = []
        for spec in specs:
            fn = spec.as_dict() if hasattr(spec, "as_dict") else spec
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                return None
            fns.append(fn)
        return cls._from_functions(fns)

    @classmethod
    def for_constraint(cls, constraint: Any) -> ToolGuard | None:
        """The guard for a format's :class:`~qwen_agent.llm.CallConstraint`, or None when
        its calls are framed some other way than ``<tool_call>`` JSON ``</tool_call>``
        (the one framing this guard knows) or it lists no tool."""
        if constraint.open != _CALL_OPEN or constraint.close != _CALL_CLOSE:
            return None
        return cls.from_specs(constraint.tools)

    @classmethod
    def _from_functions(cls, fns: list[dict]) -> ToolGuard | None:
        tools: dict[str, list[str]] = {}
        required: dict[str, list[str]] = {}
        types: dict[str, dict[str, str]] = {}
        enums: dict[str, dict[str, tuple[str, ...]]] = {}
        rules: dict[str, dict[str, Rule]] = {}
        for fn in fns:
            params = fn.get("parameters") or {}
            props = params.get("properties") if isinstance(params, dict) else None
            tools[fn["name"]] = list(props) if isinstance(props, dict) else []
            types[fn["name"]] = {
                k: v["type"]
                for k, v in (props.items() if isinstance(props, dict) else ())
                if isinstance(v, dict) and isinstance(v.get("type"), str)
            }
            enums[fn["name"]] = {
                k: tuple(v["enum"])
                for k, v in (props.items() if isinstance(props, dict) else ())
                if isinstance(v, dict) and _string_enum(v)
            }
            enums[fn["name"]].update(  # an array of listed strings: each item one of them
                (ITEMS + k, tuple(v["items"]["enum"]))
                for k, v in (props.items() if isinstance(props, dict) else ())
                if isinstance(v, dict)
                and v.get("type") == "array"
                and isinstance(v.get("items"), dict)
                and _string_enum(v["items"])
            )
            rules[fn["name"]] = {
                k: r
                for k, v in (props.items() if isinstance(props, dict) else ())
                if (r := rule_for(v)) is not None
            }
            req = params.get("required") if isinstance(params, dict) else None
            if isinstance(req, list):
                required[fn["name"]] = [k for k in req if k in tools[fn["name"]]]
        return cls(tools, required, types, enums, rules) if tools else None

    # -- text level ---------------------------------------------------------------------
    def _arguments(self, generated: str) -> tuple[str | None, _Args | None, str]:
        """(tool name, lexer state after its arguments' ``{``, call body) for the open
        call; the name is None until the call's head is complete. The last answer is kept:
        a backend asks :meth:`mask`, :meth:`guiding` and :meth:`copy_nudge` about the same
        text at each step (callers must not change the state)."""
        last = self._last
        if last is not None and last[0] == generated:
            return last[1]
        found = None
        if last is not None and last[1][1] is not None and generated.startswith(last[0]):
            # the same call, a few more characters: feed only those (O(new text) a step)
            new = generated[len(last[0]) :]
            name, state, body = last[1]
            if _CALL_OPEN not in body + new and _CALL_CLOSE not in body + new and not state.bad:
                state = state.copy(keep_value=True)
                state.feed(new)
                found = (name, state, body + new)
        if found is None:
            found = self._lex(generated)
        self._last = (generated, found)
        return found

    def _lex(self, generated: str) -> tuple[str | None, _Args | None, str]:
        start = generated.rfind(_CALL_OPEN)
        if start < 0 or _CALL_CLOSE in generated[start:]:
            return None, None, ""
        body = generated[start + len(_CALL_OPEN) :]
        head = _HEAD.match(body.lstrip())
        if head is None or head.group(1) not in self.tools:
            return None, None, body
        name = head.group(1)
        state = _Args(
            keys=tuple(self.tools[name]),
            types=self.types[name],
            required=frozenset(self.required[name]),
            enums=self.enums[name],
            rules=self.rules[name],
        )
        state.feed(body.lstrip()[head.end() :])
        return name, state, body

    def targets(self, generated: str) -> list[str] | None:
        """The strings one of which the text must continue with, or None when no such
        rule applies here (inside values the lexer of :meth:`mask` decides). The next
        piece of text is allowed when it is a prefix of a target, or starts with a whole
        target (and then runs on)."""
        start = generated.rfind(_CALL_OPEN)
        if start < 0 or _CALL_CLOSE in generated[start:]:
            return None
        name, state, body = self._arguments(generated)
        stripped = body.lstrip()
        if name is None:
            if not stripped:  # right after the tag: one newline or space may come first
                return self._heads + ([f"\n{h}" for h in self._heads] if not body else [])
            rest = [h[len(stripped) :] for h in self._heads if h.startswith(stripped)]
            return rest or None  # None: not a call we can guide (the parser reports it)
        assert state is not None
        if state.bad:
            return None
        if state.phase == "after_key":  # a key's closing quote: the colon comes next
            return [":"]
        if state.phase == "done":  # the call's closing brace, then the closing tag
            tail = "".join(state.tail)
            if not tail:
                return ["}\n" + _CALL_CLOSE, "}" + _CALL_CLOSE]
            rest = tail[1:].lstrip()
            if not tail[1:]:
                return ["\n" + _CALL_CLOSE, _CALL_CLOSE]
            return [_CALL_CLOSE[len(rest) :]] if _CALL_CLOSE.startswith(rest) else None
        if state.phase != "key":
            return None
        partial = "".join(state.buf)
        rest = [
            k[len(partial) :] + '"'
            for k in state.keys
            if k.startswith(partial) and k not in state.used
        ]
        return rest or None

    # -- token level --------------------------------------------------------------------
    def mask(self, generated: str, vocab: Sequence[str]) -> Mask | None:
        """Which tokens (indices into ``vocab``, the decoded text of each token) may come
        next: ``("only", ids)``, ``("ban", ids)``, or None when any token may. It never
        rules out every token: where nothing fits, the guard steps aside."""
        self._index(vocab)
        name, state, _ = self._arguments(generated)
        if state is None or state.phase == "done" or state.bad:
            targets = self.targets(generated)
            if targets is None:
                return None
            allowed = self.continuing(targets, vocab)
            return ("only", allowed) if allowed else None
        key = (name, state.signature())
        if key not in self._cache:
            self._cache[key] = self._arguments_mask(state, vocab)
        found = self._cache[key]
        if found and found[0] == "only" and generated[-1:].isspace():
            # one run of blanks between JSON tokens: a small model can loop on newlines
            kept = [i for i in found[1] if i not in self._blank_set]
            if kept:
                return ("only", kept)
        return found

    def _arguments_mask(self, state: _Args, vocab: Sequence[str]) -> Mask | None:
        def fits(i: int) -> bool:
            trial = state.copy()
            trial.feed(vocab[i])
            return not trial.bad

        listed = _listed_next(state)
        if listed is not None:  # a listed value, or an item of an array of them
            nexts, between = listed
            candidates = [i for c in nexts for i in self._by_first.get(c, ())]
            candidates += self._blank if between else []
            allowed = sorted({i for i in candidates if fits(i)})
            return ("only", allowed) if allowed else None
        if state.phase == "choice":
            text = "".join(state.buf)
            rule = state.rules[state.key]
            nexts = {
                c[len(text)] for c in rule.choices if c.startswith(text) and len(c) > len(text)
            }
            candidates = [i for c in nexts for i in self._by_first.get(c, ())]
            if rule.choice_done(text):
                candidates += self._blank + self._by_lead.get(",", []) + self._by_lead.get("}", [])
            allowed = sorted({i for i in candidates if fits(i)})
            return ("only", allowed) if allowed else None
        rule = state.rules.get(state.key) if state.phase == "string" else None
        if rule is not None and rule.pattern is not None and not state.escape:
            found = _pattern_mask(len(vocab), fits)
            if found is not False:
                return found
        if state.phase in ("string", "nested") and not state.escape:
            # most tokens are plain text here: test only those that quote, escape, bracket
            # (or hold a call's tag, which no value may), and, under a maxLength, the
            # tokens longer than the room left
            banned = [i for i in self._special if _CALL_OPEN in vocab[i] or not fits(i)]
            if rule is not None and rule.max_len is not None:
                room = rule.max_len - len(state.value)
                banned += [i for i, n in enumerate(self._plain_len) if n > room]
            return ("ban", sorted(set(banned))) if banned else None
        if state.phase in ("string", "nested"):  # right after a backslash
            candidates = [i for c in _ESCAPES for i in self._by_first.get(c, ())]
        elif state.phase == "key":
            partial = "".join(state.buf)
            nexts = {
                k[len(partial) : len(partial) + 1] or '"'
                for k in state.keys
                if k.startswith(partial) and k not in state.used
            }
            candidates = [i for c in nexts for i in self._by_first.get(c, ())]
        elif state.phase == "literal":
            candidates = list(self._by_first.get(state.buf[0], ()))
        elif state.phase == "number":
            candidates = [i for c in "0123456789.eE+-" for i in self._by_first.get(c, ())]
            candidates += self._blank + self._by_lead.get(",", []) + self._by_lead.get("}", [])
        else:  # between tokens of JSON: blanks, then what the lexer expects
            candidates = self._blank + [
                i for c in state.expects() for i in self._by_lead.get(c, ())
            ]
        allowed = sorted({i for i in candidates if fits(i)})
        return ("only", allowed) if allowed else None

    def copy_nudge(
        self, generated: str, source: str, vocab: Sequence[str]
    ) -> tuple[list[int], bool]:
        """Inside a string value, (favoured token ids, locked) for copying ``source``:
        favoured are the tokens that keep the value a copy of a span of ``source`` that
        starts at a word (or close the value where such a span ends at a word's end);
        locked is true while the value is such a copy cut in the middle of a word, where
        only a favoured token should come (a copied word is copied whole). A backend may
        apply this for a small model, which copies the user's words into arguments more
        reliably with that nudge."""
        name, state, _ = self._arguments(generated)
        if state is None or state.bad or state.phase != "string" or state.escape:
            return [], False
        if state.key in state.enums:  # a listed value, not a copy of the user's words
            return [], False
        self._index(vocab)
        value = "".join(state.value)
        rests, can_close = [], False
        for m in re.finditer(r"(?<!\w)(?=\w)", source):  # every word start
            if source.startswith(value, m.start()):
                rest = source[m.start() + len(value) :]
                if rest:
                    rests.append(rest)
                if value and (not rest or not rest[0].isalnum()):
                    can_close = True
        ids = set()
        for first in {r[0] for r in rests}:
            for i in self._by_first.get(first, ()):
                head, quote, _ = vocab[i].partition('"')
                if any(
                    r.startswith(head)
                    and (not quote or len(r) == len(head) or not r[len(head)].isalnum())
                    for r in rests
                ):
                    ids.add(i)
        if can_close:
            ids.update(self._by_first.get('"', ()))
        locked = bool(value) and bool(ids) and not can_close
        return sorted(ids), locked

    def string_start(self, generated: str) -> bool:
        """Whether the text ends right after the opening quote of a string-typed
        argument: where a backend may weigh whole values before their first token (see
        ``lookahead`` in ``backends/transformers.py``)."""
        name, state, _ = self._arguments(generated)
        return (
            name is not None
            and state is not None
            and not state.bad
            and state.phase == "string"
            and not state.value
            and not state.escape
            and self.types[name].get(state.key) == "string"
            and state.key not in state.enums  # a listed value is not chosen from the words
        )

    def continuing(self, targets: Sequence[str], vocab: Sequence[str]) -> list[int]:
        """The tokens that go on with one of ``targets``: a prefix of it, or all of it
        and then more (sorted ids)."""
        self._index(vocab)
        allowed = []
        for first in {t[0] for t in targets if t}:
            for i in self._by_first.get(first, ()):
                piece = vocab[i]
                if any(t.startswith(piece) or piece.startswith(t) for t in targets):
                    allowed.append(i)
        return sorted(allowed)

    def spelling(self, rest: str, vocab: Sequence[str]) -> list[int]:
        """The tokens whose text is a non-empty prefix of ``rest``: the ways to go on
        writing ``rest``."""
        self._index(vocab)
        if not rest:
            return []
        return [i for i in self._by_first.get(rest[0], ()) if rest.startswith(vocab[i])]

    def starting_with(self, char: str, vocab: Sequence[str]) -> list[int]:
        """The tokens whose text starts with ``char``."""
        self._index(vocab)
        return list(self._by_first.get(char, ()))

    def guiding(self, generated: str) -> bool:
        """Whether the text is inside a tool call the guard follows: a backend should not
        end generation here (an end-of-text token would leave the call unreadable)."""
        name, state, _ = self._arguments(generated)
        if state is not None:
            return not state.bad
        return self.targets(generated) is not None

    def _index(self, vocab: Sequence[str]) -> None:
        if vocab is self._vocab:
            return
        self._vocab, self._cache = vocab, {}
        shared = ToolGuard._shared_index
        if shared is None or shared[0] is not vocab:  # a backend keeps one vocab list
            shared = ToolGuard._shared_index = (vocab, *_index_vocab(vocab))
        self._by_first, self._by_lead, self._blank, self._special, self._plain_len = shared[1:]
        self._blank_set = frozenset(self._blank)

    #: the last vocabulary indexed, shared by the guards of later generations
    _shared_index: tuple[Sequence[str], dict, dict, list, list, list] | None = None


_UNIT = re.compile(r"\w+(?:[./:,'-]\w+)*")


#: where ``enums`` keeps a parameter's item enum: ``ITEMS + name`` (no key holds a NUL)
ITEMS = "\x00items:"


def _listed_next(state: _Args) -> tuple[set[str], bool] | None:
    """Where ``state`` writes a listed string (an enum parameter, or an item of an array
    of listed strings): the characters that may come next, and whether blanks may too
    (between items); None elsewhere."""
    items = state.enums.get(ITEMS + state.key)
    if state.phase == "nested" and state.depth == 1 and items:
        if not state.nested_str:
            return set('",]'), True
        values = items
    elif state.phase == "string" and state.key in state.enums:
        values = state.enums[state.key]
    else:
        return None
    so_far = "".join(state.value)
    nexts = {v[len(so_far)] for v in values if len(v) > len(so_far) and v.startswith(so_far)}
    return nexts | ({'"'} if so_far in values else set()), False


def _string_enum(schema: dict) -> bool:
    values = schema.get("enum")
    return (
        isinstance(values, list)
        and bool(values)
        and all(
            isinstance(e, str) and e.isprintable() and '"' not in e and "\\" not in e
            for e in values
        )
    )


def copy_continuations(text: str, source: str, window: int = 80) -> tuple[list[str], bool]:
    """Where ``text`` ends in a copy of ``source`` (both from the start of a unit, a word
    or a number such as ``1.37`` or ``km/h``), what the copy may go on with: (rests, inside).
    Inside a unit (``inside`` true) the rest is the unit's remainder; at a unit's end the
    rest is the source's next unit with what separates them (a space or a comma). A
    backend nudges an answer written from a tool's result with these, so that it quotes
    the result (and the question's words) exactly. Empty when the text does not end in
    such a copy."""
    tail = text[-window:]
    units = [m.start() for m in _UNIT.finditer(source)]
    rests: list[str] = []
    inside = False
    for a in (m.start() for m in re.finditer(r"(?<!\w)\w", tail)):
        piece = tail[a:]
        for w in units:
            if not source.startswith(piece, w):
                continue
            end = w + len(piece)
            # the units of source the copy covers: it may end inside the last one
            last = w
            for m in _UNIT.finditer(source, w, end):
                last = m.start()
            stop = _UNIT.match(source, last).end()  # type: ignore[union-attr]
            if end < stop:
                rests.append(source[end:stop])
                inside = True
            else:
                nxt = _UNIT.search(source, end)
                if nxt is not None and re.fullmatch(r"[ ,]*", source[end : nxt.start()]):
                    rests.append(source[end : nxt.end()])
        if rests:
            break  # the longest copy decides
    if inside:
        rests = [r for r in rests if r and r[0] not in " "]
    return sorted(set(r for r in rests if r)), inside


def copy_spans(source: str, max_words: int = 12) -> list[tuple[int, str]]:
    """The spans of ``source`` that start at a word's start and end at a word's end, up to
    ``max_words`` words long, as (start offset, text), without repeats: the values a string
    argument may copy from the user's message."""
    starts = [m.start() for m in re.finditer(r"(?<!\w)(?=\w)", source)]
    ends = [m.end() for m in re.finditer(r"\w(?!\w)", source)]
    seen: set[str] = set()
    spans = []
    for s in starts:
        for e in [e for e in ends if e > s][:max_words]:
            text = source[s:e]
            if text not in seen:
                seen.add(text)
                spans.append((s, text))
    return spans


def _index_vocab(
    vocab: Sequence[str],
) -> tuple[dict[str, list[int]], dict[str, list[int]], list[int], list[int], list[int]]:
    """Token ids by first character, by first non-blank character, the whitespace-only
    tokens, the tokens a string value cannot take as plain text, and each token's length
    up to its first quote (what it adds to a string value it continues)."""
    by_first: dict[str, list[int]] = defaultdict(list)
    by_lead: dict[str, list[int]] = defaultdict(list)
    blank, special = [], []
    plain_len = [len(piece.split('"', 1)[0]) for piece in vocab]
    for i, piece in enumerate(vocab):
        if not piece:
            continue
        by_first[piece[0]].append(i)
        lead = piece.lstrip(_BLANKS)
        if lead:
            by_lead[lead[0]].append(i)
        else:
            blank.append(i)
        if any(c in _SPECIAL or c < " " for c in piece) or _CALL_OPEN in piece:
            special.append(i)  # a call's tag inside a value would start a call in it
    return dict(by_first), dict(by_lead), blank, special, plain_len


def _pattern_mask(n: int, fits: Any) -> Mask | None | Literal[False]:
    """The tokens that break a string value's pattern, tested one by one within a time
    budget (a pattern is rare, and this looks at every token); False when the budget ran
    out: the value is then left to the plain string rules, and the pattern is checked as
    it is written."""
    deadline = time.perf_counter() + _PATTERN_BUDGET
    banned = []
    for i in range(n):
        if not fits(i):
            banned.append(i)
        if i % 256 == 0 and time.perf_counter() > deadline:
            return False
    return ("ban", banned) if banned else None


def _tag_suffix(chars: list[str]) -> str:
    """The longest end of ``chars`` that begins a call's tag (``<tool_call>`` or its
    closing tag), or ""."""
    tail = "".join(chars[-len(_CALL_CLOSE) :])
    for n in range(len(tail), 0, -1):
        end = tail[-n:]
        if _CALL_CLOSE.startswith(end) or _CALL_OPEN.startswith(end):
            return end
    return ""


def _ends_with_tag(chars: list[str]) -> bool:
    tail = "".join(chars[-len(_CALL_CLOSE) :])
    return tail.endswith(_CALL_CLOSE) or tail.endswith(_CALL_OPEN)


_BLANKS = " \t\n\r"
_PATTERN_BUDGET = 0.05  # seconds a step may spend testing tokens against a pattern
_ESCAPES = '"\\/bfnrtu'
_SPECIAL = '"\\[]{}>'  # ">" may close a call's tag written inside a value
_LITERALS = {"t": "true", "f": "false", "n": "null"}
#: what a value of each schema type may start with
_VALUE_STARTS = {
    "string": '"',
    "integer": "-0123456789",
    "number": "-0123456789",
    "boolean": "tf",
    "null": "n",
    "array": "[",
    "object": "{",
}
_ANY_VALUE = '"-0123456789tfn[{'
_INTEGER = re.compile(r"-?(0|[1-9]\d*)")
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")


@dataclass
class _Args:
    """A resumable lexer for the text after the arguments object's ``{``: it follows the
    JSON grammar and the tool's schema, and sets ``bad`` at the first character that
    breaks them (text after the object goes to ``tail``)."""

    keys: tuple[str, ...]
    types: dict[str, str]
    required: frozenset[str]
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    phase: str = "key_or_end"  # key, after_key, before_value, string, number, literal,
    #                            choice, nested, after_value, done
    first: bool = True  # no argument yet
    escape: bool = False
    key: str = ""  # the parameter whose value is being read
    depth: int = 0  # inside a nested value
    nested_str: bool = False
    bad: bool = False
    buf: list[str] = field(default_factory=list)  # a key, a number, a literal's rest
    used: set[str] = field(default_factory=set)
    tail: list[str] = field(default_factory=list)
    value: list[str] = field(default_factory=list)  # the string value read so far
    items: int = 0  # items of an array value at its top level (under maxItems / minItems)
    item_open: bool = False

    def copy(self, keep_value: bool = False) -> _Args:
        keep = keep_value or self.key in self.enums or self.key in self.rules
        keep = keep or ITEMS + self.key in self.enums
        # else only the end that could begin a call's tag, which the next token may finish
        value = list(self.value) if keep else list(_tag_suffix(self.value))
        return replace(
            self, buf=list(self.buf), used=set(self.used), tail=list(self.tail), value=value
        )

    def signature(self) -> tuple[object, ...]:
        """Everything the next characters' fate depends on."""
        rule = self.rules.get(self.key)
        if self.phase == "number" and rule is not None and rule.bounded:
            buf: object = "".join(self.buf)  # what may follow depends on the whole number
        elif self.phase == "number":
            text = "".join(self.buf)
            more = "".join(c for c in "0123456789.eE+-" if self._number_ok(text + c))
            buf = (self._number_done(text), more)
        elif self.phase == "string" and self.key in self.enums:
            buf = "".join(self.value)
        elif self.phase == "string" and rule is not None:
            value = "".join(self.value)
            buf = value if rule.pattern is not None or rule.min_len else len(value)
        elif self.phase == "nested" and ITEMS + self.key in self.enums:
            buf = ("".join(self.value), self.items, self.item_open)
        elif self.phase == "nested" and rule is not None:
            buf = ("".join(self.buf), self.items, self.item_open)
        else:
            buf = "".join(self.buf)
        key = (self.phase, self.first, self.escape, self.key, self.depth, self.nested_str)
        tag = _tag_suffix(self.value) if self.phase in ("string", "nested") else ""
        return (*key, buf, tag, frozenset(self.used))

    def expects(self) -> str:
        """The characters that may come next, past any blanks (between JSON tokens)."""
        if self.phase == "key_or_end":
            more = '"' if set(self.keys) - self.used else ""
            return more + ("}" if self.first else "")
        if self.phase == "after_key":
            return ":"
        if self.phase == "before_value":
            rule = self.rules.get(self.key)
            if rule is not None and rule.choices:
                return "".join(sorted({c[0] for c in rule.choices}))
            return _VALUE_STARTS.get(self.types.get(self.key, ""), _ANY_VALUE)
        if self.phase == "after_value":
            return ",}"
        return ""

    def _number_ok(self, text: str) -> bool:
        integer = self.types.get(self.key) == "integer"
        full = _INTEGER if integer else _NUMBER
        if not (full.fullmatch(text) or full.fullmatch(text + "1")):
            return False
        rule = self.rules.get(self.key)
        return rule is None or rule.number_can_become_valid(text, integer)

    def _number_done(self, text: str) -> bool:
        full = _INTEGER if self.types.get(self.key) == "integer" else _NUMBER
        rule = self.rules.get(self.key)
        return bool(full.fullmatch(text)) and (rule is None or rule.number_is_valid(text))

    def feed(self, text: str) -> None:
        for ch in text:
            if self.bad:
                return
            if self.phase == "done":
                self.tail.append(ch)
                tail = "".join(self.tail)
                rest = tail[1:].lstrip()
                if tail[0] != "}" or not (
                    _CALL_CLOSE.startswith(rest) or rest.startswith(_CALL_CLOSE)
                ):
                    self.bad = True
                continue
            self._step(ch)

    def _step(self, ch: str) -> None:  # noqa: C901 - one branch per lexer phase
        phase = self.phase
        if phase == "string" and self.key in self.enums:
            # one of the listed values, spelled exactly
            allowed = self.enums[self.key]
            so_far = "".join(self.value)
            if ch == '"':
                self.bad = so_far not in allowed
                self.phase = "after_value"
            else:
                self.value.append(ch)
                self.bad = not any(v.startswith(so_far + ch) for v in allowed)
            return
        if phase == "string":
            rule = self.rules.get(self.key)
            if self.escape:
                self.escape = False
                self.bad = ch not in _ESCAPES
                self.value.append("\x00")  # an escape: never part of a copied span
            elif ch == "\\":
                self.escape = True
                # an escape adds a character: none fits a full value or a pattern's text
                self.bad = rule is not None and (
                    rule.pattern is not None
                    or (rule.max_len is not None and len(self.value) >= rule.max_len)
                )
            elif ch == '"':
                self.phase = "after_value"
                self.bad = rule is not None and not rule.string_is_valid("".join(self.value))
                return
            elif ch < " ":
                self.bad = True  # JSON strings take no raw control characters
            else:
                self.value.append(ch)
                if ch == ">" and _ends_with_tag(self.value):
                    self.bad = True  # a call's tag inside a value would end or start a call
            if rule is not None and not self.escape:
                self.bad = self.bad or not rule.string_can_grow("".join(self.value))
            return
        if phase == "choice":  # an enum of numbers, booleans or null: one, spelled exactly
            text = "".join(self.buf)
            rule = self.rules[self.key]
            if rule.choice_prefix(text + ch):
                self.buf.append(ch)
                return
            if not rule.choice_done(text):
                self.bad = True
                return
            self.phase = phase = "after_value"  # the character ends the value: go on
        if phase == "nested" and self.depth == 1 and ITEMS + self.key in self.enums:
            self._enum_item(ch, self.enums[ITEMS + self.key])
            return
        if phase == "nested":
            rule = self.rules.get(self.key)
            if rule is not None and self.depth == 1 and not self.nested_str and self.buf == ["["]:
                if ch == ",":
                    self.item_open = False
                elif ch == "]":
                    self.bad = self.items < rule.min_items
                elif ch not in _BLANKS and not self.item_open:
                    self.items += 1
                    self.item_open = True
                    self.bad = rule.max_items is not None and self.items > rule.max_items
                if self.bad:
                    return
            if self.nested_str:
                if self.escape:
                    self.escape = False
                elif ch == "\\":
                    self.escape = True
                elif ch == '"':
                    self.nested_str = False
                elif ch < " ":
                    self.bad = True
                else:
                    self.value.append(ch)
                    if ch == ">" and _ends_with_tag(self.value):
                        self.bad = True  # a call's tag inside a nested string
            elif ch == '"':
                self.nested_str, self.value = True, []
            elif ch in "<>":
                self.bad = True  # no JSON outside a string holds these: a tag would
            elif ch in "[{":
                self.depth += 1
            elif ch in "]}":
                self.depth -= 1
                if self.depth == 0:
                    self.phase = "after_value"
            return
        if phase == "key":
            if ch == '"':
                name = "".join(self.buf)
                if name not in self.keys or name in self.used:
                    self.bad = True
                else:
                    self.used.add(name)
                    self.key, self.phase = name, "after_key"
                return
            self.buf.append(ch)
            partial = "".join(self.buf)
            self.bad = not any(k.startswith(partial) for k in self.keys if k not in self.used)
            return
        if phase == "number":
            text = "".join(self.buf)
            if ch in "0123456789.eE+-":
                self.buf.append(ch)
                self.bad = not self._number_ok(text + ch)
                return
            if not self._number_done(text):
                self.bad = True
                return
            self.phase = phase = "after_value"  # the character ends the number: go on
        if phase == "literal":
            if ch != self.buf[0]:
                self.bad = True
                return
            self.buf.pop(0)
            if not self.buf:
                self.phase = "after_value"
            return
        if ch in _BLANKS:
            return
        if ch not in self.expects():
            self.bad = True
            return
        if phase == "key_or_end":
            if ch == '"':
                self.phase, self.buf = "key", []
            else:
                self._close()
        elif phase == "after_key":
            self.phase = "before_value"
        elif phase == "before_value":
            self.buf = []
            rule = self.rules.get(self.key)
            if rule is not None and rule.choices:
                self.phase, self.buf = "choice", [ch]
                self.bad = not rule.choice_prefix(ch)
            elif ch == '"':
                self.phase, self.value = "string", []
            elif ch in "[{":
                self.phase, self.depth = "nested", 1
                self.buf, self.items, self.item_open = [ch], 0, False
            elif ch in _LITERALS:
                self.phase, self.buf = "literal", list(_LITERALS[ch][1:])
            else:
                self.phase, self.buf = "number", [ch]
                self.bad = not self._number_ok(ch)
        elif ch == ",":  # after a value: another key, if one is left
            if self.used >= set(self.keys):
                self.bad = True
            self.phase, self.first = "key_or_end", False
        else:
            self._close()

    def _enum_item(self, ch: str, allowed: tuple[str, ...]) -> None:
        """An array of listed strings, at its top level: whole listed values separated by
        commas, then ``]`` (within the array's minItems / maxItems)."""
        rule = self.rules.get(self.key)
        if self.nested_str:
            so_far = "".join(self.value)
            if ch == '"':
                self.bad, self.nested_str = so_far not in allowed, False
            else:
                self.value.append(ch)
                self.bad = not any(v.startswith(so_far + ch) for v in allowed)
        elif ch == '"' and not self.item_open:
            self.nested_str, self.value, self.item_open = True, [], True
            self.items += 1
            self.bad = (
                rule is not None and rule.max_items is not None and self.items > rule.max_items
            )
        elif ch == "," and self.item_open:
            self.item_open = False
            most = rule.max_items if rule is not None else None
            self.bad = most is not None and self.items >= most  # no room for another
        elif ch == "]" and (self.item_open or not self.items):
            self.depth, self.phase = 0, "after_value"
            self.bad = rule is not None and self.items < rule.min_items
        elif ch not in _BLANKS:
            self.bad = True

    def _close(self) -> None:
        if not self.required <= self.used:
            self.bad = True  # closing while a required parameter is missing
        self.phase = "done"
