"""Replays the relevance check's rule with other thresholds on generated dialogues.

For each dialogue whose prompt lists tools, the model's first step is run once: whether
it goes to open a call, each listed tool's direct log-probability (the call's head naming
it) and its gain (how much more likely the question is with that tool listed alone).
Then ``pick`` from ``qwen_agent/bundled/aids.py`` is replayed for a grid of the two
thresholds, and tool selection (dialogues that need a call) and false positives
(dialogues that need none) are printed for each. The bundled model's thresholds were
chosen with ``--split train --seed 999`` (not on held-out dialogues):

    python benchmarks/relevance_sweep.py [--model DIR] [--split train] [--seed 999] [--n 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_agent.formats.guard import CALL_HEAD  # noqa: E402
from training.tiny_agent.data import dialogues  # noqa: E402


def features(llm: Any, data: list[Any]) -> list[dict[str, Any]]:
    """Per dialogue with tools: kind, names, wanted name, whether the first step opens a
    call, direct log-probabilities and gains."""
    import torch

    from backends.transformers import _openers

    closers = [i for i, t in enumerate(llm.vocab()) if t.startswith('"')]
    openers = set(_openers(llm.vocab(), "<tool_call>"))
    rows = []
    for d in data:
        request = d.request()
        messages = request.messages
        choice = llm._tool_choice(request)
        if choice is None:
            continue
        ids = torch.tensor([llm._encode(llm.render(messages))], device=llm.device)
        with torch.inference_mode():
            start = choice.look.start(ids)
            heads = [choice.look.encode(CALL_HEAD + name) for name in choice.names]
            direct = choice.look.score(start, heads, closers)
            base, *alone = choice.look.sums(choice.channel)
        rows.append(
            {
                "kind": d.kind,
                "names": choice.names,
                "want": d.expected_call.name if d.expected_call else None,
                "opens": int(start[0].argmax()) in openers,
                "direct": direct,
                "gains": [a - base for a in alone],
            }
        )
    return rows


def replay(rows: list[dict[str, Any]], relevant: float, evidence: float) -> tuple[str, str]:
    """(tool selection, false positives) under the rule with these thresholds."""
    from qwen_agent.bundled.aids import pick as _pick

    need = right = none = false = 0
    for r in rows:
        got = None
        if r["opens"]:
            i = _pick(r["direct"], r["gains"], relevant, evidence)
            got = None if i is None else r["names"][i]
        if r["want"] is None:
            none += 1
            false += got is not None
        else:
            need += 1
            right += got == r["want"]
    return f"{100 * right / max(need, 1):5.1f}% ({right}/{need})", (
        f"{100 * false / max(none, 1):5.1f}% ({false}/{none})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        default="qwen-tiny-agent",
        help="model directory or bundled name (default: qwen-tiny-agent, whose aids these are)",
    )
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=999)
    ap.add_argument("--split", default="train", choices=["eval", "train"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()

    from backends.transformers import TransformersChatModel
    from qwen_agent.bundled.aids import CALL_EVIDENCE, RELEVANT_NATS

    llm = TransformersChatModel(args.model, threads=args.threads)
    rows = features(llm, dialogues(args.n, seed=args.seed, split=args.split))
    print(f"model: {llm.model_name}  split={args.split} seed={args.seed} n={len(rows)}")
    print(f"{'relevant':>8s} {'evidence':>8s}  {'tool selection':>18s}  {'false positives':>16s}")
    print(f"{'(none)':>8s} {'(none)':>8s}  ", end="")
    print("  ".join(f"{v:>17s}" for v in replay(rows, float("inf"), float("-inf"))), end="")
    print("   the model's own pick")
    for relevant in (2.0, 3.0, 5.0):
        for evidence in (-1.0, -2.0, -3.0, -4.0, -5.0):
            mark = "   (default)" if (relevant, evidence) == (RELEVANT_NATS, CALL_EVIDENCE) else ""
            sel, fp = replay(rows, relevant, evidence)
            print(f"{relevant:8.1f} {evidence:8.1f}  {sel:>18s}  {fp:>16s}{mark}")


if __name__ == "__main__":
    main()
