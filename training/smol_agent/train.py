"""Fine-tune the converted SmolLM2 base for tool use with LoRA, resumably across machines.

    python -m training.smol_agent.train                       # resume the committed run
    python -m training.smol_agent.train --threads 1 --nice 10 # beside tests

The run lives in the repository (``training/smol_agent/run/`` by default): ``adapter.safetensors``
(the LoRA weights, float16, one file overwritten at each save) and ``state.json`` (the step,
the settings, the data seed, the figures so far). Commit both and the next session, on a
new machine, resumes where this one stopped with the same command. The batch of a step is a
function of ``seed`` and the step alone, so a resumed run sees the data an uninterrupted
one would. Adam's moments stay beside the run in ``optimizer.pt`` (not committed, they are
twice the adapter's size): a resume without them (a fresh clone) restarts them and warms
the learning rate up again over ``--rewarm`` steps.

A step is ``--groups`` groups of ``--group-size`` requests; each group shares one system
prompt and tool list, which runs once (``training.smol_agent.prefix``). The base is built
from PyPI on first use (``training.smol_agent.base``) into ``--base``. The number of torch
threads can be changed while it runs: write a number into ``RUN/threads``. SIGTERM or
Ctrl-C finishes the step, saves and stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

RUN = Path(__file__).with_name("run")
DEFAULT_BASE = Path(
    os.environ.get("QWEN_SMOL_BASE", Path.home() / ".cache" / "qwen-agent" / "smol-base")
)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# what a resume must keep: changing one of these mid-run would make the state meaningless
FIXED = ["rank", "alpha", "first_layer", "seed", "group_size", "groups", "react_rate"]


def log(run: Path, msg: str) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    with (run / "train.log").open("a") as f:
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


def encode_group(tokenizer, group, max_len: int, decision: tuple[float, int] = (1.0, 0)):
    """Prefix ids and one ``Example`` per request whose tokens start with the prefix's
    (a merge across the boundary would train on tokens the agent never sends: skipped).
    ``decision = (weight, n)``: the first ``n`` tokens of every assistant span weigh
    ``weight`` in the loss. They hold the turn's decision (hermes: ``<tool_call>`` or a
    word; ReAct: "Thought: I should use X" or "Thought: no tool fits") and the tool's name,
    a handful of tokens beside the dozens of a call's values and an answer."""
    from training.smol_agent.prefix import IGNORE, Example

    weight, first_n = decision

    prefix = tokenizer(group.prefix, add_special_tokens=False)["input_ids"]
    out, skipped = [], 0
    for text in group.texts():
        enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = enc["input_ids"]
        if ids[: len(prefix)] != prefix or len(ids) > max_len:
            skipped += 1
            continue
        spans = loss_spans(text)
        labels, weights = [], []
        seen = [0] * len(spans)  # tokens so far in each span
        for t, (s, e) in zip(ids, enc["offset_mapping"], strict=True):
            k = next((k for k, (b, f) in enumerate(spans) if b <= s and e <= f), -1)
            labels.append(t if k >= 0 else IGNORE)
            weights.append(weight if k >= 0 and seen[k] < first_n else 1.0)
            if k >= 0:
                seen[k] += 1
        n = len(prefix)
        w = weights[n:] if weight != 1.0 and first_n > 0 else None
        out.append(Example(ids[n:], labels[n:], w))
    return prefix, out, skipped


def batch_for(step: int, cfg: dict, tokenizer):
    from training.smol_agent.groups import GroupGenerator

    gen = GroupGenerator(cfg["seed"] * 1_000_003 + step, react_rate=cfg["react_rate"])
    decision = (cfg.get("decision_weight", 1.0), cfg.get("decision_tokens", 0))
    return [
        encode_group(tokenizer, gen.group(cfg["group_size"]), cfg["max_len"], decision)
        for _ in range(cfg["groups"])
    ]


def lr_at(step: int, cfg: dict, rewarm_from: int | None) -> float:
    """Linear warm-up, then constant (the run has no known end); after a resume without
    Adam's moments, a second short warm-up."""
    lr = cfg["lr"] * min(1.0, (step + 1) / cfg["warmup"])
    if rewarm_from is not None:
        lr *= min(1.0, (step - rewarm_from + 1) / cfg["rewarm"])
    return lr


