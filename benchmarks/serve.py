"""What the HTTP server costs: added latency per request, and throughput under concurrency.

Added latency: a ScriptedLLM is drained in-process, then the same model is called through
``Server`` (uvicorn in a background thread), non-streamed and streamed, by a keep-alive
raw-socket client (a few microseconds of client work: the server's own cost) and by a
keep-alive ``httpx.Client`` (what a Python client sees; httpx runs in the same process and
takes its share of the two cores); the figure is the HTTP p50 minus the in-process p50.
Throughput: 1, 8 and 64 client threads, each with its own client, share a fixed total of
requests per level, stopping early at a time cap; errors (non-200 answers and exceptions)
are counted and shown.

    python benchmarks/serve.py [--requests N] [--clients 1,8,64] [--total 640] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx

from qwen_agent.llm import ModelRequest, drain
from qwen_agent.messages import Message
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM

MODEL = "qwen-agent"
SHORT = "Hello there, how can I help?"
LONG = (
    "Paris is the capital of France and its largest city. It sits on the Seine, in the north "
    "of the country. About two million people live in the city itself, and more than twelve "
    "million in the wider region around it."
)
WARMUP = 50


def percentile(samples: list[float], q: int) -> float:
    """The q-th percentile (1..99) of samples, in the samples' unit."""
    if q == 50:
        return statistics.median(samples)
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def timed(fn: Callable[[], None], n: int) -> list[float]:
    """Run fn n times after a warm-up; each run's seconds."""
    for _ in range(WARMUP):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def body(content: str = "hi", stream: bool = False) -> dict[str, object]:
    req: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": content}]}
    if stream:
        req["stream"] = True
    return req


class RawClient:
    """HTTP/1.1 keep-alive over one socket: sends prepared bytes, reads one whole response
    (Content-Length or chunked). Just enough client for measuring the server."""

    def __init__(self, port: int, path: str, payload: dict[str, object]) -> None:
        data = json.dumps(payload).encode()
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __call__(self) -> None:
        self.sock.sendall(self.request)
        buf = b""
        while True:
            piece = self.sock.recv(65536)
            if not piece:
                raise RuntimeError("the server closed the connection")
            buf += piece
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n")[0].decode())
            if b"chunked" in head.lower():
                if rest.endswith(b"0\r\n\r\n"):
                    return
                continue
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:") and len(rest) >= int(line[15:]):
                    return

    def close(self) -> None:
        self.sock.close()


def clear(llm: ScriptedLLM) -> None:
    """Drop what the scripted model recorded, so long runs do not grow its lists."""
    llm.prompts.clear()
    llm.configs.clear()
    llm.requests.clear()


def latency(n: int) -> None:
    llm = ScriptedLLM([SHORT], chunk_size=8)
    request = ModelRequest(messages=[Message(role="user", content="hi")])

    def in_process() -> None:
        drain(llm, request)

    rows: list[tuple[str, list[float]]] = [("in-process", timed(in_process, n))]
    clear(llm)
    with Server(llm, port=0) as srv, httpx.Client(timeout=30) as client:
        url = f"{srv.url}/chat/completions"

        def plain() -> None:
            r = client.post(url, json=body())
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            r.json()

        def streamed() -> None:
            with client.stream("POST", url, json=body(stream=True)) as r:
                if r.status_code != 200:
                    r.read()
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
                for _ in r.iter_bytes():
                    pass

        path = "/v1/chat/completions"
        for name, stream in (("raw non-stream", False), ("raw stream", True)):
            raw = RawClient(srv.port, path, body(stream=stream))
            rows.append((name, timed(raw, n)))
            raw.close()
            clear(llm)
        rows.append(("httpx non-stream", timed(plain, n)))
        clear(llm)
        rows.append(("httpx stream", timed(streamed, n)))
        clear(llm)

    print(f"\n-- added latency: {n} requests each, after {WARMUP} warm-up, chunk_size=8")
    for name, samples in rows:
        p50, p99 = percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3
        print(f"{name + ' p50:':<22}{p50:8.3f} ms   p99: {p99:8.3f} ms")
    base = percentile(rows[0][1], 50)
    for name, samples in rows[1:]:
        added = (percentile(samples, 50) - base) * 1e3
        print(f"added latency p50 ({name}): {added:.3f} ms")


def throughput(clients: list[int], total: int, seconds: float) -> None:
    llm = ScriptedLLM([LONG], chunk_size=8)
    print(
        f"\n-- throughput: non-streamed, {total} requests per level, cap {seconds:g} s, "
        f"response {len(LONG)} chars in chunks of 8"
    )
    with Server(llm, port=0, max_queue=256) as srv:
        url = f"{srv.url}/chat/completions"
        with httpx.Client(timeout=30) as warm:
            for _ in range(WARMUP):
                warm.post(url, json=body("What is Paris?")).raise_for_status()
        for level in clients:
            clear(llm)
            run_level(url, level, total, seconds)


def run_level(url: str, level: int, total: int, seconds: float) -> None:
    """level client threads share total requests, until done or past the time cap."""
    lock = threading.Lock()
    left = [total]
    done = [0]
    errors: Counter[str] = Counter()
    lat: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() < deadline:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                t0 = time.perf_counter()
                try:
                    r = client.post(url, json=body("What is Paris?"))
                    err = "" if r.status_code == 200 else f"HTTP {r.status_code}"
                except Exception as exc:  # counted, not raised
                    err = f"{type(exc).__name__}: {exc}"[:120]
                dt = time.perf_counter() - t0
                with lock:
                    if err:
                        errors[err] += 1
                    else:
                        done[0] += 1
                        lat.append(dt)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(level)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.perf_counter()) + 90)
    elapsed = time.perf_counter() - start
    hung = sum(t.is_alive() for t in threads)
    n_err = sum(errors.values())
    rps = done[0] / elapsed if elapsed else 0.0
    p50 = percentile(lat, 50) * 1e3 if len(lat) > 1 else float("nan")
    p99 = percentile(lat, 99) * 1e3 if len(lat) > 1 else float("nan")
    capped = "  (time cap reached)" if done[0] + n_err < total else ""
    print(
        f"clients {level:>3}: {rps:8.1f} req/s   {done[0]:>5} ok in {elapsed:6.2f} s"
        f"   p50 {p50:7.2f} ms  p99 {p99:7.2f} ms{capped}"
    )
    err_text = "; ".join(f"{k} x{v}" for k, v in errors.most_common()) or "none"
    print(f"             errors: {n_err} ({err_text})")
    if hung:
        print(f"             {hung} client thread(s) still running after the join")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=500, help="requests per latency variant")
    ap.add_argument("--clients", default="1,8,64", help="concurrency levels, comma-separated")
    ap.add_argument("--total", type=int, default=640, help="requests per throughput level")
    ap.add_argument("--seconds", type=float, default=30.0, help="time cap per throughput level")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",") if c.strip()]

    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"python {platform.python_version()} ({platform.python_implementation()})")
    print(f"cpus: {os.cpu_count()}   platform: {platform.platform()}")
    latency(args.requests)
    throughput(clients, args.total, args.seconds)


if __name__ == "__main__":
    main()
