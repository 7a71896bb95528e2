"""How long ``import qwen_agent`` takes in a fresh interpreter (best and median of N).

    python benchmarks/import_time.py [--runs 5]

A figure, not a test: a timed test flakes on a loaded machine (this one was a test until
it failed on a 2-core machine at 214 ms against a 150 ms budget, with nothing changed in
the core). What ``import qwen_agent`` must not import is a test (tests/test_public_api.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, time
t0 = time.perf_counter()
import qwen_agent
print(json.dumps(time.perf_counter() - t0))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr)
        times.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"import qwen_agent: best {min(times) * 1000:.0f} ms, "
        f"median {statistics.median(times) * 1000:.0f} ms ({args.runs} fresh interpreters)"
    )


if __name__ == "__main__":
    main()
