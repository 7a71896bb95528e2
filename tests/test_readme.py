"""The README's commands and snippets run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.server import OpenAIServer
from qwen_agent.testing import ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CALL = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_quick_start_runs_offline_with_the_bundled_model(tmp_path):
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    quick = python_blocks()[0]
    assert "@tool" in quick and "Agent(" in quick and ".chat(" in quick
    assert len(quick.strip().splitlines()) <= 12
    proc = run_python(quick, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "408" in proc.stdout


def test_readme_run_command_calls_the_example_tool():
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    run = next(line for line in block.splitlines() if line.startswith("qwen-agent chat"))
    args = re.findall(r'"[^"]*"|\S+', run.split("#")[0])[2:]
    args = [a.strip('"') for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", "chat", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert '-> multiply({"a": 12, "b": 34})' in proc.stderr
    assert "408" in proc.stdout


def test_streaming_example_runs_against_a_server(tmp_path):
    quick, streaming = python_blocks()[:2]
    llm = ScriptedLLM([CALL, "It is 408."])
    with OpenAIServer(llm).start() as server:
        setup = quick.split("answer, messages")[0].replace(
            "Agent(tools=[multiply])",
            f"Agent(llm={{'base_url': '{server.url}', 'model': 'm'}}, tools=[multiply])",
        )
        assert "base_url" in setup
        proc = run_python(setup + streaming, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "\n-> multiply({'a': 12, 'b': 34})\n<- 408\nIt is 408."
    assert llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"
