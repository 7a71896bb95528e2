"""Importable targets for the lazy ``"module:attr"`` tool registrations in test_tool.py."""

from __future__ import annotations

from qwen_agent.tool import Tool, tool


def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor.
        b: the second factor.
    """
    return a * b


@tool(name="shout")
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


class Echo(Tool):
    """A class-based tool, registered as a class."""

    name = "echo"
    description = "Echo the text back."
    parameters = {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    }

    def call(self, text: str) -> str:
        return text


class Counted(Tool):
    """A tool class with no conversation state that counts how often it is made (a
    retrieval index, say, which a server should build once, not per request)."""

    name = "counted"
    description = "Say how many of these tools exist."
    parameters = {"type": "object", "properties": {}}
    made = 0
    closed = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).made += 1

    def call(self) -> str:
        return f"made {type(self).made}"

    def close(self) -> None:
        type(self).closed += 1


class PerConversation(Counted):
    """The same, but it keeps state per conversation (it takes ``session_id``)."""

    name = "per_conversation"
    made = 0
    closed = 0

    def __init__(self, session_id: str = "") -> None:
        super().__init__()
        self.session_id = session_id
