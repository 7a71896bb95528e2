"""Data shipped with the package: the bundled ``qwen-tiny-agent`` model, and (in
:mod:`qwen_agent.bundled.aids`) the decoding aids that model's folder switches on; the
bundled model v2 ``qwen-smol-agent`` in its shipping form (a preview, by name: see
:mod:`qwen_agent.bundled.smol`); and
``qwen-tiny-shapes``, the text-to-image diffusion pipeline the ``image_gen`` tool draws
with by default (trained from scratch by ``training/tiny_diffusion/``).

A small Qwen2 checkpoint (safetensors, its own byte-level BPE tokenizer with Qwen's special
tokens, a ChatML chat template with the hermes tool format), trained from scratch by
``training/tiny_agent/`` and loaded by the transformers backend when no ``llm`` is given.
See ``qwen-tiny-agent/training.json`` for how it was trained.
"""

from pathlib import Path

#: directory of the bundled tiny agent model (Qwen2 architecture, safetensors)
TINY_AGENT = Path(__file__).parent / "qwen-tiny-agent"
#: directory of the bundled text-to-image pipeline (diffusers StableDiffusionPipeline)
TINY_SHAPES = Path(__file__).parent / "qwen-tiny-shapes"
#: the bundled chat models, by the name ``llm={"model": NAME}`` takes
NAMES = ("qwen-tiny-agent", "qwen-smol-agent")


def resolve(model: str) -> Path | None:
    """The folder of the bundled model ``model`` names (``qwen-smol-agent`` is merged into
    the cache on first use), or None when it names none or an existing path."""
    if model not in NAMES or Path(model).exists():
        return None
    if model == "qwen-tiny-agent":
        return TINY_AGENT
    from qwen_agent.bundled.smol import materialize

    return materialize()
