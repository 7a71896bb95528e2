"""Agent conversations through one backend at once versus one after another.

Each conversation asks for a city's airport code and that airport's weather: two forced
tool steps (the agent's turn pipeline: ``build_request``, the backend's guided call, the
turn assembler, the tool) and an answer. For each N it prints completed conversations
per second one after another and all at once, the speedup, the share of wall time the
framework spent outside the model (parsing, building requests, tools), and, for vLLM, the
raw engine's own gain at the same N: on the same requests (every turn the conversations
sent, replayed straight to vLLM's ``generate``, each turn after the one before, all
conversations at once against one after another: the yardstick, since it is the agents'
workload with no framework in it) and on the first turns alone (one prefill wave, as a
single generation has). The transformers backend is the baseline (one generation at a
time). The last line reads ``speedup at 32: N.Nx (engine N.Nx)`` for the last N and the
first backend, the engine's figure on the same requests.

    python benchmarks/concurrency.py --model DIR [--n 1 8 32] [--backends vllm transformers]
        [--max-tokens 24] [--sequential 4] [--cpu-threads 0-1]

The model directory must hold a chat model (for vLLM's CPU build, attention heads of 32 or
more: e.g. ``python -m training.smol_agent.snapshot --out DIR``). One after another is
timed on ``--sequential`` conversations (all N when it is 0) and given per conversation.
vLLM needs the ``if __name__ == "__main__"`` guard this script has, and its own
environment on CPU (``bash .ci/vllm-env``; run this with ``.venv-vllm/bin/python``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import statistics
import time
import uuid
from typing import Any

from qwen_agent.formats import get_format
from qwen_agent.llm import (
    FunctionChoice,
    GenerationConfig,
    LLMConfig,
    astream,
    get_chat_model,
)
from qwen_agent.messages import Message
from qwen_agent.tool import ToolSpec, tool
from qwen_agent.turn import build_request


@tool
def airport_code(city: str) -> str:
    """The main airport code of a city.

    Args:
        city: the city's name.
    """
    return city.strip()[:3].upper() or "XXX"


@tool
def airport_weather(code: str) -> str:
    """The weather at an airport.

    Args:
        code: the airport's code.
    """
    return f"sunny and 21 C at {code.strip()}"


TOOLS = {t.name: t for t in (airport_code, airport_weather)}
SPECS = [ToolSpec.of(t) for t in TOOLS.values()]
STEPS = [
    FunctionChoice(name="airport_code"),
    FunctionChoice(name="airport_weather"),
    "none",
]


#: the conversation a request belongs to, and what each one asked the engine: (prompt
#: token ids, sampling params) per turn, in order (see ``record`` and ``replay_gain``)
CONV: contextvars.ContextVar[int] = contextvars.ContextVar("conv", default=-1)
ASKED: dict[int, list[tuple[list[int], Any]]] = {}


def record(model: Any) -> bool:
    """Makes the vLLM backend note each request it sends its engine, per conversation."""
    engine = getattr(model, "_engine", None)
    if engine is None or getattr(engine, "_recording", False):
        return engine is not None
    send = engine.generate

    def generate(ids: list[int], params: Any, rid: str, put: Any) -> Any:
        ASKED.setdefault(CONV.get(), []).append((list(ids), params.clone()))
        return send(ids, params, rid, put)

    engine.generate, engine._recording = generate, True
    return True


class Clock:
    """The waits for the model's deltas (their sum, and each turn's wait for its first)."""

    def __init__(self) -> None:
        self.model_wait = 0.0
        self.first: list[float] = []

    async def deltas(self, model: Any, request: Any):
        stream = astream(model, request)
        started: float | None = time.perf_counter()
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    delta = await stream.__anext__()
                except StopAsyncIteration:
                    self.model_wait += time.perf_counter() - t0
                    return
                self.model_wait += time.perf_counter() - t0
                if delta.text and started is not None:
                    self.first.append(time.perf_counter() - started)
                    started = None
                yield delta
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


async def conversation(model: Any, i: int, max_tokens: int, clock: Clock) -> list[str]:
    """Two forced tool steps and an answer; returns the tool results."""
    CONV.set(i)
    fmt = get_format("hermes")
    convo = [Message(role="user", content=f"What is the weather at the airport of City{i}?")]
    results = []
    for choice in STEPS:
        turn = build_request(
            fmt,
            convo,
            SPECS,
            tool_choice=choice,
            instructions="",
            generation=GenerationConfig(max_tokens=max_tokens),
        )
        reply = turn.assembler(id_prefix=f"call_{len(convo)}_")
        async for delta in clock.deltas(model, turn.request):
            reply.feed(delta)
        reply.finish()
        message = reply.message()
        convo.append(message)
        for call in message.tool_calls:
            text = str(TOOLS[call.name].call(**call.arguments))
            results.append(text)
            convo.append(Message(role="tool", content=text, tool_call_id=call.id, name=call.name))
    return results


async def one_after_another(
    model: Any, k: int, max_tokens: int, first: int = 0
) -> tuple[float, float]:
    """Wall seconds for k conversations in turn, and the share of it spent outside the
    model (the whole run less the waits for the model's deltas)."""
    clock = Clock()
    t0 = time.perf_counter()
    outs = [await conversation(model, first + i, max_tokens, clock) for i in range(k)]
    wall = time.perf_counter() - t0
    _check(outs)
    return wall, max(0.0, wall - clock.model_wait) / wall


async def at_once(model: Any, n: int, max_tokens: int) -> tuple[float, float, float]:
    """Wall seconds for n conversations at once, and the event loop thread's CPU time
    over the wall time: their waits for the model overlap, so the thread's own work is
    the framework's (the engine's client runs on a thread of its own), and the median
    wait of a turn for its first text."""
    ASKED.clear()  # replay_gain replays this run's requests
    cpu0 = time.thread_time()
    t0 = time.perf_counter()
    clock = Clock()
    outs = await asyncio.gather(
        *(conversation(model, 1000 * n + i, max_tokens, clock) for i in range(n))
    )
    wall = time.perf_counter() - t0
    _check(outs)
    return wall, (time.thread_time() - cpu0) / wall, statistics.median(clock.first or [0.0])


def _check(outs: list[list[str]]) -> None:
    short = sum(1 for r in outs if len(r) != 2)
    if short:
        print(f"  note: {short} of {len(outs)} conversations did not make both calls")


async def raw_gain(model: Any, n: int, max_tokens: int) -> float | None:
    """vLLM's own tokens/s with n requests at once over one at a time, same prompts."""
    engine = getattr(getattr(model, "_engine", None), "engine", None)
    if engine is None:
        return None
    from qwen_agent.llm import ModelRequest, adrain

    fmt = get_format("hermes")
    reqs = []
    for i in range(n):
        turn = build_request(
            fmt,
            [
                Message(
                    role="user",
                    content=f"What is the weather at the airport of City{i}?",
                )
            ],
            SPECS,
            instructions="",
            generation=GenerationConfig(max_tokens=max_tokens),
        )
        reqs.append(
            ModelRequest(messages=turn.request.messages, generation=turn.request.generation)
        )
    t0 = time.perf_counter()
    one = [await adrain(model, r) for r in reqs[: min(n, 4)]]
    seq_rate = sum(d.usage.completion_tokens for d in one) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    many = await asyncio.gather(*(adrain(model, r) for r in reqs))
    par_rate = sum(d.usage.completion_tokens for d in many) / (time.perf_counter() - t0)
    return par_rate / seq_rate


async def replay_gain(model: Any, convs: list[int], k: int) -> float | None:
    """The engine's own gain on the agents' workload: the requests the conversations
    ``convs`` sent (each turn after the one before, as the agents sent them), straight to
    the engine, all at once against ``k`` of them one after another; conversations per
    second, at once over in turn. No framework is involved: only vLLM's ``generate``."""
    engine = getattr(model, "_engine", None)
    turns = [ASKED.get(c) for c in convs]
    if engine is None or not all(turns):
        return None

    async def one(asked: list[tuple[list[int], Any]]) -> None:
        for ids, params in asked:
            rid = uuid.uuid4().hex
            async for _ in engine.engine.generate({"prompt_token_ids": ids}, params.clone(), rid):
                pass

    # the cache as the agents found it: the shared system prompt, nothing of their own
    firsts = [asked[0][0] for asked in turns]
    shared = 0
    while shared < min(map(len, firsts)) and len({f[shared] for f in firsts}) == 1:
        shared += 1
    warm = turns[0][0][1].clone()
    warm.max_tokens, warm.structured_outputs = 1, None

    async def timed(coro: Any) -> float:
        async def fresh_then(coro: Any) -> float:
            await engine.engine.reset_prefix_cache()
            rid = uuid.uuid4().hex
            async for _ in engine.engine.generate(
                {"prompt_token_ids": firsts[0][:shared]}, warm, rid
            ):
                pass
            t0 = time.perf_counter()
            await coro
            return time.perf_counter() - t0

        future = asyncio.run_coroutine_threadsafe(fresh_then(coro), engine.loop)
        return await asyncio.wrap_future(future)

    async def in_turn() -> None:
        for asked in turns[:k]:
            await one(asked)

    async def together() -> None:
        await asyncio.gather(*(one(asked) for asked in turns))

    per_conv = await timed(in_turn()) / k
    return per_conv * len(turns) / await timed(together())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--backends", nargs="+", default=["vllm", "transformers"])
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--sequential", type=int, default=4)
    ap.add_argument("--cpu-threads", default="0-1", help="vLLM on CPU: the cores to use")
    ap.add_argument("--threads", type=int, default=2, help="transformers: torch threads")
    ap.add_argument("--dtype", default="float32", help="float32 (CPU), bfloat16 (GPU), auto")
    ap.add_argument(
        "--block-size", type=int, default=0, help="vLLM's KV block size (0: the backend's)"
    )
    ap.add_argument(
        "--no-guard", action="store_true", help="calls unguided (to see what guiding costs)"
    )
    args = ap.parse_args()

    last = ""
    for backend in args.backends:
        extra = (
            {"cpu_threads": args.cpu_threads, "dtype": args.dtype, "max_context": 2048}
            | ({"block_size": args.block_size} if args.block_size else {})
            if backend == "vllm"
            else {"threads": args.threads, "dtype": args.dtype}
        )
        if args.no_guard:
            extra["tool_guard"] = False
        t0 = time.perf_counter()
        model = get_chat_model(LLMConfig(backend=backend, model=args.model, **extra))
        print(f"{backend}: loaded in {time.perf_counter() - t0:.1f} s")

        record(model)

        async def run(model: Any = model) -> str:
            await conversation(model, 999, args.max_tokens, Clock())  # warm up
            line = ""
            for n in args.n:
                k = n if args.sequential <= 0 else min(n, args.sequential)
                seq_wall, seq_share = await one_after_another(
                    model, k, args.max_tokens, first=100_000 * n
                )
                per_conv = seq_wall / k
                par_wall, par_share, first = await at_once(model, n, args.max_tokens)
                speedup = per_conv * n / par_wall
                gain = await raw_gain(model, n, args.max_tokens)
                same = await replay_gain(model, [1000 * n + i for i in range(n)], k)
                engine = f"{same:.1f}x" if same is not None else "n/a"
                first_turns = f"{gain:.1f}x" if gain is not None else "n/a"
                print(
                    f"  N={n:3d}: one after another {1 / per_conv:6.2f} conv/s (outside the "
                    f"model {100 * seq_share:4.1f}% of wall); at once {n / par_wall:6.2f} "
                    f"conv/s (loop thread CPU {100 * par_share:4.1f}% of wall, a turn's first "
                    f"text after {first:.2f} s); speedup "
                    f"{speedup:4.1f}x; engine on the same requests {engine} (on first turns "
                    f"alone {first_turns})"
                )
                line = f"speedup at {n}: {speedup:.1f}x (engine {engine})"
            return line

        result = asyncio.run(run())
        close = getattr(model, "close", None)
        if close is not None:
            close()
        last = last or f"{backend} {result}"
    print(last.split(" ", 1)[1] if last else "")


if __name__ == "__main__":
    main()
