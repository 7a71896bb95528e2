"""The README's quick start runs as written, against a real OpenAI-compatible server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.server import OpenAIServer
from qwen_agent.testing import ScriptedLLM

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_quick_start_runs_and_calls_the_tool(tmp_path):
    quick = python_blocks()[0]
    assert "@tool" in quick and "Agent(" in quick and ".chat(" in quick
    assert len(quick.strip().splitlines()) <= 15
    call = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])
    llm = ScriptedLLM([call, "12 * 34 = 408"])
    with OpenAIServer(llm).start() as server:
        code = quick.replace("http://127.0.0.1:8000/v1", server.url)
        assert code != quick, "the quick start must use the documented local URL"
        script = tmp_path / "quick.py"
        script.write_text(code)
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12 * 34 = 408"
    # the tool really ran: its result went back to the model
    assert llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"


def test_streaming_example_runs(tmp_path):
    quick, streaming = python_blocks()[:2]
    call = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])
    llm = ScriptedLLM([call, "It is 408."])
    with OpenAIServer(llm).start() as server:
        setup = quick.replace("http://127.0.0.1:8000/v1", server.url).split("answer, messages")[0]
        script = tmp_path / "stream.py"
        script.write_text(setup + streaming)
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "\n-> multiply({'a': 12, 'b': 34})\n<- 408\nIt is 408."
