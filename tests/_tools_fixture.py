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
