"""Data shipped with the package: the bundled ``qwen-tiny-agent`` model (no code)."""

from pathlib import Path

#: directory of the bundled tiny agent model (Qwen2 architecture, safetensors)
TINY_AGENT = Path(__file__).parent / "qwen-tiny-agent"
