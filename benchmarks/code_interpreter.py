"""Code interpreter latency and throughput, with real bubblewrap-sandboxed kernels.

Prints, in milliseconds:
  * first result of a new conversation (``1+1``) from a cold start (pool size 0) and from
    a warm pool (a pre-started kernel is claimed);
  * round trip of ``1+1`` on a warm kernel (p50 / p90 / p99);
  * N conversations at once (threads): time to each one's first result and the throughput
    of small cells, with the number of errors.

    python benchmarks/code_interpreter.py [--rounds 200] [--conversations 8] [--cells 50] [--pool 2]
    python benchmarks/code_interpreter.py --unsandboxed   # the same without bwrap (baseline)
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from qwen_agent.tools.code_interpreter import KernelPool, SandboxConfig


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def first_result(pool: KernelPool, n: int, warm: bool) -> list[float]:
    times = []
    for i in range(n):
        if warm and not pool.wait_warm(timeout=120):
            raise SystemExit("the pool did not warm up")
        sid = f"first-{warm}-{i}"
        t0 = time.perf_counter()
        res = pool.execute(sid, "1+1")
        times.append(time.perf_counter() - t0)
        if res.result != "2":
            raise SystemExit(f"unexpected result: {res.text}")
        pool.close_session(sid)
    return times


def round_trips(pool: KernelPool, rounds: int) -> list[float]:
    pool.execute("rt", "1+1")
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = pool.execute("rt", "1+1")
        times.append(time.perf_counter() - t0)
        if res.result != "2":
            raise SystemExit(f"unexpected result: {res.text}")
    pool.close_session("rt")
    return times


def concurrent(pool: KernelPool, conversations: int, cells: int) -> dict[str, float]:
    firsts: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(conversations)

    def conversation(i: int) -> None:
        sid = f"conc-{i}"
        barrier.wait()
        t0 = time.perf_counter()
        try:
            first = pool.execute(sid, f"n = {i}\nn")
            with lock:
                firsts.append(time.perf_counter() - t0)
            if first.result != str(i):
                errors.append(f"{sid}: {first.text}")
            for k in range(cells):
                res = pool.execute(sid, f"n = n + 1\nsum(range({k}))")
                if res.result != str(sum(range(k))):
                    errors.append(f"{sid}: {res.text[:200]}")
        except Exception as exc:  # counted and shown
            errors.append(f"{sid}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=conversation, args=(i,)) for i in range(conversations)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for i in range(conversations):
        pool.close_session(f"conc-{i}")
    for e in errors[:5]:
        print("  error:", e)
    return {
        "wall": wall,
        "cells_per_s": conversations * (cells + 1) / wall,
        "first_p50": statistics.median(firsts) if firsts else float("nan"),
        "first_max": max(firsts) if firsts else float("nan"),
        "errors": len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--conversations", type=int, default=8)
    ap.add_argument("--cells", type=int, default=50)
    ap.add_argument("--pool", type=int, default=2, help="warm kernels for the concurrent run")
    ap.add_argument("--unsandboxed", action="store_true")
    args = ap.parse_args()
    cfg = SandboxConfig(mode="unsandboxed" if args.unsandboxed else "bwrap")
    print(f"sandbox: {cfg.mode}")

    with KernelPool(cfg, size=0, idle_timeout=None) as pool:
        cold = first_result(pool, args.starts, warm=False)
    print(f"new conversation, cold start     p50 {ms(statistics.median(cold))} ms")

    with KernelPool(cfg, size=2, idle_timeout=None) as pool:
        warm = first_result(pool, args.starts * 2, warm=True)
        print(f"new conversation, warm pool      p50 {ms(statistics.median(warm))} ms   "
              f"max {ms(max(warm))} ms")  # fmt: skip
        rt = round_trips(pool, args.rounds)
        print(f"1+1 round trip, warm kernel      p50 {ms(pct(rt, 50))} ms   "
              f"p90 {ms(pct(rt, 90))} ms   p99 {ms(pct(rt, 99))} ms")  # fmt: skip

    n = args.conversations + args.pool
    with KernelPool(cfg, size=args.pool, idle_timeout=None, max_sessions=n) as pool:
        pool.wait_warm(timeout=120)
        c = concurrent(pool, args.conversations, args.cells)
    print(
        f"{args.conversations} conversations at once (pool {args.pool}): first result p50 "
        f"{ms(c['first_p50'])} ms, max {ms(c['first_max'])} ms; "
        f"{c['cells_per_s']:.0f} cells/s; errors: {c['errors']}"
    )


if __name__ == "__main__":
    main()
