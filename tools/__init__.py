"""Built-in tools, found through :mod:`qwen_agent.tool`'s registry."""
