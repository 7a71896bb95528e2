"""The benchmark scripts run end to end on the bundled tiny model, by name (tiny sizes and a
tiny model: their figures come from full runs on the default model, see the README)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the [local] extra (torch, transformers) is not installed")

from qwen_agent.bundled import TINY_AGENT  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not (TINY_AGENT / "config.json").is_file(), reason="no bundled model in this build"
)


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_tool_eval_reports_the_metrics_per_format_and_writes_failures(tmp_path):
    failures = tmp_path / "failures.txt"
    out = _run(
        "benchmarks/tool_eval.py",
        *("--model", "qwen-tiny-agent", "--n", "3", "--threads", "1"),
        *("--failures", str(failures)),
    )
    assert "set=heldout" in out
    for fmt in ("hermes", "react"):
        section = out.split(f"== {fmt}\n", 1)[1]
        for metric in ["tool selection", "argument exact match", "false positives", "unparseable"]:
            assert re.search(rf"^{metric}: +(\d+\.\d% \(\d+/\d+\)|n/a)", section, re.M), out
    assert f"written to {failures}" in out or "first failures" not in out
    if failures.exists():
        assert all(line.startswith("[") for line in failures.read_text().splitlines() if line)


def test_generation_speed_reports_load_latency_decode_and_a_tool_call():
    out = _run(
        "benchmarks/generation_speed.py",
        "--model",
        "qwen-tiny-agent",
        "--tokens",
        "8",
        "--runs",
        "1",
    )
    assert float(re.search(r"load time: +([\d.]+) s", out).group(1)) > 0
    assert float(re.search(r"first-token latency: +([\d.]+) ms", out).group(1)) > 0
    assert float(re.search(r"decode speed: +([\d.]+) tokens/s", out).group(1)) > 0
    assert re.search(r"guarded tool call: +[\d.]+ ms .*<tool_call>", out), out


def test_relevance_sweep_replays_the_rule_over_a_grid():
    out = _run("benchmarks/relevance_sweep.py", "--n", "10", "--threads", "1")
    rows = re.findall(r"^ +[\d.-]+ +[\d.-]+ +(\d+\.\d)% \(\d+/\d+\) +(\d+\.\d)% ", out, re.M)
    assert len(rows) == 15, out
    assert re.search(r"^ +3\.0 +-3\.0 .*\(default\)$", out, re.M), out
    assert "the model's own pick" in out


def test_tool_eval_lists_a_fixed_number_of_tools_keeping_the_expected_one():
    from benchmarks.tool_eval import heldout_cases, with_listed

    cases, tools = heldout_cases()
    for k in (4, 12):
        listed = [with_listed(c, sorted(tools), k) for c in cases]
        assert all(len(set(c["tools"])) == k and set(c["tools"]) <= set(tools) for c in listed)
        assert all(c["expect"]["name"] in c["tools"] for c in listed if c.get("expect"))
        assert listed == [with_listed(c, sorted(tools), k) for c in cases]  # fixed per case
    _run(
        "benchmarks/tool_eval.py",
        *("--model", "qwen-tiny-agent", "--n", "2", "--threads", "1", "--listed", "4"),
    )


def test_tool_eval_matching_rules():
    """any_of alternatives, optional arguments left out or sent at their default, numbers
    compared by value, and nothing else."""
    from benchmarks.tool_eval import matches

    schema = {
        "properties": {
            "time": {"type": "string"},
            "repeat": {"type": "string", "default": "once"},
            "volume": {"type": "integer", "default": 5},
        }
    }
    want = {"time": {"any_of": ["07:30", "7:30"]}}
    assert matches({"time": "7:30"}, want, schema)
    assert matches({"time": "07:30", "repeat": "once"}, want, schema)  # the default: fine
    assert not matches({"time": "07:30", "repeat": "daily"}, want, schema)
    assert not matches({"time": "7.30"}, want, schema)
    assert not matches({}, want, schema)
    assert not matches({"time": "07:30", "alarm": 1}, want, schema)  # not a parameter
    assert matches({"amount": 250.0}, {"amount": 250}, {"properties": {}})
    assert not matches({"flag": 1}, {"flag": True}, {"properties": {}})


def test_image_gen_benchmark_times_and_judges_the_bundled_model():
    """What the benchmark prints, on as little work as shows it (its figures come from
    running it, not from this test)."""
    pytest.importorskip("diffusers")
    out = _run("benchmarks/image_gen.py", "--images", "2", "--generated", "2", "--fixed", "2")
    assert re.search(r"median ([\d.]+) s/image, p90 [\d.]+ s over 2 images", out), out
    for label in ("generated", "held-out", "long"):
        assert re.search(rf"^{label} +n=\d+ +colour +[\d.]+% .*all three +[\d.]+%", out, re.M), out


def test_mcp_overhead_benchmark_compares_with_in_process():
    pytest.importorskip("mcp")
    out = _run("benchmarks/mcp_overhead.py", "--calls", "5", "--transport", "stdio")
    assert re.search(r"^in-process +median +[\d.]+ ms", out, re.M), out
    assert re.search(r"^mcp stdio +median +[\d.]+ ms", out, re.M), out
