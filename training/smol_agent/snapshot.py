"""A model directory from a run's latest checkpoint (to evaluate or ship a run cut short).

    python -m training.smol_agent.snapshot --base /work/v2/base --run /work/v2/run --out DIR

The checkpoint holds only the trained parameters; the frozen ones come from ``--base``.
Writes float32 safetensors, the tokenizer and a ``training.json`` naming the step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    state = torch.load(args.run / "checkpoint" / "state.pt", weights_only=False, map_location="cpu")
    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected:
        raise SystemExit(f"checkpoint keys the base lacks: {unexpected[:5]}")
    model.save_pretrained(args.out)
    AutoTokenizer.from_pretrained(args.base).save_pretrained(args.out)
    log = (args.run / "train.log").read_text().splitlines()
    first = next((line for line in log if "args {" in line), "")
    meta = {
        "base": json.loads((args.base / "base.json").read_text()),
        "steps": state["step"],
        "trained_parameters": len(state["model"]),
        "run_args": json.loads(first.split("args ", 1)[1]) if first else {},
        "torch": torch.__version__,
    }
    (args.out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out} from step {state['step']}")


if __name__ == "__main__":
    main()
