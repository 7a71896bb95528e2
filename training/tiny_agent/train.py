"""Train the bundled tiny agent model from scratch on CPU: data -> tokenizer -> model.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \\
        python -m training.tiny_agent.train --out /work/runs/tiny --steps 5000 \\
        --dialogues 80000 2>&1 | tee /work/runs/tiny.log

jemalloc (``apt-get install libjemalloc2``) is optional: with glibc's allocator the large
per-step tensors are mmapped and zeroed afresh each step, and half the CPU time went to the
kernel here (1.6-1.8 s per step instead of 1.17 s on 2 cores).

Writes a Hugging Face model directory (Qwen2ForCausalLM, safetensors, a byte-level BPE
tokenizer with Qwen's special tokens and a ChatML chat template that carries the hermes tool
format). Copy it to ``qwen_agent/bundled/qwen-tiny-agent/`` to ship it. Deterministic for a
given seed and thread count. Not run by CI.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from training.tiny_agent.data import dialogues

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ADDED = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<tools>",
    "</tools>",
]
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CHAT_TEMPLATE = (Path(__file__).parent / "chat_template.jinja").read_text()


LOG_FILE: Path | None = None  # set to OUT/train.log by main()


def log(msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    if LOG_FILE is not None:
        with LOG_FILE.open("a") as f:
            f.write(line + "\n")


def train_tokenizer(texts: list[str], vocab_size: int, out: Path):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's pre-tokenizer: transformers loads every qwen2 tokenizer with this pattern
    # (single digits) whatever tokenizer.json says, so training must use it too
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL + ADDED,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok = mark_tags_not_special(tok)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def mark_tags_not_special(tok):
    """Tool and think tags are single tokens but not special (as in Qwen's tokenizer), so
    decoding with ``skip_special_tokens=True`` keeps them in the text."""
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    for entry in data["added_tokens"]:
        if entry["content"] in ADDED:
            entry["special"] = False
    return Tokenizer.from_str(json.dumps(data))


def encode(tokenizer, texts: list[str], max_len: int):
    """Token ids and a loss mask that is 1 on assistant turns (their text and <|im_end|>)."""
    enc = tokenizer(texts, return_offsets_mapping=True, add_special_tokens=False)
    start_tag = "<|im_start|>assistant\n"
    rows = []
    for text, ids, offsets in zip(texts, enc["input_ids"], enc["offset_mapping"], strict=True):
        spans, pos = [], 0
        while (i := text.find(start_tag, pos)) >= 0:
            begin = i + len(start_tag)
            end = text.find("<|im_end|>", begin)
            end = len(text) if end < 0 else end + len("<|im_end|>")
            spans.append((begin, end))
            pos = end
        mask = [int(any(b <= s and e <= end for b, end in spans)) for s, e in offsets]
        rows.append((ids[:max_len], mask[:max_len]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--dialogues", type=int, default=40_000)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--max-len", type=int, default=768)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", type=Path, help="continue training this model directory")
    ap.add_argument("--fp32", action="store_true", help="train without bf16 autocast")
    ap.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help="stop (and save) after this many steps; the schedule still spans --steps",
    )
    ap.add_argument("--echo-rate", type=float, default=0.0, help="share of copy drills in the data")
    ap.add_argument(
        "--history-rate",
        type=float,
        default=0.0,
        help="share of dialogues that follow an earlier exchange (second user turns)",
    )
    ap.add_argument(
        "--prompt-weight", type=float, default=0.2, help="loss weight of non-assistant tokens"
    )
    ap.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps")
    ap.add_argument(
        "--random-rate",
        type=float,
        default=0.5,
        help="share of lookups made of made-up words (0 for stage 1)",
    )
    ap.add_argument(
        "--word-rate",
        type=float,
        default=0.0,
        help="share of made-up tool domains named with real words (and of distractor "
        "tools that are made-up domains)",
    )
    args = ap.parse_args()

    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    global LOG_FILE
    LOG_FILE = args.out / "train.log"

    log(f"generating {args.dialogues} dialogues (seed {args.seed})")
    data = dialogues(
        args.dialogues,
        seed=args.seed,
        split="train",
        random_rate=args.random_rate,
        echo_rate=args.echo_rate,
        history_rate=args.history_rate,
        word_rate=args.word_rate,
    )
    texts = [d.text() for d in data]
    kinds: dict[str, int] = {}
    for d in data:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    log(f"kinds: {kinds}")

    if args.init:
        log(f"continuing from {args.init}")
        tokenizer = AutoTokenizer.from_pretrained(args.init)
        tokenizer.save_pretrained(args.out)
    else:
        log(f"training a byte-level BPE tokenizer, vocab {args.vocab}")
        tokenizer = train_tokenizer(texts[:20_000], args.vocab, args.out)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        use_sliding_window=False,
    )
    if not args.init:
        # train on the tokenizer exactly as transformers loads it for a qwen2 model
        config.save_pretrained(args.out)
        tokenizer = AutoTokenizer.from_pretrained(args.out)
    rows = encode(tokenizer, texts, args.max_len)
    lengths = sorted(len(r[0]) for r in rows)
    log(f"tokens per dialogue: median {lengths[len(lengths) // 2]}, max {lengths[-1]}")

    model = Qwen2ForCausalLM.from_pretrained(args.init) if args.init else Qwen2ForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters, head_dim {args.hidden // args.heads}")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.05)
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    rng = random.Random(args.seed)
    batches = length_batches(rows, args.batch, rng)
    model.train()
    t0 = time.time()
    ema = None
    pad = tokenizer.pad_token_id
    last = min(args.steps, args.stop_after or args.steps)
    for step in range(last):
        if step and step % len(batches) == 0:
            batches = length_batches(rows, args.batch, rng)
        batch = [rows[i] for i in batches[step % len(batches)]]
        width = min(args.max_len, -(-max(len(ids) for ids, _ in batch) // 32) * 32)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        weights = torch.zeros((len(batch), width))
        for i, (tok_ids, mask) in enumerate(batch):
            n = len(tok_ids)
            ids[i, :n] = torch.tensor(tok_ids)
            att[i, :n] = 1
            # assistant tokens count fully; the prompt's tokens a little, which teaches
            # copying early (the "required" list repeats the keys, questions repeat the
            # tools' phrases)
            weights[i, :n] = torch.tensor(mask, dtype=torch.float).clamp(min=args.prompt_weight)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not args.fp32):
            logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none"
        )
        w = weights[:, 1:].reshape(-1)
        loss = (nll * w).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 25 == 0 or step == args.steps - 1:
            el = time.time() - t0
            eta = el / (step + 1) * (args.steps - step - 1)
            log(
                f"step {step + 1}/{args.steps} loss {ema:.4f} lr {lr_at(step):.2e} "
                f"{el / (step + 1):.2f}s/step eta {eta / 60:.1f} min"
            )
        if (step + 1) % args.save_every == 0 and step + 1 < last:
            save(model, tokenizer, args.out, args, step + 1)
    save(model, tokenizer, args.out, args, last)
    log(f"done in {(time.time() - t0) / 60:.1f} min -> {args.out}")


def length_batches(rows: list, size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length rows (less padding), in shuffled order."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), size * 64):
        chunk = sorted(order[start : start + size * 64], key=lambda i: len(rows[i][0]))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def save(model, tokenizer, out: Path, args: argparse.Namespace, step: int) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    meta = {
        "step": step,
        "args": {k: str(v) for k, v in vars(args).items()},
        "trained_with": sys.version.split()[0],
    }
    (out / "training.json").write_text(json.dumps(meta, indent=2))
    log(f"saved checkpoint at step {step}")


if __name__ == "__main__":
    main()
