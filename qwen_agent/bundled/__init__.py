"""Data shipped with the package: the bundled chat models and ``qwen-tiny-shapes``, the
text-to-image diffusion pipeline the ``image_gen`` tool draws with by default (trained from
scratch by ``training/tiny_diffusion/``).

- ``qwen-smol-agent``, the default (what ``Agent()``, ``qwen-agent chat`` and ``serve`` load
  when no model is given): SmolLM2-135M-Instruct as a Qwen2 model with a LoRA adapter
  trained for tool use by ``training/smol_agent/``, shipped as base + adapter and merged
  into the user's cache on first use (:mod:`qwen_agent.bundled.smol`).
- ``qwen-tiny-agent``: the first bundled model, 5.8M parameters trained from scratch by
  ``training/tiny_agent/`` (safetensors, its own byte-level BPE tokenizer), with the
  decoding aids its folder switches on (:mod:`qwen_agent.bundled.aids`). Fast and weak:
  the tests use it where they check mechanics, not the model; by name it is
  ``llm={"model": "qwen-tiny-agent"}``.
"""

from pathlib import Path

#: directory of the bundled tiny agent model (Qwen2 architecture, safetensors)
TINY_AGENT = Path(__file__).parent / "qwen-tiny-agent"
#: directory of the bundled text-to-image pipeline (diffusers StableDiffusionPipeline)
TINY_SHAPES = Path(__file__).parent / "qwen-tiny-shapes"
#: the bundled chat models, by the name ``llm={"model": NAME}`` takes
NAMES = ("qwen-tiny-agent", "qwen-smol-agent")
#: the model loaded when none is given
DEFAULT = "qwen-smol-agent"


def resolve(model: str) -> Path | None:
    """The folder of the bundled model ``model`` names (``qwen-smol-agent`` is merged into
    the cache on first use), or None when it names none or an existing path."""
    if model not in NAMES or Path(model).exists():
        return None
    if model == "qwen-tiny-agent":
        return TINY_AGENT
    from qwen_agent.bundled.smol import materialize

    return materialize()


def default_model_dir() -> Path:
    """The folder of the default model (merged into the cache on first use); a
    :class:`~qwen_agent.errors.ConfigError` when its files are missing from the install."""
    folder = resolve(DEFAULT)
    assert folder is not None
    return folder
