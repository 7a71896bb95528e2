"""Fine-tune the converted base for tool use (hermes and ReAct) on CPU, resumably.

    python -m training.smol_agent.train --base /work/v2/base --out /work/v2/run \\
        --steps 600 --batch-tokens 4096 2>&1 | tee -a /work/v2/train.out

Keep ``--out`` outside the repository: it holds ``checkpoint/`` (weights, optimizer state
and the step, written atomically every ``--save-every`` steps) and ``train.log``. Rerun
the same command after an interruption and it resumes from the last checkpoint; the
batches are a function of ``--seed`` and the step, so a resumed run sees the same data
as an uninterrupted one. The loss is on assistant turns only (for ReAct, not on the
observation text), and logits are computed only at those positions. ``--freeze-layers K``
trains the top layers only (faster: backward stops at layer K). Writes ``final/`` (a
float32 Hugging Face model directory) and its ``training.json`` at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from training.smol_agent.data import Generator

LOG: Path | None = None


def log(msg: str) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    if LOG is not None:
        with LOG.open("a") as f:
            f.write(line + "\n")


def loss_spans(text: str) -> list[tuple[int, int]]:
    """Character spans the loss covers: assistant turns with their ``<|im_end|>``, minus
    ReAct observation text (the model writes ``Observation:``, the tool the rest)."""
    tag, end_tag = "<|im_start|>assistant\n", "<|im_end|>"
    spans, pos = [], 0
    while (i := text.find(tag, pos)) >= 0:
        begin = i + len(tag)
        end = text.find(end_tag, begin)
        end = len(text) if end < 0 else end + len(end_tag)
        cur = begin
        while (o := text.find("Observation:", cur, end)) >= 0:
            o += len("Observation:")
            spans.append((cur, o))
            nxt = text.find("\nThought:", o, end)
            cur = end if nxt < 0 else nxt + 1
        if cur < end:
            spans.append((cur, end))
        pos = end
    return spans


def encode(tokenizer, text: str, max_len: int) -> tuple[list[int], list[int]]:
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    spans = loss_spans(text)
    ids, labels = enc["input_ids"], []
    for tid, (s, e) in zip(ids, enc["offset_mapping"], strict=True):
        inside = any(b <= s and e <= f for b, f in spans)
        labels.append(tid if inside else -100)
    return ids[:max_len], labels[:max_len]


def batch_for(step: int, args, tokenizer):
    """The dialogues of one step: drawn from (seed, step) until the token budget is full."""
    gen = Generator(args.seed * 1_000_003 + step, react_rate=args.react_rate)
    rows, total = [], 0
    while total < args.batch_tokens:
        ids, labels = encode(tokenizer, gen.dialogue().text(), args.max_len)
        rows.append((ids, labels))
        total += len(ids)
    return rows


def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def save(model, opt, step: int, args, ckpt: Path) -> None:
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {k: v for k, v in model.state_dict().items() if k in args.trainable}
    torch.save({"model": trainable, "opt": opt.state_dict(), "step": step}, tmp / "state.pt")
    (tmp / "step.json").write_text(json.dumps({"step": step}))
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    global LOG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--max-len", type=int, default=1536)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--react-rate", type=float, default=0.45)
    ap.add_argument("--freeze-layers", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument(
        "--bf16",
        action="store_true",
        help="bf16 autocast (on CUDA, or a CPU with AVX-512 BF16 / AMX; slow on AVX2)",
    )
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when there)")
    ap.add_argument(
        "--max-steps-now", type=int, default=0, help="stop after this many steps (for probes)"
    )
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    device = (
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    LOG = args.out / "train.log"
    ckpt = args.out / "checkpoint"
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForCausalLM.from_pretrained(args.base, dtype=torch.float32).to(device)
    model.train()
    model.config.use_cache = False
    for name, p in model.named_parameters():
        frozen = name.startswith("model.embed_tokens") or any(
            name.startswith(f"model.layers.{i}.") for i in range(args.freeze_layers)
        )
        p.requires_grad_(not frozen)
    params = [p for p in model.parameters() if p.requires_grad]
    args.trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    start = 0
    if (ckpt / "state.pt").is_file():
        state = torch.load(ckpt / "state.pt", weights_only=False, map_location=device)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(f"resumed from {ckpt} at step {start}")
    n_train = sum(p.numel() for p in params)
    log(
        f"training {n_train / 1e6:.1f}M of {model.num_parameters() / 1e6:.1f}M parameters; "
        f"steps {start}..{args.steps}; args "
        + json.dumps({k: str(v) for k, v in vars(args).items() if k != "trainable"})
    )
    t0, done_tokens, ema = time.time(), 0, None
    step = start
    for step in range(start, args.steps):
        if args.max_steps_now and step - start >= args.max_steps_now:
            break
        ts = time.time()
        rows = batch_for(step, args, tokenizer)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        # one dialogue per forward pass: no padding (a padded batch wasted half its work)
        n_loss = sum(sum(lab != -100 for lab in r_lab[1:]) for _, r_lab in rows)
        total = 0.0
        for r_ids, r_lab in rows:
            ids = torch.tensor([r_ids], device=device)
            target = torch.tensor(r_lab[1:], device=device)
            keep = target != -100
            with torch.autocast(device, dtype=torch.bfloat16, enabled=args.bf16):
                hidden = model.model(input_ids=ids).last_hidden_state[0, :-1]
                logits = model.lm_head(hidden[keep]).float()
            loss = torch.nn.functional.cross_entropy(logits, target[keep], reduction="sum") / n_loss
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = torch.tensor(total)
        ntok = sum(len(r) for r, _ in rows)
        done_tokens += ntok
        ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
        elapsed = time.time() - t0
        per_step = elapsed / (step + 1 - start)
        eta = per_step * (args.steps - step - 1)
        log(
            f"step {step + 1}/{args.steps} loss {loss.item():.4f} (ema {ema:.4f}) "
            f"lr {lr_at(step, args):.2e} "
            f"{len(rows)} dialogues {ntok} tokens {time.time() - ts:.1f}s/step "
            f"{done_tokens / elapsed:.0f} tok/s ETA {eta / 60:.1f} min"
        )
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            save(model, opt, step + 1, args, ckpt)
    else:
        step = args.steps
    if step >= args.steps:
        final = args.out / "final"
        model.save_pretrained(final)
        tokenizer.save_pretrained(final)
        base_meta = (
            json.loads((args.base / "base.json").read_text())
            if (args.base / "base.json").is_file()
            else {}
        )
        meta = {
            "base": base_meta,
            "steps": args.steps,
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "args": {
                k: str(v) for k, v in vars(args).items() if k not in ("trainable", "out", "base")
            },
        }
        (final / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
        log(f"wrote {final}")


if __name__ == "__main__":
    main()