def load_state(run: Path) -> dict | None:
    path = run / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save(model, opt, state: dict, run: Path, avg: Average | None = None) -> None:
    import torch
    from safetensors.torch import save_file

    adapter = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k
    }
    meta = {"step": str(state["step"])}
    write_atomic(run / "adapter.safetensors", lambda p: save_file(adapter, str(p), metadata=meta))
    if avg is not None:
        half = {k: v.to(torch.float16).contiguous() for k, v in avg.weights.items()}
        meta_avg = meta | {"decay": str(avg.decay), "since": str(avg.since)}
        write_atomic(run / AVERAGE, lambda p: save_file(half, str(p), metadata=meta_avg))
    local = {  # full precision and Adam's moments, for an exact resume on this machine
        "step": state["step"],
        "adapter": {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k},
        "opt": opt.state_dict(),
        "avg": None if avg is None else avg.local(),
    }
    write_atomic(run / "optimizer.pt", lambda p: torch.save(local, p))
    # state.json last: it names the step the adapter beside it belongs to
    write_atomic(run / "state.json", lambda p: p.write_text(json.dumps(state, indent=1) + "\n"))


AVERAGE = "adapter_avg.safetensors"


class Average:
    """An exponential moving average of the adapter's weights, kept beside the run and
    written to ``adapter_avg.safetensors`` at every save: at a constant learning rate the
    weights wander from step to step (held-out false positives of single checkpoints went
    45% -> 85% in 66 steps), and the average can be shipped instead (``ship --averaged``).
    It does not touch training. On a new machine (the file is not committed) it starts
    again from the weights it resumes with."""

    def __init__(self, model, decay: float, since: int, weights: dict | None = None) -> None:
        self.decay, self.since = decay, since
        self._live = {k: v for k, v in model.named_parameters() if v.requires_grad}
        self.weights = weights or {k: v.detach().clone() for k, v in self._live.items()}

    def update(self) -> None:
        for k, v in self._live.items():
            self.weights[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)

    def local(self) -> dict:
        return {"decay": self.decay, "since": self.since, "weights": self.weights}


