"""Built-in tools named in an agent config and on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_agent import AgentConfig
from qwen_agent.errors import ConfigError
from qwen_agent.formats.hermes import HermesFormat
from qwen_agent.messages import ToolCall
from qwen_agent.serving import Server
from qwen_agent.testing import ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent


def call(name: str, **arguments) -> str:
    return HermesFormat().render_calls([ToolCall(name=name, arguments=arguments)])


def run_cli(*args: str, env_extra: dict[str, str] | None = None, cwd: Path = ROOT):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "qwen_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


@pytest.fixture
def knowledge(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "museum.md").write_text(
        "# Museum\n\nThe Harbour Museum opens at 9:30 every weekday and closes at 17:00.\n"
    )
    (docs / "cafe.txt").write_text("The cafe sells lemon cake and mint tea.\n")
    return docs


def test_config_tables_give_tools_their_options(knowledge, tmp_path):
    pytest.importorskip("bm25s")
    config = AgentConfig.model_validate(
        {
            "tools": [{"name": "retrieval", "files": [str(knowledge)]}, "image_gen"],
            "tool_options": {
                "retrieval": {"index_dir": str(tmp_path / "index"), "top_k": 1},
                "image_gen": {"output_dir": str(tmp_path / "img")},
            },
        }
    )
    agent = config.build(llm=ScriptedLLM(["ok"]))
    assert sorted(agent.tools) == ["image_gen", "retrieval"]
    assert agent.tools["retrieval"].top_k == 1
    assert agent.tools["image_gen"].output_dir == tmp_path / "img"
    assert "9:30" in agent.tools["retrieval"].call(query="when does the museum open")


def test_bad_tool_options_are_clear_errors(knowledge):
    with pytest.raises(ConfigError, match=r"has no option\(s\) \['colour'\]; its options"):
        AgentConfig(tools=[{"name": "image_gen", "colour": "red"}]).build(llm=ScriptedLLM(["x"]))
    with pytest.raises(ConfigError, match="a tool table needs a 'name'"):
        AgentConfig(tools=[{"files": ["x"]}]).build(llm=ScriptedLLM(["x"]))
    with pytest.raises(ConfigError, match="takes no options"):
        AgentConfig(tools=[{"name": "tests/cli_tools.py:multiply", "x": 1}]).build(
            llm=ScriptedLLM(["x"])
        )


def test_mcp_servers_are_read_as_claude_desktop_writes_them(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"mcpServers": {"files": {"command": "x", "args": ["y"]}}}))
    assert AgentConfig.load(path).mcp_servers == {"files": {"command": "x", "args": ["y"]}}
    toml = tmp_path / "agent.toml"
    toml.write_text('[mcp_servers.web]\nurl = "http://127.0.0.1:9/mcp"\n')
    assert AgentConfig.load(toml).mcp_servers == {"web": {"url": "http://127.0.0.1:9/mcp"}}


@pytest.mark.network
def test_cli_knowledge_flag_adds_retrieval(knowledge, tmp_path):
    pytest.importorskip("bm25s")
    llm = ScriptedLLM([call("retrieval", query="museum opening hours"), "It opens at 9:30."])
    with Server({"tiny": llm}).start() as srv:
        proc = run_cli(
            "chat",
            "When does the museum open?",
            "--base-url",
            srv.url,
            "--model",
            "tiny",
            "--knowledge",
            str(knowledge),
            env_extra={"QWEN_AGENT_CACHE_DIR": str(tmp_path / "cache")},
        )
    assert proc.returncode == 0, proc.stderr
    assert "-> retrieval" in proc.stderr and "9:30" in proc.stderr
    assert "museum.md" in proc.stderr and str(knowledge) not in proc.stderr
    assert "It opens at 9:30." in proc.stdout


@pytest.mark.network
def test_cli_image_gen_prints_the_png_path(tmp_path):
    pytest.importorskip("diffusers")
    llm = ScriptedLLM([call("image_gen", prompt="a green triangle", seed=1), "Here it is."])
    with Server({"tiny": llm}).start() as srv:
        proc = run_cli(
            "chat",
            "Draw a green triangle",
            "--base-url",
            srv.url,
            "--model",
            "tiny",
            "--tool",
            "image_gen",
            env_extra={"QWEN_AGENT_DATA_DIR": str(tmp_path)},
        )
    assert proc.returncode == 0, proc.stderr
    pngs = list((tmp_path / "images").rglob("*.png"))
    assert len(pngs) == 1 and str(pngs[0]) in proc.stderr


def test_bad_mcp_servers_fail_when_the_config_is_read(tmp_path):
    pytest.importorskip("mcp")
    path = tmp_path / "agent.toml"
    path.write_text('[mcp_servers.both]\ncommand = "x"\nurl = "http://127.0.0.1:9/mcp"\n')
    with pytest.raises(ConfigError, match="both"):
        AgentConfig.load(path)


@pytest.mark.network
def test_cli_mcp_config_adds_the_servers_tools(tmp_path):
    pytest.importorskip("mcp")
    server = Path(__file__).with_name("mcp_server.py")
    servers = {"mcpServers": {"calc": {"command": sys.executable, "args": [str(server), "stdio"]}}}
    (tmp_path / "servers.json").write_text(json.dumps(servers))
    llm = ScriptedLLM([call("add", a=2, b=40), "2 + 40 = 42."])
    with Server({"tiny": llm}).start() as srv:
        proc = run_cli(
            "chat",
            "What is 2 + 40?",
            "--base-url",
            srv.url,
            "--model",
            "tiny",
            "--mcp-config",
            str(tmp_path / "servers.json"),
        )
    assert proc.returncode == 0, proc.stderr
    assert "-> add" in proc.stderr and "<- 42" in proc.stderr
    assert "2 + 40 = 42." in proc.stdout
