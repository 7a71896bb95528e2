"""Tool-use evaluation through ``Agent``, on held-out tools and wording.

Two sets, reported apart and per format (hermes and ReAct):

- ``heldout`` (the default): ``benchmarks/heldout/`` — 17 everyday ``@tool`` functions and
  140 requests written apart from the training generator (no training tool has any of
  these names; the wording, typos, numbers in words, second turns and "no listed tool
  fits" cases were written by hand without reading the generator), plus the README's
  ``multiply`` example.
- ``generated``: dialogues from ``training/smol_agent/data.py`` with a seed training never
  used: the in-distribution figure, to quote beside the held-out one, never instead of it.

Each request runs through ``Agent(llm=..., tools=..., format=...)`` as a user runs it; the
first tool call is compared with the expected one. Metrics:

- tool selection: the first call names the expected tool (over requests that need one);
- exact arguments: ... and every argument equals the expected value (``any_of`` lists
  accepted alternatives; an optional argument left out, or sent with its default, is fine);
- false positives: a call where the right reply is a direct answer;
- unparseable: a reply the format's parser cannot read (a ``call_parse_error``);
- prompt did not fit: the request raised ``ContextWindowError`` before generating;
- answer uses the result: after the tool's result, the final answer quotes a value of it.

    python benchmarks/tool_eval.py [--model DIR] [--format both|hermes|react]
        [--set heldout|generated] [--n 200] [--no-guard] [--failures FILE] [--listed 4|12]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qwen_agent import Agent  # noqa: E402
from qwen_agent.errors import ContextWindowError  # noqa: E402
from qwen_agent.llm import GenerationConfig, LLMConfig, get_chat_model  # noqa: E402
from qwen_agent.tool import Tool  # noqa: E402

HELDOUT = Path(os.environ.get("QWEN_EVAL_CASES", ROOT / "benchmarks" / "heldout" / "cases.json"))


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model directory (default: the bundled one)")
    ap.add_argument("--format", default="both", choices=["both", "hermes", "react"])
    ap.add_argument("--set", default="heldout", choices=["heldout", "generated"])
    ap.add_argument(
        "--n", type=int, default=0, help="at most this many cases (0: all; generated: 200)"
    )
    ap.add_argument("--seed", type=int, default=90210, help="the generated set's seed")
    ap.add_argument("--no-guard", action="store_true", help="decode without the tool guard")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--failures", default="", help="write every failure to this file")
    ap.add_argument(
        "--calls-only",
        action="store_true",
        help="stop after the first model step (half the time; no 'answer uses result')",
    )
    ap.add_argument("--every", type=int, default=1, help="take every k-th case (a quick subset)")
    ap.add_argument(
        "--listed",
        type=int,
        default=0,
        help="held-out: list exactly this many tools in every case (its own, then others "
        "of the 17 in a fixed order per case; the expected tool always stays)",
    )
    ap.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a transformers backend option, e.g. -o copy_bias=6 -o relevance=true",
    )
    return ap.parse_args()


def heldout_cases() -> tuple[list[dict[str, Any]], dict[str, Tool]]:
    from benchmarks.heldout.tools import TOOLS

    return json.loads(HELDOUT.read_text()), TOOLS


def with_listed(case: dict[str, Any], names: list[str], k: int) -> dict[str, Any]:
    """``case`` with exactly ``k`` tools listed: its own first (the expected one kept when
    some must go), then other held-out tools in an order fixed by the case's id."""
    import random

    expected = (case.get("expect") or {}).get("name")
    own = list(case["tools"])
    if len(own) > k:
        keep = [expected] if expected in own else []
        own = keep + [n for n in own if n != expected][: k - len(keep)]
    others = [n for n in names if n not in own]
    random.Random(case["id"]).shuffle(others)
    listed = own + others[: k - len(own)]
    random.Random(case["id"] + "/order").shuffle(listed)
    return {**case, "tools": listed}