def build(cfg: dict, base: Path, threads: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model.config.use_cache = False
    lora = LoraConfig(
        r=cfg["rank"],
        lora_alpha=cfg["alpha"],
        lora_dropout=0.0,
        target_modules=TARGETS,
        layers_to_transform=list(range(cfg["first_layer"], model.config.num_hidden_layers)),
    )
    model = get_peft_model(model, lora)
    model.train()
    return model, tokenizer


def ensure_base(base: Path) -> None:
    if (base / "config.json").is_file():
        return
    from training.smol_agent import base as base_mod

    print(f"building the base model into {base} (once) ...", flush=True)
    base_mod.main(["--out", str(base)])


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--run", type=Path, default=RUN, help="the run's folder (default: the committed one)"
    )
    ap.add_argument("--base", type=Path, default=DEFAULT_BASE)
    ap.add_argument("--steps", type=int, default=3000, help="where the ETA counts to")
    ap.add_argument("--stop-after", type=int, default=0, help="stop after this many steps now")
    ap.add_argument("--stop-at", type=int, default=0, help="stop at this step")
    ap.add_argument("--save-every", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=2, help="requests per forward pass")
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    # settings of a new run (a resume keeps the run's own; --lr may change)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--alpha", type=int, default=64)
    ap.add_argument("--first-layer", type=int, default=20, help="LoRA on this layer and above")
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--group-size", type=int, default=32)
    ap.add_argument("--groups", type=int, default=2, help="groups per step")
    ap.add_argument("--react-rate", type=float, default=0.45)
    ap.add_argument("--max-len", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rewarm", type=int, default=10)
    ap.add_argument(
        "--decision-weight",
        type=float,
        default=3.0,
        help="loss weight of the first --decision-tokens tokens of every assistant turn",
    )
    ap.add_argument("--decision-tokens", type=int, default=16)
    ap.add_argument(
        "--average",
        type=float,
        default=0.98,
        help=f"decay of the weights' moving average written to {AVERAGE} (0: none)",
    )
    args = ap.parse_args(argv)
    for name in ("steps", "save_every", "threads", "chunk", "group_size", "groups", "rank"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.decision_weight <= 100 or args.decision_tokens < 0:
        ap.error("--decision-weight must be in (0, 100] and --decision-tokens at least 0")
    if not 0 <= args.react_rate <= 1:
        ap.error("--react-rate must be between 0 and 1")
    if args.lr is not None and not (0 < args.lr < 1):
        ap.error("--lr must be between 0 and 1")
    if not 0 <= args.average < 1:
        ap.error("--average must be at least 0 and below 1")
    return args


def open_state(run: Path, args: argparse.Namespace, argv: list[str] | None) -> dict:
    """The run's state, or a new one from the arguments; refuses a resume whose fixed
    settings were given otherwise."""
    state = load_state(run)
    if state is None:
        cfg = {k: getattr(args, k) for k in FIXED}
        cfg |= {
            "lr": args.lr or 2e-4,
            "max_len": args.max_len,
            "warmup": args.warmup,
            "rewarm": args.rewarm,
            "decision_weight": args.decision_weight,
            "decision_tokens": args.decision_tokens,
        }
        state = {
            "step": 0,
            "config": cfg,
            "examples": 0,
            "tokens": 0,
            "train_seconds": 0.0,
            "history": [],
            "sessions": [],
        }
    cfg = state["config"]
    changed = [k for k in FIXED if _given(argv, k) and getattr(args, k) != cfg[k]]
    if changed and state["step"]:
        raise SystemExit(
            f"{run} is a run at step {state['step']} with {changed} set otherwise; "
            "use another --run for other settings"
        )
    if args.lr is not None and args.lr != cfg["lr"]:
        if state["step"]:  # a new rate for the rest of the run (recorded)
            state.setdefault("changes", []).append(
                {"step": state["step"], "set": "lr", "to": args.lr}
            )
        cfg["lr"] = args.lr
    for key in ("decision_weight", "decision_tokens"):
        # a run from before the setting existed takes it up from now (recorded)
        if key not in cfg or (_given(argv, key) and getattr(args, key) != cfg[key]):
            cfg[key] = getattr(args, key)
            state.setdefault("changes", []).append(
                {"step": state["step"], "set": key, "to": cfg[key]}
            )
    return state


def resume(model, opt, run: Path, state: dict, average: float) -> tuple[int | None, Average | None]:
    """Loads the run's adapter (and this machine's Adam moments and weight average, when
    they are of this step) into ``model`` and ``opt``; returns the step a second warm-up
    starts at (None when Adam's moments were found) and the weight average."""
    from safetensors.torch import load_file

    cfg = state["config"]
    rewarm_from = None
    local = None
    if state["step"]:
        adapter = load_file(str(run / "adapter.safetensors"))
        missing = [k for k in adapter if k not in model.state_dict()]
        if missing:
            raise SystemExit(f"adapter keys the model lacks: {missing[:3]}")
        local = _local_state(run / "optimizer.pt", state["step"])
        if local is not None:
            model.load_state_dict(local["adapter"], strict=False)
            opt.load_state_dict(local["opt"])
            log(run, f"resumed at step {state['step']} with Adam's moments")
        else:
            model.load_state_dict({k: v.float() for k, v in adapter.items()}, strict=False)
            rewarm_from = state["step"]
            log(
                run,
                f"resumed at step {state['step']} without Adam's moments: "
                f"warming up again over {cfg['rewarm']} steps",
            )
    avg = None
    if average:
        saved = (local or {}).get("avg")
        if saved and saved["decay"] == average:
            avg = Average(model, average, saved["since"], saved["weights"])
        else:
            avg = Average(model, average, state["step"])
        log(run, f"weight average (decay {avg.decay}) since step {avg.since}: {AVERAGE}")
    return rewarm_from, avg


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.nice:
        os.nice(args.nice)
    os.environ.setdefault("TRANSFORMERS_SDPA_FORCE_GQA", "1")
    run: Path = args.run
    run.mkdir(parents=True, exist_ok=True)
    state = open_state(run, args, argv)
    cfg = state["config"]

    import torch

    from training.smol_agent.prefix import group_backward

    ensure_base(args.base)
    device = (
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.manual_seed(cfg["seed"])
    model, tokenizer = build(cfg, args.base, args.threads)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.0, betas=(0.9, 0.99))
    rewarm_from, avg = resume(model, opt, run, state, args.average)
    n_train = sum(p.numel() for p in params)
    log(
        run,
        f"LoRA r{cfg['rank']} on layers {cfg['first_layer']}+: {n_train / 1e6:.2f}M trained "
        f"parameters; {args.threads} threads; config {json.dumps(cfg)}",
    )
    state["sessions"].append(
        {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "at_step": state["step"],
            "threads": args.threads,
            "device": device,
            "commit": _head(),
        }
    )
    stopping: list[int] = []  # SIGTERM / SIGINT: finish the step, save, stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    t_session, steps_now, ema = time.time(), 0, None
    threads_file = run / "threads"
    while True:
        step = state["step"]
        if (args.stop_after and steps_now >= args.stop_after) or (
            args.stop_at and step >= args.stop_at
        ):
            break
        if stopping:
            log(run, f"signal {stopping[0]}: stopping after step {step}")
            break
        if threads_file.is_file():
            try:
                torch.set_num_threads(max(1, int(threads_file.read_text().strip())))
            except ValueError:
                pass
        ts = time.time()
        batch = batch_for(step, cfg, tokenizer)
        n_loss = sum(e.loss_weight for _, exs, _ in batch for e in exs)
        lr = lr_at(step, cfg, rewarm_from)
        for g in opt.param_groups:
            g["lr"] = lr
        total = sum(
            group_backward(model, p, exs, 1.0 / n_loss, chunk=args.chunk, pad_id=pad)
            for p, exs, _ in batch
            if exs
        )
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if avg is not None:
            avg.update()
        loss = total / max(1, n_loss)
        ema = loss if ema is None else 0.95 * ema + 0.05 * loss
        n_ex = sum(len(exs) for _, exs, _ in batch)
        n_tok = sum(len(p) + sum(len(e.ids) for e in exs) for p, exs, _ in batch)
        dt = time.time() - ts
        state["step"] = step + 1
        state["examples"] += n_ex
        state["tokens"] += n_tok
        state["train_seconds"] = round(state["train_seconds"] + dt, 1)
        steps_now += 1
        per_step = (time.time() - t_session) / steps_now
        eta = per_step * max(0, args.steps - step - 1) / 60
        skipped = sum(s for _, _, s in batch)
        log(
            run,
            f"step {step + 1} loss {loss:.4f} (ema {ema:.4f}) lr {lr:.2e} {n_ex} requests "
            f"{n_tok} tokens{f' ({skipped} skipped)' if skipped else ''} {dt:.1f}s "
            f"{n_ex / dt * 3600:.0f} requests/h; ETA to step {args.steps}: {eta:.0f} min",
        )
        if state["step"] % args.save_every == 0:
            state["history"].append(
                {
                    "step": state["step"],
                    "loss_ema": round(ema, 4),
                    "examples": state["examples"],
                    "tokens": state["tokens"],
                }
            )
            save(model, opt, state, run, avg)
    if steps_now:
        save(model, opt, state, run, avg)
        log(run, f"saved step {state['step']} in {run}")


def _given(argv: list[str] | None, name: str) -> bool:
    flag = "--" + name.replace("_", "-")
    return any(
        a == flag or a.startswith(flag + "=") for a in (argv if argv is not None else sys.argv[1:])
    )


def _head() -> str:
    """The repository's commit (the data generator's version), or "" outside git."""
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        return ""


def _local_state(path: Path, step: int) -> dict | None:
    """This machine's full-precision adapter and Adam's moments, if they belong to ``step``
    (a crash between the two writes of a save leaves them a save ahead: not used)."""
    import torch

    if not path.is_file():
        return None
    local = torch.load(path, map_location="cpu")
    return local if local.get("step") == step else None


if __name__ == "__main__":
    main()
