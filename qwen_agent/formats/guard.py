"""Constrained decoding of hermes tool calls ("tool guard").

A small model, or a large one on a bad day, may call a tool that does not exist or pass an
argument the tool does not take. When the prompt lists tools in a hermes ``<tools>`` block,
the guard tells a backend which text may come next inside a ``<tool_call>``:

- the call's head is ``{"name": "<one of the listed names>", "arguments": {``;
- each argument key is one of that tool's parameters, each at most once.

Everything else (values, whitespace, text outside calls) is left to the model. The guard is
pure Python; :class:`ToolGuard.allowed_ids` turns its answer into token ids for a vocabulary
given as decoded strings, so any tokenizer works. A backend applies it at every step of
generation (see ``backends/transformers.py``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence

__all__ = ["ToolGuard"]

_CALL_OPEN, _CALL_CLOSE = "<tool_call>", "</tool_call>"
_TOOLS_BLOCK = re.compile(r"<tools>\n(.*?)\n</tools>", re.S)
_HEAD = re.compile(r'\{"name": "([^"\\]*)", "arguments": \{')


class ToolGuard:
    """What may follow a partial generation, for the tools ``{name: [parameter keys]}``."""

    def __init__(self, tools: dict[str, list[str]]) -> None:
        if not tools:
            raise ValueError("a tool guard needs at least one tool")
        self.tools = tools
        self._heads = [f'{{"name": "{name}", "arguments": {{' for name in tools]
        self._by_first: dict[str, list[int]] | None = None
        self._vocab: Sequence[str] = ()

    @classmethod
    def from_prompt(cls, prompt: str) -> ToolGuard | None:
        """The guard for the tools listed in the prompt's last ``<tools>`` block (one JSON
        object per line, as the hermes format renders them), or None when there is none."""
        blocks = _TOOLS_BLOCK.findall(prompt)
        if not blocks:
            return None
        tools: dict[str, list[str]] = {}
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
        return cls(tools) if tools else None

    # -- text level ---------------------------------------------------------------------
    def targets(self, generated: str) -> list[str] | None:
        """The strings one of which the text must continue with, or None when the model is
        free here. The next piece of text is allowed when it is a prefix of a target, or
        starts with a whole target (and then runs on freely)."""
        start = generated.rfind(_CALL_OPEN)
        if start < 0 or _CALL_CLOSE in generated[start:]:
            return None
        body = generated[start + len(_CALL_OPEN) :]
        stripped = body.lstrip()
        if not stripped:  # right after the tag: one newline or space may come first
            return self._heads + ([f"\n{h}" for h in self._heads] if not body else [])
        head = _HEAD.match(stripped)
        if head is None:
            rest = [h[len(stripped) :] for h in self._heads if h.startswith(stripped)]
            return rest or None  # None: not a call we can guide (the parser reports it)
        keys = self.tools.get(head.group(1))
        if keys is None:
            return None
        state = _key_state(stripped[head.end() :])
        if state is None:
            return None
        partial, used = state
        rest = [k[len(partial) :] + '"' for k in keys if k.startswith(partial) and k not in used]
        return rest or None

    # -- token level --------------------------------------------------------------------
    def allowed_ids(self, generated: str, vocab: Sequence[str]) -> list[int] | None:
        """Token ids (indices into ``vocab``, the decoded text of each token) that may come
        next, or None when any token may. Never an empty list: when no token fits, the
        guard steps aside rather than block generation."""
        targets = self.targets(generated)
        if targets is None:
            return None
        if vocab is not self._vocab:
            self._vocab = vocab
            by_first: dict[str, list[int]] = defaultdict(list)
            for i, piece in enumerate(vocab):
                if piece:
                    by_first[piece[0]].append(i)
            self._by_first = by_first
        assert self._by_first is not None
        allowed = []
        for first in {t[0] for t in targets if t}:
            for i in self._by_first.get(first, ()):
                piece = vocab[i]
                if any(t.startswith(piece) or piece.startswith(t) for t in targets):
                    allowed.append(i)
        return sorted(allowed) or None


def _key_state(args: str) -> tuple[str, set[str]] | None:
    """Inside the arguments object (``args`` is the text after its ``{``): when the text
    ends inside a top-level key string, that key's text so far and the keys already used;
    otherwise None."""
    depth, in_str, escape, expect_key, is_key = 1, False, False, True, False
    buf: list[str] = []
    used: set[str] = set()
    for ch in args:
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_str = False
                if is_key:
                    used.add("".join(buf))
                    is_key = False
                continue
            if is_key:
                buf.append(ch)
            continue
        if ch == '"':
            in_str = True
            is_key = depth == 1 and expect_key
            buf = []
            expect_key = False
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return None  # the arguments object is closed
        elif ch == "," and depth == 1:
            expect_key = True
    if in_str and is_key and not escape:
        return "".join(buf), used
    return None
