"""MCP client tools against real MCP servers (tests/mcp_server.py, written with the SDK):
over stdio, and over streamable HTTP on 127.0.0.1. No mocks: servers are killed, hung and
restarted for real, and process ids are checked after close and after an exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from qwen_agent import Agent  # noqa: E402
from qwen_agent.errors import ConfigError  # noqa: E402
from qwen_agent.events import ToolResultEvent  # noqa: E402
from qwen_agent.formats import get_format  # noqa: E402
from qwen_agent.messages import ImageItem, ToolCall  # noqa: E402
from qwen_agent.testing import ScriptedLLM  # noqa: E402
from qwen_agent.tools.mcp import MCPServerError, MCPServers, parse_config  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SERVER = str(Path(__file__).with_name("mcp_server.py"))
ROOT = str(Path(__file__).resolve().parents[1])


def stdio(name: str = "test", **extra: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [SERVER, "stdio", "--name", name], **extra}


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not count)."""
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port), "--name", "web"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the HTTP MCP server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the HTTP MCP server did not listen within 30 s")


def stop_http(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(10)


def add_through_agent(servers: MCPServers) -> ToolResultEvent:
    script = [
        get_format("hermes").render_calls([ToolCall(name="add", arguments={"a": 2, "b": 3})], ""),
        "2 + 3 = 5.",
    ]
    # the tools, not the toolset: the agent does not own (close) the fixture's servers
    with Agent(llm=ScriptedLLM(script), tools=servers.tools()) as agent:
        events = list(agent.run("What is 2 + 3?"))
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert len(results) == 1 and events[-1].message.text == "2 + 3 = 5."
    return results[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-cwd")


@pytest.fixture(scope="module")
def servers(workdir: Path) -> Iterator[MCPServers]:
    cfg = stdio(timeout=10, env={"QA_MCP_TEST": "yes"}, cwd=str(workdir))
    with MCPServers({"mcpServers": {"test": cfg}}) as s:
        yield s


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = free_port()
    proc = start_http(port)
    yield f"http://127.0.0.1:{port}/mcp"
    stop_http(proc)


# -- stdio ------------------------------------------------------------------------------
def test_lists_tools_with_schemas(servers: MCPServers) -> None:
    tools = {t.name: t for t in servers.tools()}
    assert {"add", "echo", "slow", "crash", "image"} <= set(tools)
    assert tools["add"].spec() == {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    }
    # a name no model can use is made valid; the server still gets its own name
    weird = tools["weird_name_with_chars"]
    assert weird.remote_name == "weird name/with:chars" and weird.server == "test"
    assert weird.call().text == "weird ok"


def test_call_directly(servers: MCPServers) -> None:
    add = next(t for t in servers.tools() if t.name == "add")
    result = add.call(a=2, b=3)
    assert result.text == "5" and not result.is_error
    echo = next(t for t in servers.tools() if t.name == "echo")
    assert echo.call(text="héllo <b>").text == "héllo <b>"


def test_call_through_agent(servers: MCPServers) -> None:
    event = add_through_agent(servers)
    assert event.result.text == "5" and not event.result.is_error and event.result.name == "add"


def test_calls_run_concurrently(servers: MCPServers) -> None:
    slow = next(t for t in servers.tools() if t.name == "slow")
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: slow.call(seconds=0.5).text, range(8)))
    assert results == ["slept 0.5"] * 8
    assert time.monotonic() - t0 < 3  # one after another would take 4 s


def test_import_is_light() -> None:
    code = "import sys, qwen_agent, qwen_agent.tools.mcp; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_invalid_arguments_are_caught_before_the_server(servers: MCPServers) -> None:
    add = next(t for t in servers.tools() if t.name == "add")
    with pytest.raises(Exception, match="invalid arguments for tool 'add'"):
        add.validate({"a": "two", "b": 3})


def test_error_results_and_images(servers: MCPServers) -> None:
    tools = {t.name: t for t in servers.tools()}
    failed = tools["fail"].call(message="the disk is full")
    assert failed.is_error and "the disk is full" in failed.text
    image = tools["image"].call()
    (item,) = image.content
    assert isinstance(item, ImageItem)
    assert Path(item.image).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_env_and_cwd_reach_the_server(servers: MCPServers, workdir: Path) -> None:
    tools = {t.name: t for t in servers.tools()}
    assert tools["getenv"].call(key="QA_MCP_TEST").text == "yes"
    assert tools["getenv"].call(key="HOME").text == os.environ.get("HOME", "")  # inherited
    assert Path(tools["cwd"].call().text).resolve() == workdir.resolve()


