"""Tool-use evaluation of a model on held-out synthetic dialogues.

The dialogues come from ``training/tiny_agent/data.py`` with another seed and the
``eval`` split, whose lookup subjects (and so tool names and parameter keys) never occur in
training. Metrics, as in Qwen's own tool-use evaluation:

- tool selection: the first call names the expected tool;
- argument exact match: ... and its arguments equal the expected ones;
- false positives: a call where no tool should be called;
- unparseable: outputs the hermes parser cannot read (errors, or a call tag with no call);
- answer uses the result: after the ``<tool_response>``, the answer contains the result
  (for the dialogues whose reference answer quotes it).

By default the transformers backend decodes calls under the tool guard (names and argument
keys limited to the listed tools, as users run it) with its own copy nudge and lookahead
and relevance check (on for the bundled model); ``--no-guard``, ``--copy-bias 0``,
``--lookahead off`` and ``--relevance off`` measure without them. ``--failures FILE``
writes every failed dialogue to FILE.

    python benchmarks/tool_eval.py [--model DIR] [--n 400] [--seed 777] [--no-guard] [--history]

``--history`` puts the previous held-out dialogue (question, call, result, answer) before
each question, so the question is a conversation's second user turn.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qwen_agent.formats.hermes import HermesFormat  # noqa: E402
from qwen_agent.llm import GenerationConfig, LLMConfig, drain, get_chat_model  # noqa: E402
from training.tiny_agent.data import dialogues  # noqa: E402


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model directory (default: the bundled one)")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--split", default="eval", choices=["eval", "train"])
    ap.add_argument("--no-guard", action="store_true", help="decode without the tool guard")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument(
        "--history",
        action="store_true",
        help="put another held-out dialogue before each one (a second user turn)",
    )
    ap.add_argument(
        "--copy-bias", type=float, default=None, help="the backend's copy_bias (default: its own)"
    )
    ap.add_argument(
        "--lookahead",
        choices=["auto", "on", "off"],
        default="auto",
        help="the backend's lookahead (default: its own)",
    )
    ap.add_argument(
        "--relevance",
        choices=["auto", "on", "off"],
        default="auto",
        help="the backend's relevance check (default: its own)",
    )
    ap.add_argument("--failures", default="", help="write every failure to this file")
    return ap.parse_args()


def main() -> None:
    args = _parse_args()
    llm = get_chat_model(
        LLMConfig(
            backend="transformers",
            model=args.model,
            tool_guard=not args.no_guard,
            threads=args.threads,
            copy_bias=args.copy_bias,
            lookahead=_switch(args.lookahead),
            relevance=_switch(args.relevance),
        )
    )
    fmt = HermesFormat()
    cfg = GenerationConfig(max_tokens=160)
    data = dialogues(args.n, seed=args.seed, split=args.split)
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    failures: list[str] = []
    unreadable: list[str] = []
    start = time.perf_counter()
    for i, d in enumerate(data):
        out = drain(llm, _prompt(fmt, d, data[i - 1] if args.history else None), cfg, tools=d.tools)
        parsed = fmt.parse(out.text, out.finish_reason or "stop")
        s = stats[d.kind]
        s["n"] += 1
        bad = bool(parsed.errors) or ("<tool_call>" in out.text and not parsed.calls)
        s["unparseable"] += bad
        if bad:
            unreadable.append(f"[{d.kind}] {d.messages[0].text!r} -> {out.text!r}")
        want = d.expected_call
        if want is None:
            s["no_tool"] += 1
            s["false_positive"] += bool(parsed.calls)
            if parsed.calls:
                failures.append(f"[{d.kind}] {d.messages[0].text!r} -> {out.text!r}")
            continue
        s["tool"] += 1
        got = parsed.calls[0] if parsed.calls else None
        selected = got is not None and got.name == want.name
        exact = selected and got.arguments == want.arguments
        s["selected"] += selected
        s["exact"] += exact
        if not exact:
            failures.append(
                f"[{d.kind}] {d.messages[0].text!r} want {want.name}"
                f"{want.arguments} -> {out.text!r}"
            )
        # second turn: the answer after the tool's result (where the reference quotes it)
        if d.messages[2].text in d.messages[3].text:
            prompt = fmt.build_prompt(d.messages[:3], d.tools, d.instructions)
            final = drain(llm, prompt, cfg, tools=d.tools)
            s["answered"] += 1
            s["uses_result"] += d.messages[2].text in final.text
        if (i + 1) % 50 == 0:
            print(
                f"  {i + 1}/{len(data)} dialogues, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    header = (
        f"model: {getattr(llm, 'model_name', '?')}  split={args.split} seed={args.seed} "
        f"n={len(data)}{' history' if args.history else ''} "
        f"guard={'off' if args.no_guard else 'on'} "
        f"copy_bias={getattr(llm, 'copy_bias', '?')} "
        f"lookahead={getattr(llm, 'lookahead', '?')} "
        f"relevance={getattr(llm, 'relevance', '?')} "
        f"({time.perf_counter() - start:.0f} s)"
    )
    _report(header, stats, unreadable, failures, args.failures)


def _switch(value: str) -> bool | None:
    return {"auto": None, "on": True, "off": False}[value]


def _report(
    header: str,
    stats: dict[str, dict[str, int]],
    unreadable: list[str],
    failures: list[str],
    failures_file: str,
) -> None:
    total: dict[str, int] = defaultdict(int)
    print(header)
    print(
        f"{'kind':10s} {'n':>5s} {'select':>8s} {'exact':>8s} {'false+':>8s} "
        f"{'unparse':>8s} {'uses res':>8s}"
    )
    for kind in sorted(stats):
        s = stats[kind]
        for k, v in s.items():
            total[k] += v
        print(_row(kind, s))
    print(_row("all", total))
    print()
    print(f"tool selection:      {_pct(total['selected'], total['tool'])}  (goal >= 95%)")
    print(f"argument exact match: {_pct(total['exact'], total['tool'])}  (goal >= 90%)")
    print(f"false positives:     {_pct(total['false_positive'], total['no_tool'])}  (goal <= 5%)")
    print(f"unparseable:         {_pct(total['unparseable'], total['n'])}  (goal <= 1%)")
    print(f"answer uses result:  {_pct(total['uses_result'], total['answered'])}")
    if unreadable:
        print(f"\nunparseable outputs ({len(unreadable)}):")
        for f in unreadable[:12]:
            print("  " + f[:300])
    if failures:
        print(f"\nfirst failures ({len(failures)} in all):")
        for f in failures[:12]:
            print("  " + f[:300])
    if failures_file:
        Path(failures_file).write_text("\n".join(unreadable + failures) + "\n", encoding="utf-8")
        print(f"\nall {len(unreadable) + len(failures)} failures written to {failures_file}")


def _prompt(fmt: HermesFormat, d: Any, before: Any = None) -> list[Any]:
    """The dialogue's first prompt; with ``before``, that dialogue comes first (the
    question is then the conversation's second user turn)."""
    if before is None:
        return d.prompt_messages()
    tools = d.tools + [t for t in before.tools if t not in d.tools]
    return fmt.build_prompt([*before.messages, d.messages[0]], tools, d.instructions)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}% ({a}/{b})" if b else "  n/a"


def _row(kind: str, s: dict[str, int]) -> str:
    def p(a: str, b: str) -> str:
        return f"{100 * s[a] / s[b]:7.1f}%" if s[b] else "      -"

    return (
        f"{kind:10s} {s['n']:5d} {p('selected', 'tool')} {p('exact', 'tool')} "
        f"{p('false_positive', 'no_tool')} {p('unparseable', 'n')} "
        f"{p('uses_result', 'answered')}"
    )


if __name__ == "__main__":
    main()
