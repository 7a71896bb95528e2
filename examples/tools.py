"""Example tools for ``qwen-agent chat --tool examples/tools.py:multiply`` (see the README)."""

from qwen_agent import tool


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city.

    Args:
        city: the city's name, e.g. "Paris".
    """
    return f"sunny, 24 C in {city}"  # a real tool would call a weather service here