def test_crash_is_an_error_then_the_server_restarts_and_close_reaps_it() -> None:
    s = MCPServers({"c": stdio("c", timeout=10)})
    tools = {t.name: t for t in s.tools()}
    first = s.pids["c"]
    assert first is not None and alive(first)
    assert int(tools["pid"].call().text) == first  # the launcher exec'd: same pid
    with pytest.raises(
        MCPServerError, match=r"MCP server 'c' .* exited during the call to 'crash'"
    ):
        tools["crash"].call()
    assert wait_gone(first)
    assert tools["add"].call(a=20, b=22).text == "42"  # restarted
    second = s.pids["c"]
    assert second not in (None, first) and alive(second)
    # killed from outside between calls: restarted before the next call, which works
    os.kill(second, signal.SIGKILL)
    assert wait_gone(second)
    assert tools["add"].call(a=1, b=1).text == "2"
    third = s.pids["c"]
    # through an agent, a crash is an observation naming the server; the agent's close()
    # closes the toolset
    hermes = get_format("hermes")
    script = [
        hermes.render_calls([ToolCall(name="crash", arguments={})], ""),
        "It crashed.",
        hermes.render_calls([ToolCall(name="add", arguments={"a": 2, "b": 3})], ""),
        "5",
    ]
    with Agent(llm=ScriptedLLM(script), tools=[s]) as agent:
        answer, messages = agent.chat("crash it")
        assert answer == "It crashed."
        observation = next(m for m in messages if m.role == "tool")
        assert "MCP server 'c'" in observation.text and "exited" in observation.text
        assert wait_gone(third)
        _, messages = agent.chat("add")  # restarted
        assert [m.text for m in messages if m.role == "tool"] == ["5"]
        fourth = s.pids["c"]
        assert fourth not in (None, third) and alive(fourth)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 5  # a live server stops quickly
    assert s.pids == {"c": None} and not alive(fourth)
    s.close()  # twice is fine
    with pytest.raises(MCPServerError, match="closed"):
        tools["add"].call(a=1, b=1)


def test_hang_times_out_then_the_next_call_works() -> None:
    with MCPServers({"h": stdio("h", timeout=1)}) as s:
        tools = {t.name: t for t in s.tools()}
        first = s.pids["h"]
        for tool, restarted in (("slow", False), ("hang", True)):
            t0 = time.monotonic()
            with pytest.raises(
                MCPServerError, match=f"did not answer the call to '{tool}' within 1 s"
            ):
                tools[tool].call(seconds=10)
            assert time.monotonic() - t0 < 4
            t0 = time.monotonic()
            assert tools["add"].call(a=2, b=2).text == "4"
            assert time.monotonic() - t0 < 20
            # slow() runs in a worker thread: the server still answers and is kept;
            # hang() blocks its event loop: the ping fails and it is restarted
            assert (s.pids["h"] != first) is restarted
        assert wait_gone(first)


def test_name_clash_gets_prefixes() -> None:
    with MCPServers({"mcpServers": {"one": stdio("one"), "two": stdio("two")}}) as s:
        names = {t.name for t in s.tools()}
        assert {"one__add", "two__add", "one__echo", "two__echo"} <= names
        assert "add" not in names
        by_name = {t.name: t for t in s.tools()}
        assert by_name["two__add"].server == "two" and by_name["two__add"].remote_name == "add"
        assert by_name["two__add"].call(a=1, b=2).text == "3"
        image = Path(by_name["one__image"].call().content[0].image)
        assert image.is_file()
        pids = list(s.pids.values())
    assert all(wait_gone(p, 5) for p in pids if p is not None)
    assert not image.exists() and not image.parent.exists()  # the temporary folder is gone


