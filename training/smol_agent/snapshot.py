"""A model directory from a run's adapter: the base with the LoRA weights merged in.

    python -m training.smol_agent.snapshot --out DIR [--run training/smol_agent/run] [--base BASE]
        [--averaged]

Writes float32 safetensors, the tokenizer (with the project's chat template) and a
``training.json`` naming the run's step, requests and tokens, to evaluate
(``benchmarks/tool_eval.py --model DIR``) or to export for shipping.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from training.smol_agent.train import DEFAULT_BASE, RUN, build, ensure_base, load_state


def merged(run: Path, base: Path, threads: int = 2):
    """The base with ``run``'s adapter merged in (a plain transformers model) and the
    run's state."""
    import torch
    from safetensors.torch import load_file

    state = load_state(run)
    if state is None or not (run / "adapter.safetensors").is_file():
        raise SystemExit(f"{run} holds no adapter yet (no state.json or adapter.safetensors)")
    ensure_base(base)
    model, tokenizer = build(state["config"], base, threads)
    adapter = load_file(str(run / "adapter.safetensors"))
    missing = [k for k in adapter if k not in model.state_dict()]
    if missing:
        raise SystemExit(f"adapter keys the model lacks: {missing[:3]}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in adapter.items()}, strict=False)
    return model.merge_and_unload(), tokenizer, state


def main(argv: list[str] | None = None) -> None:
    from training.smol_agent.ship import stable_copy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=RUN)
    ap.add_argument("--base", type=Path, default=DEFAULT_BASE)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--averaged", action="store_true", help="the weights' moving average, not the last step"
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        # one step's adapter and state, though a trainer may save meanwhile
        run = stable_copy(args.run, Path(tmp), args.averaged)
        model, tokenizer, state = merged(run, args.base)
    model.eval()
    model.config.use_cache = True
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    meta = {
        "base": json.loads((args.base / "base.json").read_text()),
        "step": state["step"],
        "requests": state["examples"],
        "tokens": state["tokens"],
        "config": state["config"],
        "averaged": state.get("averaged"),
    }
    (args.out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} from step {state['step']} ({state['examples']} requests)")


if __name__ == "__main__":
    main()
