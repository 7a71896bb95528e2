"""Data shipped with the package: the bundled ``qwen-tiny-agent`` model (no code).

The model is not part of this build yet (its training, ``training/tiny_agent/``, has not
reached its goals); :func:`qwen_agent.llm.default_chat_model` says so when asked for it.
"""

from pathlib import Path

#: directory of the bundled tiny agent model (Qwen2 architecture, safetensors)
TINY_AGENT = Path(__file__).parent / "qwen-tiny-agent"
