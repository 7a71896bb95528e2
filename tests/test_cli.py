"""The ``qwen-agent`` command, run as a real process against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent
CALL = HermesFormat().render_calls([ToolCall(name="multiply", arguments={"a": 12, "b": 34})])


def run_cli(*args: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


@pytest.fixture
def server():
    llm = ScriptedLLM([CALL, "12*34 is 408."], chunk_size=3)
    with Server({"tiny": llm}).start() as srv:
        srv.llm = llm
        yield srv


def test_one_shot_question_calls_the_tool_and_streams_the_answer(server):
    proc = run_cli(
        "chat",
        "what is 12*34?",
        "--base-url",
        server.url,
        "--model",
        "tiny",
        "--tool",
        "tests.cli_tools:multiply",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12*34 is 408."
    assert '-> multiply({"a": 12, "b": 34})' in proc.stderr
    assert "<- 408" in proc.stderr
    # the model saw the tool in its system prompt and the result in the second turn
    assert '"name": "multiply"' in server.llm.prompts[0][0].text
    assert server.llm.prompts[1][-1].text == "<tool_response>\n408\n</tool_response>"


def test_config_file_and_completion_mode(server, tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        'tools = ["tests.cli_tools:multiply"]\ninstructions = "Be brief."\n'
        f'[llm]\nbackend = "openai"\nmodel = "tiny"\nbase_url = "{server.url}"\n'
        'mode = "completion"\n'
    )
    proc = run_cli("chat", "12*34?", "--config", str(cfg), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "12*34 is 408."
    assert proc.stderr == ""
    assert server.llm.prompts[0][0].text.startswith("Be brief.")


def test_interactive_session_keeps_history(server):
    server.llm.responses[:] = ["Hello!", "You said hi before."]
    proc = run_cli(
        "chat",
        "--base-url",
        server.url,
        "--model",
        "tiny",
        stdin="hi\n\n/bogus-looking text\n/exit\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Hello!") == 1 and "You said hi before." in proc.stdout
    second = server.llm.prompts[1]
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[1].text == "hi" and second[3].text == "/bogus-looking text"


def test_tool_from_a_file_path(server, tmp_path):
    tools = tmp_path / "my tools.py"
    tools.write_text(
        "from qwen_agent import tool\n\n@tool\ndef multiply(a: int, b: int) -> int:\n"
        '    """Multiply."""\n    return a * b + 1\n'
    )
    proc = run_cli(
        "chat", "12*34?", "--base-url", server.url, "--tool", f"{tools}:multiply", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "<- 409" in proc.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('nope')\n")
    proc = run_cli("chat", "q", "--base-url", server.url, "--tool", f"{bad}:f")
    assert proc.returncode == 2 and "running bad.py failed: RuntimeError: nope" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["chat", "q", "--base-url", "http://127.0.0.1:9/v1", "--tool", "nomodule_xyz:f"],
            "cannot import 'nomodule_xyz'",
        ),
        (
            ["chat", "q", "--base-url", "http://127.0.0.1:9/v1", "--tool", "notaspec"],
            "give MODULE:ATTR",
        ),
        (["chat", "q", "--config", "/nonexistent/agent.toml"], "cannot read config file"),
    ],
)
def test_bad_configuration_exits_2_with_a_clear_message(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_config_key_and_bad_json(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"llm": {}, "toolz": []}))
    proc = run_cli("chat", "q", "--config", str(bad))
    assert proc.returncode == 2 and "unknown keys ['toolz']" in proc.stderr
    bad.write_text("{nope")
    proc = run_cli("chat", "q", "--config", str(bad))
    assert proc.returncode == 2 and "is not valid" in proc.stderr


def test_missing_model_directory_is_a_configuration_error():
    for command in (["chat", "q"], ["serve", "--port", "0"]):
        proc = run_cli(*command, "--model", "/nonexistent/model")
        assert proc.returncode == 2, proc.stderr
        assert "model directory /nonexistent/model does not exist" in proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('no config for you')", "RuntimeError: no config for you"),
        ("import sys\nsys.exit(0)", "called sys.exit(0)"),
        ("raise SystemExit(3)", "called sys.exit(3)"),
    ],
)
def test_a_tool_module_that_fails_or_exits_is_a_configuration_error(tmp_path, body, message):
    (tmp_path / "badtools.py").write_text(body + "\n\ndef f():\n    return 1\n")
    for spec in ("badtools:f", str(tmp_path / "badtools.py") + ":f"):
        proc = run_cli(
            "chat", "q", "--base-url", "http://127.0.0.1:9/v1", "--tool", spec, cwd=tmp_path
        )
        assert proc.returncode == 2, (spec, proc.returncode, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_unknown_tool_name_lists_the_registered_ones():
    proc = run_cli("chat", "q", "--base-url", "http://127.0.0.1:9/v1", "--tool", "code_interp")
    assert proc.returncode == 2
    assert "code_interpreter" in proc.stderr and "image_gen" in proc.stderr


def test_serve_on_a_taken_port_says_so_before_loading_a_model():
    import socket
    import time

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        start = time.monotonic()
        # a model directory that does not exist: had the port not been checked first, the
        # error would be about the model
        proc = run_cli("serve", "--port", str(port), "--model", "/nonexistent/model")
        took = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert "http://" not in proc.stderr and "Traceback" not in proc.stderr
    assert took < 30


def test_unreachable_server_exits_1():
    proc = run_cli("chat", "q", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert proc.returncode == 1
    assert "BackendConnectionError" in proc.stderr and "127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_proxies_a_server_natively_and_serves_an_agent_behind_a_key(tmp_path):
    """`qwen-agent serve --base-url ... --native-tools --config calc.toml --api-key ...` as a
    real process: the official client gets tool_calls that the upstream server parsed, and
    the agent runs its tool on this server."""
    openai = pytest.importorskip("openai")
    from tests.test_readme import _free_port, _wait_healthy

    weather = HermesFormat().render_calls(
        [ToolCall(name="get_weather", arguments={"city": "Oslo"})]
    )
    upstream_llm = ScriptedLLM([weather, CALL, "12*34 is 408."])
    (tmp_path / "calc.toml").write_text(
        'instructions = "Be brief."\ntools = ["examples/tools.py:multiply"]\n'
    )
    port = _free_port()
    with Server({"up": upstream_llm}).start() as upstream:
        env = {**os.environ, "QWEN_AGENT_API_KEY": "sk-test"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qwen_agent.cli",
                "serve",
                "--port",
                str(port),
                "--base-url",
                upstream.url,
                "--model",
                "up",
                "--native-tools",
                "--served-model-name",
                "proxied",
                "--config",
                str(tmp_path / "calc.toml"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            client = openai.OpenAI(
                base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0
            )
            assert {m.id for m in client.models.list()} == {"proxied", "agent:calc"}
            tools = [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ]
            r = client.chat.completions.create(
                model="proxied", messages=[{"role": "user", "content": "Oslo?"}], tools=tools
            )
            (got,) = r.choices[0].message.tool_calls
            assert (got.function.name, json.loads(got.function.arguments)) == (
                "get_weather",
                {"city": "Oslo"},
            )
            # native: the upstream got the tools as data and rendered them itself
            assert "<tools>" in upstream_llm.prompts[0][0].text
            r = client.chat.completions.create(
                model="agent:calc", messages=[{"role": "user", "content": "12*34?"}]
            )
            assert r.choices[0].message.content == "12*34 is 408."
            assert r.choices[0].message.model_extra["agent_events"][1]["content"] == "408"
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(
                    base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-no", max_retries=0
                ).models.list()
        finally:
            proc.terminate()
            proc.wait(20)
