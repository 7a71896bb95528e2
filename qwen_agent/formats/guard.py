"""Constrained decoding of hermes tool calls ("tool guard").

A small model, or a large one on a bad day, may call a tool that does not exist, pass an
argument the tool does not take, or leave out a required one. When the prompt lists tools
in a hermes ``<tools>`` block, the guard tells a backend which text may come next inside a
``<tool_call>``, like the JSON-schema guided decoding of vLLM or OpenAI's strict mode:

- the call's head is ``{"name": "<one of the listed names>", "arguments": {``;
- each argument key is one of that tool's parameters, each at most once, followed by ``:``;
- the arguments object does not close while a required parameter is missing, and takes no
  further key once every parameter is there.

Argument values, whitespace and all text outside calls are left to the model. The guard is
pure Python; :meth:`ToolGuard.mask` turns its answer into token ids for a vocabulary given
as decoded strings, so any tokenizer works. A backend applies it at every step of generation
(see ``backends/transformers.py``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = ["ToolGuard"]

_CALL_OPEN, _CALL_CLOSE = "<tool_call>", "</tool_call>"
_TOOLS_BLOCK = re.compile(r"<tools>\n(.*?)\n</tools>", re.S)
_HEAD = re.compile(r'\{"name": "([^"\\]*)", "arguments": \{')

#: ("only", ids): just these tokens may come next; ("ban", ids): any token but these
Mask = tuple[Literal["only", "ban"], list[int]]


class ToolGuard:
    """What may follow a partial generation, for the tools ``{name: [parameter keys]}``
    (and, optionally, ``required``: ``{name: [keys that must be given]}``)."""

    def __init__(
        self, tools: dict[str, list[str]], required: dict[str, list[str]] | None = None
    ) -> None:
        if not tools:
            raise ValueError("a tool guard needs at least one tool")
        self.tools = tools
        self.required = {name: set((required or {}).get(name, ())) for name in tools}
        self._heads = [f'{{"name": "{name}", "arguments": {{' for name in tools]
        self._vocab: Sequence[str] = ()
        self._by_first: dict[str, list[int]] = {}
        self._closers: list[int] = []  # tokens with a "," or a "}" in them

    @classmethod
    def from_prompt(cls, prompt: str) -> ToolGuard | None:
        """The guard for the tools listed in the prompt's last ``<tools>`` block (one JSON
        object per line, as the hermes format renders them), or None when there is none."""
        blocks = _TOOLS_BLOCK.findall(prompt)
        if not blocks:
            return None
        tools: dict[str, list[str]] = {}
        required: dict[str, list[str]] = {}
        for line in blocks[-1].splitlines():
            try:
                spec = json.loads(line)
            except ValueError:
                return None  # not a block we rendered: do not guess
            fn = spec.get("function", spec) if isinstance(spec, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                return None
            params = fn.get("parameters") or {}
            props = params.get("properties") if isinstance(params, dict) else None
            tools[fn["name"]] = list(props) if isinstance(props, dict) else []
            req = params.get("required") if isinstance(params, dict) else None
            if isinstance(req, list):
                required[fn["name"]] = [k for k in req if k in tools[fn["name"]]]
        return cls(tools, required) if tools else None

    # -- text level ---------------------------------------------------------------------
    def _arguments(self, generated: str) -> tuple[str | None, _Args | None, str]:
        """(tool name, lexer state inside its arguments, call body) for the open call."""
        start = generated.rfind(_CALL_OPEN)
        if start < 0 or _CALL_CLOSE in generated[start:]:
            return None, None, ""
        body = generated[start + len(_CALL_OPEN) :]
        head = _HEAD.match(body.lstrip())
        if head is None or head.group(1) not in self.tools:
            return None, None, body
        state = _Args()
        state.feed(body.lstrip()[head.end() :])
        return head.group(1), state, body

    def targets(self, generated: str) -> list[str] | None:
        """The strings one of which the text must continue with, or None when no such
        rule applies here. The next piece of text is allowed when it is a prefix of a
        target, or starts with a whole target (and then runs on freely)."""
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
        if state.after_key:  # a key's closing quote: the colon comes next
            return [":"]
        if not state.in_key():
            return None
        partial = "".join(state.buf)
        keys = self.tools[name]
        rest = [
            k[len(partial) :] + '"' for k in keys if k.startswith(partial) and k not in state.used
        ]
        return rest or None

    # -- token level --------------------------------------------------------------------
    def mask(self, generated: str, vocab: Sequence[str]) -> Mask | None:
        """Which tokens (indices into ``vocab``, the decoded text of each token) may come
        next: ``("only", ids)``, ``("ban", ids)``, or None when any token may. It never
        rules out every token: where nothing fits, the guard steps aside."""
        self._index(vocab)
        targets = self.targets(generated)
        if targets is not None:
            allowed = []
            for first in {t[0] for t in targets if t}:
                for i in self._by_first.get(first, ()):
                    piece = vocab[i]
                    if any(t.startswith(piece) or piece.startswith(t) for t in targets):
                        allowed.append(i)
            return ("only", sorted(allowed)) if allowed else None
        name, state, _ = self._arguments(generated)
        if name is None or state is None or state.done:
            return None
        keys, required = set(self.tools[name]), self.required[name]
        banned = []
        for i in self._closers:
            trial = replace(state, buf=list(state.buf), used=set(state.used))
            trial.feed(vocab[i])
            if trial.commas_at_top > state.commas_at_top and trial.used >= keys:
                banned.append(i)  # another key, but every parameter is there
            elif trial.done and not required <= trial.used:
                banned.append(i)  # closing while a required parameter is missing
        return ("ban", banned) if banned else None

    def allowed_ids(self, generated: str, vocab: Sequence[str]) -> list[int] | None:
        """The token ids that may come next, or None when any token may."""
        found = self.mask(generated, vocab)
        if found is None:
            return None
        kind, ids = found
        if kind == "only":
            return ids
        banned = set(ids)
        return [i for i in range(len(vocab)) if i not in banned]

    def _index(self, vocab: Sequence[str]) -> None:
        if vocab is self._vocab:
            return
        self._vocab = vocab
        by_first: dict[str, list[int]] = defaultdict(list)
        for i, piece in enumerate(vocab):
            if piece:
                by_first[piece[0]].append(i)
        self._by_first = dict(by_first)
        self._closers = [i for i, piece in enumerate(vocab) if "," in piece or "}" in piece]


@dataclass
class _Args:
    """A resumable lexer for the text after the arguments object's ``{``."""

    depth: int = 1
    in_str: bool = False
    escape: bool = False
    expect_key: bool = True
    is_key: bool = False
    done: bool = False  # the arguments object closed
    after_key: bool = False  # a key just closed; no colon yet
    commas_at_top: int = 0  # commas between arguments so far
    buf: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def in_key(self) -> bool:
        return self.in_str and self.is_key and not self.escape and not self.done

    def feed(self, text: str) -> None:
        for ch in text:
            if self.done:
                return
            if self.after_key and not ch.isspace():
                self.after_key = False
            if self.in_str:
                if self.escape:
                    self.escape = False
                elif ch == "\\":
                    self.escape = True
                elif ch == '"':
                    self.in_str = False
                    if self.is_key:
                        self.used.add("".join(self.buf))
                        self.is_key = False
                        self.after_key = True
                    continue
                if self.is_key:
                    self.buf.append(ch)
            elif ch == '"':
                self.in_str = True
                self.is_key = self.depth == 1 and self.expect_key
                self.buf = []
                self.expect_key = False
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                self.done = self.depth == 0
            elif ch == "," and self.depth == 1:
                self.expect_key = True
                self.commas_at_top += 1
