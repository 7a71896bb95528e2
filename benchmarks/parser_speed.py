"""Incremental parser speed on long outputs streamed in small chunks.

Prints characters per second for outputs of growing size; a parser that is linear in the
total length keeps the rate flat as the size grows tenfold.

    python benchmarks/parser_speed.py [--chunk 4]
"""

from __future__ import annotations

import argparse
import time

from qwen_agent.formats import get_format
from qwen_agent.messages import ToolCall


def sample(fmt_name: str, size: int, think: bool = False) -> str:
    fmt = get_format(fmt_name)
    code = ("for i in range(10):\n    print('</tool_call> Action: \\\"x\\\"', i)\n" * size)[:size]
    text = fmt.render_calls([ToolCall(name="python", arguments={"code": code})], "Running it.")
    if fmt_name == "react":
        text += "\nThought: " + "still thinking " * (size // 60)
    else:
        text = "Some answer text. " * (size // 60) + text
    if think:  # Qwen3: long reasoning first, with drafted calls and tags inside it
        draft = fmt.render_calls([ToolCall(name="rm", arguments={"path": "/"})])
        thought = f"Maybe {draft} or not, <think> </thin " * (size // 160)
        text = f"<think>\n{thought}\n</think>\n\n{text}"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, default=4)
    args = ap.parse_args()
    for name, think in (("hermes", False), ("react", False), ("hermes", True), ("react", True)):
        fmt = get_format(name)
        for size in (10_000, 100_000, 1_000_000):
            text = sample(name, size, think)
            pieces = [text[i : i + args.chunk] for i in range(0, len(text), args.chunk)]
            best = float("inf")
            for _ in range(3):
                parser = fmt.parser()
                t0 = time.perf_counter()
                for piece in pieces:
                    parser.feed(piece)
                parser.finish()
                best = min(best, time.perf_counter() - t0)
            out = parser.result()
            assert len(out.calls) == 1, out.errors
            label = name + (" +think" if think else "")
            print(
                f"{label:13s} {len(text):>9,d} chars in {args.chunk}-char chunks: "
                f"{best * 1e3:8.1f} ms  {len(text) / best / 1e6:6.2f} M chars/s"
            )


if __name__ == "__main__":
    main()
