"""A tool module the CLI tests load with ``--tool tests.cli_tools:multiply``."""

from __future__ import annotations

from qwen_agent import tool


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: first factor.
        b: second factor.
    """
    return a * b