def test_bad_config_is_clear() -> None:
    with pytest.raises(ConfigError, match="MCP server 'x' has neither 'command' nor 'url'"):
        parse_config({"x": {"args": []}})
    with pytest.raises(ConfigError, match="MCP server 'x' has both 'command' and 'url'"):
        parse_config({"mcpServers": {"x": {"command": "a", "url": "http://127.0.0.1:1/mcp"}}})
    with pytest.raises(ConfigError, match="MCP server 'x': comand: Extra inputs"):
        parse_config({"x": {"command": "a", "comand": "b"}})
    with pytest.raises(ConfigError, match="MCP server 'x': timeout"):
        parse_config({"x": {"command": "a", "timeout": -1}})
    with pytest.raises(ConfigError, match="SSE transport is not supported"):
        parse_config({"x": {"url": "http://127.0.0.1:1/sse", "type": "sse"}})
    with pytest.raises(ConfigError, match="unknown key.*globalShortcut"):
        parse_config({"mcpServers": {}, "globalShortcut": "x"})
    with pytest.raises(ConfigError, match="MCP server 'x': url"):
        parse_config({"x": {"url": "127.0.0.1:8000/mcp"}})
    parsed = parse_config(
        {"a": {"command": "uvx", "args": ["mcp-server-time"]}, "b": {"url": "http://127.0.0.1/mcp"}}
    )
    assert parsed["a"].type == "stdio" and parsed["b"].timeout == 30
    assert MCPServers({}).tools() == []


def running(marker: str) -> list[str]:
    """The pids of processes whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_text():
                found.append(proc.name)
        except OSError:
            pass
    return [pid for pid in found if alive(int(pid))]


def test_a_server_that_cannot_start_names_itself() -> None:
    with pytest.raises(MCPServerError, match=r"MCP server 'nope' \(no-such-mcp-binary .*not found"):
        MCPServers({"nope": {"command": "no-such-mcp-binary", "args": ["--x"]}})
    dies = {"command": sys.executable, "args": ["-c", "import sys; sys.exit('bad token')"]}
    ok = f"ok-{os.getpid()}-{time.monotonic_ns()}"
    with pytest.raises(MCPServerError, match=r"(?s)MCP server 'dies' .*could not start.*bad token"):
        MCPServers({ok: stdio(ok), "dies": dies})
    # the server that did start was stopped
    assert not running(f"\0--name\0{ok}\0")


def test_no_orphan_when_the_parent_exits_without_close() -> None:
    """A parent that exits without close() (atexit), or is SIGKILLed (the server dies with
    it: PR_SET_PDEATHSIG), leaves no server behind. Both parents run at once."""
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from qwen_agent.tools.mcp import MCPServers
        s = MCPServers({{"o": {{"command": sys.executable, "args": [{SERVER!r}, "stdio"]}}}})
        print(s.pids["o"], flush=True)
        if sys.argv[1] == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    parents = {
        how: subprocess.Popen(
            [sys.executable, "-c", code, how], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
        )
        for how in ("exit", "sigkill")
    }
    for how, proc in parents.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == (0 if how == "exit" else -signal.SIGKILL), out
        pid = int(out.split()[0])
        assert wait_gone(pid, 10), f"MCP server {pid} outlived its parent ({how})"


# -- streamable HTTP --------------------------------------------------------------------
@pytest.mark.network
def test_http_lists_and_calls(http_url: str) -> None:
    with MCPServers({"mcpServers": {"web": {"url": http_url, "timeout": 10}}}) as s:
        tools = {t.name: t for t in s.tools()}
        assert tools["add"].parameters["properties"] == {
            "a": {"type": "integer"},
            "b": {"type": "integer"},
        }
        assert tools["add"].call(a=2, b=3).text == "5"
        assert s.pids == {"web": None}
        event = add_through_agent(s)
        assert event.result.text == "5" and not event.result.is_error


@pytest.mark.network
def test_http_server_killed_then_back_on_the_same_port() -> None:
    port = free_port()
    proc = start_http(port)
    try:
        with MCPServers({"web": {"url": f"http://127.0.0.1:{port}/mcp", "timeout": 10}}) as s:
            add = next(t for t in s.tools() if t.name == "add")
            assert add.call(a=1, b=2).text == "3"
            stop_http(proc)
            with pytest.raises(MCPServerError, match=r"MCP server 'web' \(http://127\.0\.0\.1"):
                add.call(a=1, b=2)
            with pytest.raises(MCPServerError, match="MCP server 'web'"):  # still down
                add.call(a=1, b=2)
            proc = start_http(port)
            assert add.call(a=3, b=4).text == "7"  # reconnected
            # restarted between calls: the server answers 404 for the old session, the
            # call was not run, so it is made again on a new session
            stop_http(proc)
            proc = start_http(port)
            assert add.call(a=5, b=6).text == "11"
    finally:
        stop_http(proc)


@pytest.mark.network
def test_http_unreachable_at_start_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(MCPServerError, match=rf"MCP server 'gone' \({url}\) could not connect"):
        MCPServers({"gone": {"url": url, "startup_timeout": 10}})
