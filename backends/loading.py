"""Loading a model for the transformers backend: a model directory, a name in the local
cache, a ``.gguf`` file, or a folder of ``config.json`` + ``model.gguf`` + tokenizer files
(the bundled model's layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qwen_agent.errors import BackendConnectionError, ConfigError

__all__ = ["load_model"]


def load_model(
    transformers: Any, torch: Any, path: str, device: str, dtype: str
) -> tuple[Any, Any]:
    """Tokenizer and model from a model directory, a name in the local cache, or GGUF
    weights: a ``.gguf`` file, or a directory that holds one and no ``config.json`` (its
    tokenizer files are used when it has them, else the GGUF file's own tokenizer)."""
    p = Path(path).expanduser()
    local = p.exists()
    gguf = None
    if local and (p / "config.json").is_file() and (p / "model.gguf").is_file():
        return _load_gguf_folder(transformers, torch, p, device, dtype)
    if local and p.is_file() and p.suffix == ".gguf":
        p, gguf = p.parent, p.name
    elif local and not (p / "config.json").is_file():
        found = sorted(f.name for f in p.glob("*.gguf")) if p.is_dir() else []
        if len(found) != 1:
            raise ConfigError(
                f"{p} is not a model directory: config.json is missing"
                + (f" and it holds {len(found)} .gguf files; name one" if found else "")
            )
        gguf = found[0]
    if not local and (path.startswith((".", "/", "~")) or path.count("/") > 1):
        raise ConfigError(f"model directory {path} does not exist")
    src = str(p) if local else path
    if dtype == "auto":
        torch_dtype = "auto" if device != "cpu" else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    extra = {"gguf_file": gguf} if gguf else {}
    own_tokenizer = gguf is None or (p / "tokenizer_config.json").is_file()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            src, local_files_only=True, **({} if own_tokenizer else extra)
        )
        model = transformers.AutoModelForCausalLM.from_pretrained(
            src, dtype=torch_dtype, local_files_only=True, **extra
        )
    except Exception as exc:  # OSError, ValueError, SafetensorError, ...: all mean unloadable
        where = "directory" if local else "name (not in the local cache; no download is tried)"
        raise BackendConnectionError(f"cannot load model {where} {path}: {exc}") from exc
    return _ready(tokenizer, model, device)


#: Hugging Face names of a qwen2/llama GGUF file's tensors (llama.cpp's convention)
_GGUF_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}


def _load_gguf_folder(
    transformers: Any, torch: Any, p: Path, device: str, dtype: str
) -> tuple[Any, Any]:
    """A folder of ``config.json``, ``model.gguf`` and tokenizer files (the bundled model's
    layout): the model is built from the config and its weights are dequantised straight
    from the GGUF tensors with the ``gguf`` package. transformers' own GGUF path reads the
    same file but rebuilds llama.cpp's whole name table for every tensor (20 s here)."""
    try:
        import gguf
        import numpy as np
    except ImportError as exc:
        raise BackendConnectionError(
            f"{p} holds GGUF weights, which need the gguf package: "
            "pip install 'qwen-agent-kit[local]'"
        ) from exc
    try:
        config = transformers.AutoConfig.from_pretrained(p, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(p, local_files_only=True)
        state = {}
        for t in gguf.GGUFReader(p / "model.gguf").tensors:
            if t.name == "token_embd.weight":
                name = "model.embed_tokens.weight"
            elif t.name == "output_norm.weight":
                name = "model.norm.weight"
            elif t.name == "output.weight":
                name = "lm_head.weight"
            else:
                _, layer, rest = t.name.split(".", 2)
                name = f"model.layers.{layer}.{_GGUF_NAMES[rest]}"
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            shape = tuple(reversed(t.shape.tolist()))
            state[name] = torch.from_numpy(np.array(values.reshape(shape), dtype=np.float32))
        torch_dtype = torch.float32 if dtype == "auto" else getattr(torch, dtype)
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
        if missing or unexpected:
            raise ValueError(
                f"weights do not match the config: missing {missing}, unexpected {unexpected}"
            )
        model.tie_weights()
        # the rotary embedding's buffers are computed, not stored: make them for real
        rotary = model.model.rotary_emb
        model.model.rotary_emb = type(rotary)(config=config)
        leftover = [n for n, b in model.named_buffers() if b.is_meta]
        if leftover:
            raise ValueError(f"buffers not in the GGUF file: {leftover}")
        model.to(dtype=torch_dtype)
        if model.generation_config is not None and (p / "generation_config.json").is_file():
            model.generation_config = transformers.GenerationConfig.from_pretrained(p)
    except (OSError, ValueError, KeyError) as exc:
        raise BackendConnectionError(f"cannot load model directory {p}: {exc}") from exc
    return _ready(tokenizer, model, device)


def _ready(tokenizer: Any, model: Any, device: str) -> tuple[Any, Any]:
    """A loaded model on its device in eval mode, and a tokenizer that can pad."""
    model.to(device)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model
