"""ChatML, the text form of Qwen chats: render messages to a raw prompt and read it back.

Used by raw-completion backends and by the project's OpenAI-compatible server. An assistant
message at the end of the list is left open, so the model continues it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qwen_agent.messages import Message

__all__ = ["IM_START", "IM_END", "render_chatml", "parse_chatml", "neutralize", "special_pattern"]

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ZWSP = "\u200b"
# what special tokens look like in Qwen, ChatML and most chat vocabularies
_SPECIAL_LIKE = re.compile(r"<\|[^\s<>|]{1,64}\|>")


def special_pattern(tokens: Iterable[str] = ()) -> re.Pattern[str]:
    """A pattern for ``<|...|>`` token strings and the given special tokens (a tokenizer's
    own, such as ``<s>`` or ``<file_sep>``)."""
    words = sorted({t for t in tokens if len(t) > 1}, key=len, reverse=True)
    parts = [_SPECIAL_LIKE.pattern, *(re.escape(w) for w in words)]
    return re.compile("|".join(parts))


def neutralize(text: str, pattern: re.Pattern[str] | None = None) -> str:
    """``text`` as plain content: each special-token string in it is broken by a zero-width
    space after its first character, so no tokenizer reads it as a control token and a
    document, tool result or user message cannot open a turn of its own. Only the
    template's own markup makes special tokens."""
    pat = pattern or _SPECIAL_LIKE
    return pat.sub(lambda m: m.group(0)[0] + ZWSP + m.group(0)[1:], text)


def render_chatml(
    messages: list[Message],
    *,
    add_generation_prompt: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> str:
    """Render ``messages`` as ChatML. A trailing assistant message is continued, not closed.
    Special-token strings inside content are neutralized (:func:`neutralize`)."""
    parts: list[str] = []
    for i, msg in enumerate(messages):
        last = i == len(messages) - 1
        text = neutralize(msg.text, pattern)
        if last and msg.role == "assistant":
            parts.append(f"{IM_START}assistant\n{text}")
            return "".join(parts)
        parts.append(f"{IM_START}{msg.role}\n{text}{IM_END}\n")
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts)


def parse_chatml(prompt: str) -> list[Message]:
    """Read a ChatML prompt back into messages; an open last turn becomes a message too.

    Text outside any turn (a prompt that is not ChatML) becomes one user message. An empty
    open assistant turn (the generation prompt) is dropped.
    """
    if IM_START not in prompt:
        return [Message(role="user", content=prompt)] if prompt else []
    messages: list[Message] = []
    for block in prompt.split(IM_START)[1:]:
        header, _, body = block.partition("\n")
        role = header.strip()
        if role not in ("system", "user", "assistant", "tool"):
            role = "user"
        closed = IM_END in body
        text = body.split(IM_END, 1)[0]
        if not closed and role == "assistant" and not text:
            continue
        messages.append(Message(role=role, content=text))  # type: ignore[arg-type]
    return messages