def generated_cases(n: int, seed: int, fmt: str) -> tuple[list[dict[str, Any]], dict[str, Tool]]:
    """Generator dialogues as cases; each tool is a stub that returns the dialogue's result."""
    from training.smol_agent.data import Generator

    gen = Generator(seed, react_rate=1.0 if fmt == "react" else 0.0)
    cases, tools = [], {}
    for i in range(n):
        d = gen.dialogue()
        last = max(j for j, m in enumerate(d.messages) if m.role == "user")
        call = d.expected_call
        names = []
        for spec in d.tools:
            name = f"{spec['name']}"
            key = f"{i}:{name}"
            result = d.messages[last + 2].text if call and call.name == name else "ok"
            tools[key] = _stub(spec, result)
            names.append(key)
        hist = [
            {"role": m.role, "content": m.text}
            for m in d.messages[:last]
            if m.role in ("user", "assistant") and m.text
        ]
        cases.append(
            {
                "id": f"gen-{i}",
                "tools": names,
                "history": hist,
                "user": d.messages[last].text,
                "expect": None
                if call is None
                else {"name": call.name, "arguments": call.arguments},
                "tags": [d.kind],
                "instructions": d.instructions,
            }
        )
    return cases, tools


def _stub(spec: dict[str, Any], result: str) -> Tool:
    """A tool with the dialogue's schema that returns the dialogue's result."""

    class Stub(Tool):
        name = spec["name"]
        description = spec.get("description", "")
        parameters = spec["parameters"]

        def call(self, **arguments: Any) -> str:
            return result

    return Stub()


def matches(got: dict[str, Any], want: dict[str, Any], schema: dict[str, Any]) -> bool:
    props = schema.get("properties", {})
    for key, value in want.items():
        options = value["any_of"] if isinstance(value, dict) and "any_of" in value else [value]
        if key not in got or not any(_same(got[key], o) for o in options):
            return False
    for key, value in got.items():
        if key in want:
            continue
        if (
            key not in props
            or "default" not in props[key]
            or not _same(value, props[key]["default"])
        ):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) < 1e-9
    return a == b


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _values(result: Any) -> list[str]:
    """Short values of a result that an answer quoting it would contain."""
    if isinstance(result, dict):
        return [v for x in result.values() for v in _values(x)]
    if isinstance(result, list):
        return [v for x in result for v in _values(x)]
    text = str(result).strip()
    if len(text) <= 40:
        return [text]
    return re.findall(r"\d[\d,.:]*\d|\d", text)[:4]


def run_case(
    llm: Any, case: dict[str, Any], tools: dict[str, Tool], fmt: str, steps: int = 3
) -> dict[str, Any]:
    listed = [tools[n] for n in case["tools"]]
    agent = Agent(
        llm=llm,
        tools=listed,
        format=fmt,
        max_steps=steps,
        instructions=case.get("instructions", ""),
        generation=GenerationConfig(max_tokens=200),
    )
    first, result, answer, errors, too_long = None, None, "", [], False
    try:
        for event in agent.run(case["user"], history=case.get("history") or None):
            if event.type == "tool_call" and first is None:
                first = event.call
            elif event.type == "call_parse_error":
                errors.append(event.message)
            elif event.type == "tool_result" and result is None:
                result = event.result
            elif event.type == "final":
                answer = event.message.text
    except ContextWindowError as exc:
        if first is None:
            too_long = True
            errors.append(f"context window: {exc}")
    return {
        "call": first,
        "result": result,
        "answer": answer,
        "errors": errors,
        "too_long": too_long,
    }


