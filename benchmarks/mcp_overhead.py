"""Per-call time of an MCP tool, over stdio and streamable HTTP, against the same function
called in-process.

The server is tests/mcp_server.py (the SDK's ``MCPServer``), started once per transport;
each call is ``tool.call(a=2, b=3)`` on the tool :class:`MCPServers` made, so the figure
holds the thread hop to the toolset's event loop, the JSON-RPC round trip, the server's
validation and the result conversion. In-process is the ``@tool`` function's ``call``.

    python benchmarks/mcp_overhead.py [--calls 200] [--warmup 20] [--transport both]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from qwen_agent import tool
from qwen_agent.tools.mcp import MCPServers

SERVER = str(Path(__file__).resolve().parents[1] / "tests" / "mcp_server.py")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def measure(fn: Callable[[], object], calls: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    median = statistics.median(times) * 1e3
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))] * 1e3
    print(f"{label:<12} median {median:8.3f} ms   p90 {p90:8.3f} ms   ({len(times)} calls)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the HTTP MCP server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the HTTP MCP server did not listen within 60 s")


def bench_mcp(label: str, config: dict[str, object], calls: int, warmup: int) -> None:
    t0 = time.perf_counter()
    with MCPServers({"bench": config}) as servers:
        started = time.perf_counter() - t0
        remote = next(t for t in servers.tools() if t.name == "add")
        if remote.call(a=2, b=3).text != "5":
            raise SystemExit(f"{label}: add(2, 3) did not answer 5")
        report(label, measure(lambda: remote.call(a=2, b=3), calls, warmup))
    print(f"{'':<12} (start and list tools: {started * 1e3:.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=200, help="timed calls per transport (1-5000)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed calls first")
    ap.add_argument("--transport", choices=["stdio", "http", "both"], default="both")
    args = ap.parse_args()
    if not 1 <= args.calls <= 5000:
        ap.error("--calls must be between 1 and 5000")
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")

    report("in-process", measure(lambda: add.call(a=2, b=3), args.calls, args.warmup))
    if args.transport in ("stdio", "both"):
        config = {"command": sys.executable, "args": [SERVER, "stdio"]}
        bench_mcp("mcp stdio", config, args.calls, args.warmup)
    if args.transport in ("http", "both"):
        port = free_port()
        proc = start_http(port)
        try:
            bench_mcp("mcp http", {"url": f"http://127.0.0.1:{port}/mcp"}, args.calls, args.warmup)
        finally:
            proc.kill()
            proc.wait(10)


if __name__ == "__main__":
    main()
