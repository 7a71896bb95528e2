"""The README's snippets run as written, against the project's own server on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM
from tests.sandbox_helpers import sandbox_skip_reason

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
URL = "http://127.0.0.1:8000/v1"
CALL = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def block(marker: str) -> str:
    found = [b for b in python_blocks() if marker in b]
    assert found, f"no python block with {marker!r} in the README"
    return found[0]


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    return subprocess.run(
        # a first use of the default model merges it into the cache (about 20 s)
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )


def test_quick_start_runs_offline_on_the_bundled_model(tmp_path):
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    from qwen_agent.bundled.smol import SMOL_AGENT

    # the package ships the model: a build without it is broken, not skipped
    assert (SMOL_AGENT / "manifest.json").is_file(), f"the bundled model is missing: {SMOL_AGENT}"
    quick = python_blocks()[0]
    assert "@tool" in quick and "Agent(tools=[multiply])" in quick and ".chat(" in quick
    assert len(quick.strip().splitlines()) <= 14
    proc = run_python(quick, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "408" in proc.stdout


def test_server_line_talks_to_an_openai_compatible_server(tmp_path):
    quick = python_blocks()[0].split("agent = Agent(")[0]  # imports and the tool
    line = next(b for b in python_blocks() if URL in b).split('\nagent = Agent(llm={"model"')[0]
    llm = ScriptedLLM([CALL, "12 * 34 = 408"])
    with Server({"Qwen/Qwen2.5-7B-Instruct": llm}).start() as server:
        ask = "\nprint(agent.chat('What is 12 * 34?').answer)\n"
        code = quick + line.replace(URL, server.url) + ask
        proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12 * 34 = 408"
    # the tool really ran: its result went back to the model
    assert llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"


def test_async_example_runs_on_the_bundled_model(tmp_path):
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    setup = python_blocks()[0].split("answer, messages")[0]
    proc = run_python(setup + block("agent.arun("), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "408"


def test_streaming_example_runs_on_the_bundled_model(tmp_path):
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    from qwen_agent.bundled.smol import SMOL_AGENT

    # the package ships the model: a build without it is broken, not skipped
    assert (SMOL_AGENT / "manifest.json").is_file(), f"the bundled model is missing: {SMOL_AGENT}"
    setup = python_blocks()[0].split("answer, messages")[0]
    proc = run_python(setup + block("agent.run("), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\n-> multiply({'a': 12, 'b': 34})\n<- 408\n" in proc.stdout
    assert "408" in proc.stdout.split("<- 408\n", 1)[1]


def test_code_interpreter_example_runs_in_the_sandbox(tmp_path):
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    snippet = block("CodeInterpreter(")
    proc = run_python(snippet, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "408" in proc.stdout
    assert "a,b" in proc.stdout and "1,2" in proc.stdout  # the upload, read back by the code


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, proc: subprocess.Popen, seconds: float = 240) -> None:
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"qwen-agent serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("qwen-agent serve did not come up")


@pytest.mark.network
@pytest.mark.timeout(600)
def test_serve_section_runs_against_qwen_agent_serve_on_the_bundled_model(tmp_path):
    """`qwen-agent serve` as the README starts it, then the README's curl body and its
    openai snippet, unchanged but for the port."""
    pytest.importorskip("torch", reason="the bundled model needs the [local] extra")
    pytest.importorskip("openai")
    import json

    import httpx

    text = README.read_text()
    assert "qwen-agent serve --port 8000" in text
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwen_agent.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        curl = re.search(
            r"curl -s (\S+) -H 'Content-Type: application/json' -d '(.*?)'\n", text, re.S
        )
        assert curl, "no curl line in the README"
        r = httpx.post(
            curl.group(1).replace("http://127.0.0.1:8000", base),
            json=json.loads(curl.group(2)),
            timeout=120,
        )
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["total_tokens"] > 0
        code = block("from openai import OpenAI").replace(URL, f"{base}/v1")
        out = run_python(code, tmp_path)
        assert out.returncode == 0, out.stderr
        assert "get_weather" in out.stdout and "ChatCompletionMessageFunctionToolCall" in out.stdout
    finally:
        proc.terminate()
        proc.wait(20)


def test_code_interpreter_snippet_prints_the_results_text(tmp_path):
    reason = sandbox_skip_reason()
    if reason:
        pytest.skip(reason)
    snippet = block('tool.call(code="print(12 * 34)")')
    proc = run_python(snippet, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "408", proc.stdout  # the text, not [TextItem(...)]
    assert "TextItem" not in proc.stdout and "a,b" in proc.stdout
