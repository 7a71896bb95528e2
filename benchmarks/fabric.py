"""AgentFabric: how often the builder gets a plain request right, how long a builder message
takes to reach the preview, and concurrent preview chats through the running app.

    python benchmarks/fabric.py [--model DIR | --base-url URL --model NAME] [--part all]
        [--threads 2] [--chats 20]

- ``builder``: the requests in ``benchmarks/fabric/requests.json`` (written by hand apart from
  the training data's builder dialogues), each a builder turn on a fresh draft through the
  app's own code (:class:`agentfabric.fabric.Fabric`, a store in a temporary folder). A
  request is right when every field it names ended as intended and, for "no update"
  requests, nothing changed. Prints the count, the misses, and the time from the message
  to the rebuilt preview agent (median and max).
- ``concurrent``: the app launched on 127.0.0.1, ``--chats`` preview chats sent at once
  with the real ``gradio_client`` (each its own browser session); prints errors and the
  latency of each chat (median, max).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REQUESTS = ROOT / "benchmarks" / "fabric" / "requests.json"


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="", help="model directory or name (default: bundled)")
    ap.add_argument("--base-url", default="", help="an OpenAI-compatible server")
    ap.add_argument("--backend", default="")
    ap.add_argument("--format", default="hermes", choices=["hermes", "react"])
    ap.add_argument("--part", default="all", choices=["all", "builder", "concurrent"])
    ap.add_argument("--chats", type=int, default=20, help="concurrent preview chats")
    ap.add_argument("--n", type=int, default=0, help="at most this many builder requests")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--max-tokens", type=int, default=256, help="most tokens per model call")
    return ap.parse_args()


def _llm_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {"model": args.model, "base_url": args.base_url, "backend": args.backend}
    return {k: v for k, v in options.items() if v}


def field_value(config: Any, field: str) -> Any:
    if field == "tools":
        return [t.get("name") if isinstance(t, dict) else t for t in config.tools]
    return getattr(config, field)


def judge(case: dict[str, Any], before: Any, after: Any, avatar: str | None) -> list[str]:
    """What the builder got wrong for ``case`` (empty: right)."""
    wrong = []
    for fields, rule in case["expect"].items():
        if fields == "no_update":
            if after.model_dump() != before.model_dump() or avatar:
                wrong.append("changed the config on a request that needs a question")
            continue
        if fields == "avatar":
            if not avatar:
                wrong.append("drew no avatar")
            continue
        values = [field_value(after, f) for f in fields.split("|")]
        if "equals" in rule and rule["equals"] not in values:
            wrong.append(f"{fields} = {values[0]!r}, not {rule['equals']!r}")
        for word in rule.get("contains", []):
            text = json.dumps(values, ensure_ascii=False).lower()
            if word.lower() not in text:
                wrong.append(f"{fields} lacks {word!r}")
        if "has_tool" in rule and rule["has_tool"] not in values[0]:
            wrong.append(f"tools {values[0]} lack {rule['has_tool']}")
        if "lacks_tool" in rule and rule["lacks_tool"] in values[0]:
            wrong.append(f"tools {values[0]} still have {rule['lacks_tool']}")
    return wrong


async def builder_part(args: argparse.Namespace, llm: Any, data: Path) -> None:
    from agentfabric.fabric import Fabric
    from agentfabric.store import Store
    from qwen_agent.config import AgentConfig

    cases = json.loads(REQUESTS.read_text())["cases"]
    if args.n:
        cases = cases[: args.n]
    store = Store(None, data)
    fabric = Fabric(store, llm, data, args.format)
    right, times, misses = 0, [], []
    for i, case in enumerate(cases):
        start = AgentConfig.model_validate({"name": "my-assistant", **case.get("start", {})})
        record = store.create_agent("bench", start)
        s = fabric.session(f"case-{i}", "bench")
        fabric.open(s, record.id)
        t0 = time.perf_counter()
        async for _ in fabric.builder_turn(s, case["say"]):
            pass
        await asyncio.to_thread(fabric.preview_agent, s)
        times.append(time.perf_counter() - t0)
        after = store.get_agent("bench", record.id).config
        wrong = judge(case, start, after, s.avatar_prompt)
        right += not wrong
        mark = "right" if not wrong else "wrong"
        print(f"  [{i + 1}/{len(cases)}] {mark} in {times[-1]:.1f} s", file=sys.stderr, flush=True)
        if wrong:
            answer = next(
                (m["content"] for m in reversed(s.builder_chat) if m["role"] == "assistant"), ""
            )
            misses.append(f"  {case['say']!r}: {'; '.join(wrong)} (said: {str(answer)[:80]!r})")
        fabric.end(f"case-{i}")
    store.close()
    print(f"builder: {right}/{len(cases)} requests right ({100 * right / len(cases):.1f}%)")
    print(
        f"builder message -> updated preview: median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s over {len(times)} turns"
    )
    if misses:
        print("misses:")
        print("\n".join(misses))


def concurrent_part(args: argparse.Namespace, llm: Any, data: Path) -> None:
    from gradio_client import Client

    from agentfabric.app import FabricOptions, launch

    options = FabricOptions(data_dir=data, port=0, format=args.format)
    options.port = _free_port()
    fabric, demo = launch(options, llm=llm, block=False)
    url = f"http://127.0.0.1:{options.port}/"
    errors: list[str] = []
    latency: list[float] = []
    lock = threading.Lock()

    def chat(i: int) -> None:
        try:
            client = Client(url, verbose=False)
            client.predict(api_name="/on_load")
            t0 = time.perf_counter()
            out = client.predict(
                {"text": f"hello, what can you do? ({i})", "files": []}, api_name="/on_send"
            )
            took = time.perf_counter() - t0
            chat_value = out[0] if isinstance(out, (list, tuple)) else out
            if not any(m.get("role") == "assistant" for m in chat_value):
                raise RuntimeError(f"no assistant message in {str(chat_value)[:200]}")
            with lock:
                latency.append(took)
        except Exception as exc:  # counted and shown: the figure is the error count
            with lock:
                errors.append(f"chat {i}: {type(exc).__name__}: {exc}"[:300])

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(args.chats)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    demo.close()
    fabric.store.close()
    print(
        f"concurrent preview chats: {args.chats} at once, {len(errors)} errors, "
        f"{len(latency)} answered in {wall:.1f} s"
    )
    if latency:
        print(f"  per chat: median {statistics.median(latency):.2f} s, max {max(latency):.2f} s")
    for line in errors[:10]:
        print("  " + line)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    args = _args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from qwen_agent.llm import LLMConfig, get_chat_model

    options = {**_llm_options(args), "generation": {"max_tokens": args.max_tokens}}
    llm = get_chat_model(LLMConfig.model_validate(options))
    label = args.model or args.base_url or "the bundled model"
    print(f"model: {label}, format {args.format}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "builder"):
            asyncio.run(builder_part(args, llm, Path(tmp) / "builder"))
        if args.part in ("all", "concurrent"):
            concurrent_part(args, llm, Path(tmp) / "concurrent")


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    main()
