"""Training examples per CPU hour: one dialogue per pass (before) against groups of requests
under one shared prefix (after), on the same requests and the real base model.

    python benchmarks/train_throughput.py [--base DIR] [--groups 2] [--group-size 16]
        [--threads 2]

Recipes, each timed on the same groups (warm-up pass first, not counted):

- ``before``: the earlier trainer: the top 10 of 30 layers trained in full, each whole
  dialogue (system prompt, tool list and request) through the model on its own;
- ``lora whole``: the trainer's LoRA adapter (its defaults), still one whole dialogue per
  pass;
- ``after``: the current trainer with its defaults: LoRA, the shared prefix run once per group
  (``training.smol_agent.prefix.group_backward``).

CPU seconds are the process's own (``time.process_time``), so the figure holds on a busy
machine too; wall seconds are printed beside them. Pause other heavy work for clean runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from training.smol_agent.train import DEFAULT_BASE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=DEFAULT_BASE)
    ap.add_argument("--groups", type=int, default=1)
    ap.add_argument("--group-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=777)
    args = ap.parse_args()
    os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.smol_agent.groups import GroupGenerator
    from training.smol_agent.prefix import full_backward, group_backward
    from training.smol_agent.train import build, encode_group, ensure_base, parse

    ensure_base(args.base)
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.base)
    gen = GroupGenerator(args.seed)
    groups = [encode_group(tok, gen.group(args.group_size), 2048) for _ in range(args.groups)]
    n_ex = sum(len(exs) for _, exs, _ in groups)
    n_tok = sum(len(p) * len(exs) + sum(len(e.ids) for e in exs) for p, exs, _ in groups)
    print(
        f"{args.groups} groups of {args.group_size}: {n_ex} requests, {n_tok} tokens as whole "
        f"dialogues; {args.threads} threads; torch {torch.__version__}"
    )

    full = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32)
    for name, p in full.named_parameters():
        p.requires_grad_(
            not name.startswith("model.embed_tokens")
            and not any(name.startswith(f"model.layers.{i}.") for i in range(20))
        )
    run = parse([])  # the trainer's defaults: the recipe a run uses
    cfg = {"rank": run.rank, "alpha": run.alpha, "first_layer": run.first_layer}
    lora, _ = build(cfg, args.base, args.threads)

    def timed(fn, model, **kw):
        p0, e0 = groups[0][0], groups[0][1][:2]
        fn(model, p0, e0, 1.0, **kw)  # warm-up
        model.zero_grad()
        c0, w0 = time.process_time(), time.perf_counter()
        for prefix, exs, _ in groups:
            fn(model, prefix, exs, 1.0, **kw)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        model.zero_grad()
        return cpu, wall

    rows = [
        ("before: top 10 layers, whole dialogues", *timed(full_backward, full)),
        ("LoRA, whole dialogues", *timed(full_backward, lora)),
        ("after: LoRA, shared prefix", *timed(group_backward, lora, chunk=run.chunk)),
    ]
    base_rate = None
    print(
        f"{'recipe':40s} {'CPU s/request':>14s} {'wall s/request':>15s} "
        f"{'requests/CPU hour':>18s} {'speed-up':>9s}"
    )
    for name, cpu, wall in rows:
        rate = n_ex / cpu * 3600
        base_rate = base_rate or rate
        print(
            f"{name:40s} {cpu / n_ex:14.2f} {wall / n_ex:15.2f} {rate:18.0f} "
            f"{rate / base_rate:8.1f}x"
        )


if __name__ == "__main__":
    main()
