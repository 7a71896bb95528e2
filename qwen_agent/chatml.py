"""ChatML, the text form of Qwen chats: render messages to a raw prompt and read it back.

Used by raw-completion backends and by the project's OpenAI-compatible server. An assistant
message at the end of the list is left open, so the model continues it.
"""

from __future__ import annotations

from qwen_agent.messages import Message

__all__ = ["IM_START", "IM_END", "render_chatml", "parse_chatml"]

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def render_chatml(messages: list[Message], *, add_generation_prompt: bool = True) -> str:
    """Render ``messages`` as ChatML. A trailing assistant message is continued, not closed."""
    parts: list[str] = []
    for i, msg in enumerate(messages):
        last = i == len(messages) - 1
        if last and msg.role == "assistant":
            parts.append(f"{IM_START}assistant\n{msg.text}")
            return "".join(parts)
        parts.append(f"{IM_START}{msg.role}\n{msg.text}{IM_END}\n")
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
