"""The README's snippets run as written, against the project's own server on 127.0.0.1."""

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
from tests.sandbox_helpers import sandbox_skip_reason

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
URL = "http://127.0.0.1:8000/v1"
CALL = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_quick_start_runs_and_calls_the_tool(tmp_path):
    quick = python_blocks()[0]
    assert "@tool" in quick and "Agent(" in quick and ".chat(" in quick
    assert len(quick.strip().splitlines()) <= 14
    llm = ScriptedLLM([CALL, "12 * 34 = 408"])
    with OpenAIServer(llm).start() as server:
        assert URL in quick, "the quick start must use the documented local URL"
        proc = run_python(quick.replace(URL, server.url), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12 * 34 = 408"
    # the tool really ran: its result went back to the model
    assert llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"


def test_streaming_example_runs(tmp_path):
    quick, streaming = python_blocks()[:2]
    llm = ScriptedLLM([CALL, "It is 408."])
    with OpenAIServer(llm).start() as server:
        setup = quick.replace(URL, server.url).split("answer, messages")[0]
        proc = run_python(setup + streaming, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "\n-> multiply({'a': 12, 'b': 34})\n<- 408\nIt is 408."


def test_code_interpreter_example_runs_in_the_sandbox(tmp_path):
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    snippet = python_blocks()[2]
    assert "CodeInterpreter" in snippet
    proc = run_python(snippet, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "408" in proc.stdout
