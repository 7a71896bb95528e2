"""LLM backends, one module each, found through :mod:`qwen_agent.llm`'s registry."""
