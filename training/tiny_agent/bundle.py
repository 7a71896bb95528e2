"""Copy a trained run into the package as the bundled model.

    python -m training.tiny_agent.bundle RUN_DIR [EARLIER_LEG/training.json ...]

Copies the model, tokenizer and chat template of ``RUN_DIR`` into
``qwen_agent/bundled/qwen-tiny-agent/``, drops machine-local keys from the tokenizer
config, and writes one ``training.json`` with the arguments of every training leg (the
earlier legs' ``training.json`` files first, then ``RUN_DIR``'s own).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

FILES = [
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
]
DEST = Path(__file__).resolve().parents[2] / "qwen_agent" / "bundled" / "qwen-tiny-agent"
LIMIT_MB = 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the last training leg's output directory")
    ap.add_argument("earlier", type=Path, nargs="*", help="earlier legs' training.json")
    ap.add_argument("--dest", type=Path, default=DEST)
    args = ap.parse_args()
    missing = [f for f in [*FILES, "training.json"] if not (args.run / f).is_file()]
    if missing:
        raise SystemExit(f"{args.run} is not a finished run: missing {', '.join(missing)}")
    size_mb = (args.run / "model.safetensors").stat().st_size / 2**20
    if size_mb > LIMIT_MB:
        raise SystemExit(f"the weights take {size_mb:.1f} MiB; the bundle's limit is {LIMIT_MB}")
    legs = [json.loads(p.read_text()) for p in args.earlier]
    legs.append(json.loads((args.run / "training.json").read_text()))
    shutil.rmtree(args.dest, ignore_errors=True)
    args.dest.mkdir(parents=True)
    for name in FILES:
        shutil.copy(args.run / name, args.dest / name)
    tok_cfg = json.loads((args.dest / "tokenizer_config.json").read_text())
    for key in ("is_local", "local_files_only"):
        tok_cfg.pop(key, None)
    (args.dest / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    for leg in legs:
        leg["args"].pop("out", None)
        if leg["args"].get("init") not in (None, "None"):
            leg["args"]["init"] = "(the previous leg)"
    meta = {
        "model": "qwen-tiny-agent",
        "trained_by": "python -m training.tiny_agent.train (see the README's training section)",
        "steps": sum(leg["step"] for leg in legs),
        "legs": legs,
    }
    (args.dest / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"bundled {args.run} ({len(legs)} legs, {meta['steps']} steps, {size_mb:.1f} MiB)")
    print(f"  -> {args.dest}")


if __name__ == "__main__":
    main()