def evaluate(
    llm: Any,
    cases: list[dict[str, Any]],
    tools: dict[str, Tool],
    fmt: str,
    failures: list[str],
    steps: int = 3,
) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    start = time.perf_counter()
    for i, case in enumerate(cases):
        out = run_case(llm, case, tools, fmt, steps)
        want, got = case["expect"], out["call"]
        tags = {"all", "call" if want else "none", *case.get("tags", [])}
        for tag in sorted(tags):
            s = stats[tag]
            s["n"] += 1
            s["too_long"] += out["too_long"]
            s["unparseable"] += bool(out["errors"]) and got is None and not out["too_long"]
            if want is None:
                s["no_tool"] += 1
                s["false_positive"] += got is not None
                continue
            s["tool"] += 1
            selected = got is not None and got.name == want["name"]
            schema = tools[
                next(n for n in case["tools"] if n.split(":")[-1] == want["name"])
            ].parameters
            exact = selected and matches(got.arguments, want["arguments"], schema)
            s["selected"] += selected
            s["exact"] += exact
            if steps > 1 and exact and out["result"] is not None and not out["result"].is_error:
                s["answered"] += 1
                vals = _values(_parsed(out["result"].text))
                s["uses_result"] += any(v and v in out["answer"] for v in vals)
        ok = (
            (got is None)
            if want is None
            else (
                got is not None
                and got.name == want["name"]
                and matches(got.arguments, want["arguments"], schema)
            )
        )
        if not ok:
            said = (
                f"{got.name}{json.dumps(got.arguments)}"
                if got
                else f"answer {out['answer'][:120]!r}"
            )
            failures.append(
                f"[{fmt}] {case['id']} {case['user']!r} want "
                f"{want['name'] + json.dumps(want['arguments']) if want else 'no call'} -> {said}"
                + (f" errors {out['errors'][:1]}" if out["errors"] else "")
            )
        if (i + 1) % 20 == 0:
            print(
                f"  [{fmt}] {i + 1}/{len(cases)} cases, {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    return stats


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}% ({a}/{b})" if b else "  n/a"


def report(fmt: str, stats: dict[str, dict[str, int]]) -> None:
    t = stats["all"]
    print(f"\n== {fmt}")
    print(f"tool selection:       {_pct(t['selected'], t['tool'])}")
    print(f"argument exact match: {_pct(t['exact'], t['tool'])}")
    print(f"false positives:      {_pct(t['false_positive'], t['no_tool'])}")
    print(f"unparseable:          {_pct(t['unparseable'], t['n'])}")
    print(f"prompt did not fit:   {_pct(t['too_long'], t['n'])}")
    print(f"answer uses result:   {_pct(t['uses_result'], t['answered'])}")
    print(f"  {'tag':14s} {'n':>4s} {'select':>7s} {'exact':>7s} {'false+':>7s}")
    for tag in sorted(k for k in stats if k != "all"):
        s = stats[tag]

        def p(a: str, b: str, s=s) -> str:
            return f"{100 * s[a] / s[b]:6.1f}%" if s[b] else "      -"

        print(
            f"  {tag:14s} {s['n']:4d} {p('selected', 'tool')} {p('exact', 'tool')} "
            f"{p('false_positive', 'no_tool')}"
        )


def main() -> None:
    args = _args()
    t0 = time.perf_counter()
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    llm = get_chat_model(
        LLMConfig(
            backend="transformers",
            model=args.model,
            tool_guard=not args.no_guard,
            threads=args.threads,
            **options,
        )
    )
    print(
        f"model: {getattr(llm, 'model_name', '?')}  set={args.set}  "
        f"guard={'off' if args.no_guard else 'on'}"
        f"  (loaded in {time.perf_counter() - t0:.1f} s)"
    )
    failures: list[str] = []
    for fmt in ["hermes", "react"] if args.format == "both" else [args.format]:
        if args.set == "heldout":
            cases, tools = heldout_cases()
            if args.n:
                cases = cases[: args.n]
            if args.listed:
                if not 1 <= args.listed <= len(tools):
                    raise SystemExit(f"--listed takes 1 to {len(tools)} (the held-out tools)")
                cases = [with_listed(c, sorted(tools), args.listed) for c in cases]
        else:
            cases, tools = generated_cases(args.n or 200, args.seed, fmt)
        start = time.perf_counter()
        cases = cases[:: args.every]
        stats = evaluate(llm, cases, tools, fmt, failures, 1 if args.calls_only else 3)
        report(fmt, stats)
        print(f"  ({len(cases)} cases in {time.perf_counter() - start:.0f} s)")
    if failures:
        print(f"\nfirst failures ({len(failures)} in all):")
        for f in failures[:15]:
            print("  " + f[:300])
    if args.failures:
        Path(args.failures).write_text("\n".join(failures) + "\n", encoding="utf-8")
        print(f"\nall {len(failures)} failures written to {args.failures}")


if __name__ == "__main__":
    main()
