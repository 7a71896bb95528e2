"""A new user's first requests, end to end through ``Agent`` and a model.

The README's examples (``examples/tools.py``), the built-in tools (the sandboxed code
interpreter, image generation, retrieval over a small document), small talk with tools
listed and with none. Each case runs the whole loop (the model's call, the real tool, the
model's answer) and is checked on what a user sees: the tool called with the right values,
the answer quoting the result, no call where none was asked for.

    python benchmarks/first_use.py                              # the default model, hermes
    python benchmarks/first_use.py --model qwen-smol-agent --format both
    python benchmarks/first_use.py --model SNAPSHOT_DIR --only multiply,chat

These requests are for checking a model as users meet it: they are not training data and
nothing derived from them may become training data.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOC = """Harbor Lane Community Garden: rules for members

Plots are assigned every March. Each member may hold one plot of 3 by 4 metres.
Watering is allowed before 9 in the morning and after 6 in the evening.
The tool shed code is 4471; it changes on the first day of each season.
Members meet on the second Sunday of the month at the greenhouse.
Dogs are welcome on a leash, but not inside the plots.
"""


#: at least three words, none of them numbers or markup: a plain sentence
PLAIN = r"^(?=(?:\W*[a-z']+){3})[^{}\[\]<>0-9]*$"


@dataclass
class Case:
    key: str
    tools: list[str]
    user: str
    call: str | None  # the tool expected first, None: no call
    args: dict[str, Any] = field(default_factory=dict)  # values the call must hold
    answer: str = ""  # a regex the final answer must match (case-insensitive)


CASES = [
    Case("multiply", ["multiply"], "What is 12 * 34?", "multiply", {"a": 12, "b": 34}, r"408"),
    Case(
        "weather",
        ["get_weather"],
        "What is the weather in Oslo?",
        "get_weather",
        {"city": "Oslo"},
        r"sunny|24",
    ),
    Case(
        "weather-both",
        ["multiply", "get_weather"],
        "how's the weather in paris?",
        "get_weather",
        {"city": "paris"},
        r"sunny|24",
    ),
    Case(
        "times-both",
        ["multiply", "get_weather"],
        "What's 15 times 3?",
        "multiply",
        {"a": 15, "b": 3},
        r"45",
    ),
    Case("joke-both", ["multiply", "get_weather"], "tell me a joke", None, answer=PLAIN),
    Case("chat", [], "Hi! How are you today?", None, answer=PLAIN),
    Case("thanks", ["multiply"], "thanks, that's all for now", None, answer=r"\w+"),
    Case(
        "code",
        ["code_interpreter"],
        "What is 12 * 34?",
        "code_interpreter",
        {},
        r"408",
    ),
    Case(
        "code-sum",
        ["code_interpreter"],
        "Use Python to add up the numbers from 1 to 100.",
        "code_interpreter",
        {},
        r"5,?050",
    ),
    Case(
        "draw",
        ["image_gen"],
        "Draw a red apple on a table",
        "image_gen",
        {"prompt": "apple"},
        r"\w+",
    ),
    Case(
        "docs",
        ["retrieval"],
        "What is the code of the tool shed?",
        "retrieval",
        {},
        r"4471",
    ),
]


def make_tools(names: list[str], workdir: Path) -> list[Any]:
    import importlib.util

    from qwen_agent.tool import get_tool

    spec = importlib.util.spec_from_file_location("readme_tools", ROOT / "examples" / "tools.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_weather, multiply = module.get_weather, module.multiply

    out = []
    for name in names:
        if name == "multiply":
            out.append(multiply)
        elif name == "get_weather":
            out.append(get_weather)
        elif name == "retrieval":
            from qwen_agent.tools.retrieval import Retrieval

            doc = workdir / "garden-rules.txt"
            doc.write_text(DOC)
            out.append(Retrieval(files=[doc], index_dir=workdir / "index"))
        else:
            out.append(get_tool(name))
    return out


def _holds(got: Any, want: Any) -> bool:
    if isinstance(want, str):
        return isinstance(got, str) and want.lower() in got.lower()
    return got == want or (isinstance(got, str) and got.strip() == str(want))


def check(case: Case, calls: list[Any], answer: str) -> str:
    """'' when the case passed, else what went wrong."""
    first = calls[0] if calls else None
    if case.call is None:
        if first is not None:
            return f"called {first.name}({first.arguments}) where none was asked for"
    else:
        if first is None:
            return "no call"
        if first.name != case.call:
            return f"called {first.name}({first.arguments}), not {case.call}"
        for key, value in case.args.items():
            got = first.arguments.get(key)
            if not _holds(got, value) and not any(
                _holds(v, value) for v in first.arguments.values()
            ):
                return f"{case.call}({first.arguments}): {key} should hold {value!r}"
    if "<tool_call>" in answer or "Action:" in answer:
        return f"markup in the answer: {answer!r}"
    if case.answer and not re.search(case.answer, answer, re.I):
        return f"the answer does not match /{case.answer}/: {answer!r}"
    return ""


def run_case(agent_for: Callable[[list[str]], Any], case: Case) -> tuple[str, list[Any], str]:
    agent = agent_for(case.tools)
    with agent:
        result = agent.chat(case.user)
    calls = [c for m in result.messages if m.role == "assistant" for c in m.tool_calls]
    return check(case, calls, result.answer), calls, result.answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="", help="a model directory or a bundled name")
    ap.add_argument("--format", choices=["hermes", "react", "both"], default="hermes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated case keys")
    ap.add_argument("--max-steps", type=int, default=3)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from qwen_agent import Agent
    from qwen_agent.llm import LLMConfig, default_chat_model, get_chat_model

    t0 = time.perf_counter()
    if args.model:
        llm = get_chat_model(LLMConfig(model=args.model, threads=args.threads))
    else:
        llm = default_chat_model()
    print(f"model: {args.model or 'default'} (loaded in {time.perf_counter() - t0:.1f} s)")
    only = {k for k in args.only.split(",") if k}
    cases = [c for c in CASES if not only or c.key in only]
    formats = ["hermes", "react"] if args.format == "both" else [args.format]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for fmt in formats:
            passed = 0
            for case in cases:

                def agent_for(names: list[str], fmt: str = fmt) -> Any:
                    tools = make_tools(names, work)
                    return Agent(llm=llm, tools=tools, format=fmt, max_steps=args.max_steps)

                t = time.perf_counter()
                try:
                    problem, calls, answer = run_case(agent_for, case)
                except Exception as exc:  # noqa: BLE001 - reported as the case's failure
                    problem, calls, answer = f"{type(exc).__name__}: {exc}", [], ""
                took = time.perf_counter() - t
                passed += not problem
                shown = ", ".join(f"{c.name}({c.arguments})" for c in calls)[:160] or "no call"
                mark = "ok  " if not problem else "FAIL"
                print(f"{mark} {fmt:6} {case.key:12} {took:5.1f}s  {case.user!r} -> {shown}")
                print(f"       answer: {answer[:200]!r}")
                if problem:
                    print(f"       {problem}")
            failed += len(cases) - passed
            print(f"{fmt}: {passed}/{len(cases)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
