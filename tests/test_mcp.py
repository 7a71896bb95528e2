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
    with pytest.raises(MCPServerError, match=r"MCP server 'c' exited during the call to 'crash'"):
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


def test_a_server_that_cannot_start_names_itself(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(
        MCPServerError, match=r"MCP server 'nope' could not start \(its command was not found\)"
    ):
        MCPServers({"nope": {"command": "no-such-mcp-binary", "args": ["--x"]}})
    dies = {"command": sys.executable, "args": ["-c", "import sys; sys.exit('bad input')"]}
    ok = f"ok-{os.getpid()}-{time.monotonic_ns()}"
    with pytest.raises(MCPServerError, match=r"MCP server 'dies' could not start") as info:
        MCPServers({ok: stdio(ok), "dies": dies})
    assert info.value.server == "dies" and "exited while starting" in str(info.value)
    # the details are in the host's log, not in the error
    assert "bad input" not in str(info.value) and "bad input" in caplog.text
    assert "sys.exit" in caplog.text  # the command line
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
            with pytest.raises(MCPServerError, match=r"MCP server 'web' dropped the connection"):
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
    with pytest.raises(MCPServerError, match=r"MCP server 'gone' could not connect"):
        MCPServers({"gone": {"url": url, "startup_timeout": 10}})


# -- secrets stay out of errors ---------------------------------------------------------
ARG_SECRET, URL_PASSWORD, URL_KEY, ENV_SECRET = (
    "sk-ARGSECRET1234",
    "hunter22pw",
    "QKEY9999",
    "ENVSECRET777",
)
SECRETS = (ARG_SECRET, URL_PASSWORD, URL_KEY, ENV_SECRET)


def leaky(name: str) -> dict[str, object]:
    """A server whose command line and env hold secrets, and which writes them to stderr."""
    url = f"http://bob:{URL_PASSWORD}@127.0.0.1/x?api_key={URL_KEY}"
    cfg = stdio(name, timeout=10, env={"QA_MCP_SECRET": ENV_SECRET})
    cfg["args"] = [*cfg["args"], "--api-key", ARG_SECRET, "--url", url]  # type: ignore[misc]
    return cfg


def assert_no_secret(text: str) -> None:
    assert not any(s in text for s in SECRETS), text
    assert "bob:" not in text and SERVER not in text, text


def test_errors_name_the_server_only_and_the_log_masks_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with MCPServers({"leaky": leaky("leaky")}) as s:
        tools = {t.name: t for t in s.tools()}
        with pytest.raises(MCPServerError) as info:
            tools["crash"].call()
        assert str(info.value).startswith("MCP server 'leaky' exited during the call to 'crash'")
        assert_no_secret(str(info.value))
        # what the model sees
        script = [get_format("hermes").render_calls([ToolCall(name="crash", arguments={})], "")]
        with Agent(llm=ScriptedLLM([*script, "It crashed."]), tools=s.tools()) as agent:
            _, messages = agent.chat("crash it")
        observation = next(m.text for m in messages if m.role == "tool")
        assert "MCP server 'leaky' exited" in observation
        assert_no_secret(observation)
    # the host's log has the details, masked: the command line, the stderr tail
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.endswith("mcp"))
    assert "--api-key '***'" in logged and "http://***@127.0.0.1/x?api_key=***" in logged
    assert "env: QA_MCP_SECRET=***" in logged and "crashing on purpose" in logged
    assert "starting with *** http://***@127.0.0.1/x?api_key=*** ***" in logged
    assert not any(s in caplog.text for s in SECRETS), caplog.text


@pytest.mark.network
def test_a_url_with_credentials_stays_out_of_errors(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"http://bob:{URL_PASSWORD}@127.0.0.1:{port}/mcp?api_key={URL_KEY}"
    cfg = {"url": url, "headers": {"Authorization": f"Bearer {ENV_SECRET}"}, "startup_timeout": 10}
    with pytest.raises(MCPServerError, match=r"^MCP server 'gone' could not connect") as info:
        MCPServers({"gone": cfg})
    assert_no_secret(str(info.value))
    assert f"http://***@127.0.0.1:{port}/mcp?api_key=***" in caplog.text
    assert not any(s in caplog.text for s in SECRETS), caplog.text


@pytest.mark.network
def test_served_agent_clients_see_no_secrets() -> None:
    pytest.importorskip("fastapi", reason="serve needs the [serve] extra")
    import httpx

    from qwen_agent.config import AgentConfig
    from qwen_agent.serving import Server

    hermes = get_format("hermes")
    llm = ScriptedLLM([hermes.render_calls([ToolCall(name="crash", arguments={})], ""), "ok"])
    agent = AgentConfig(name="m", mcp_servers={"leaky": leaky("leaky")})
    server = Server(llm, agents=[agent], host="127.0.0.1", port=0).start()
    try:
        body = {"model": "agent:m", "messages": [{"role": "user", "content": "crash it"}]}
        r = httpx.post(f"{server.url}/chat/completions", json=body, timeout=60)
    finally:
        server.stop()
    assert r.status_code == 200, r.text
    assert_no_secret(r.text)
    assert "MCP server 'leaky' exited" in r.text


# -- process groups ---------------------------------------------------------------------
def kill_quietly(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_close_stops_the_workers_a_server_started() -> None:
    """A worker the server spawned (one ignoring SIGTERM too) dies with it at close()."""
    s = MCPServers({"w": stdio("w", timeout=10)})
    workers: list[int] = []
    try:
        tools = {t.name: t for t in s.tools()}
        server = s.pids["w"]
        workers = [int(tools["spawn"].call(ignore_term=x).text) for x in (False, True)]
        assert server is not None and all(alive(p) for p in [server, *workers])
        t0 = time.monotonic()
        s.close()
        assert time.monotonic() - t0 < 6
        left = [p for p in [server, *workers] if not wait_gone(p, 3)]
        assert not left, f"alive after close(): {left} (server {server}, workers {workers})"
    finally:
        s.close()
        kill_quietly(workers)


def test_a_sigkilled_parent_takes_the_server_and_its_workers_along() -> None:
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        from qwen_agent.tools.mcp import MCPServers
        s = MCPServers({{"o": {{"command": sys.executable, "args": [{SERVER!r}, "stdio"]}}}})
        spawn = next(t for t in s.tools() if t.name == "spawn")
        workers = [spawn.call(ignore_term=x).text for x in (False, True)]
        print(s.pids["o"], *workers, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    try:
        assert len(pids) == 3
        left = [p for p in pids if not wait_gone(p, 5)]
        assert not left, f"alive 5 s after the parent's SIGKILL: {left} of {pids}"
    finally:
        kill_quietly(pids)


# -- startup_timeout ----------------------------------------------------------------------
def test_a_server_that_never_answers_initialize_fails_within_startup_timeout() -> None:
    marker = f"mute-{os.getpid()}-{time.monotonic_ns()}"
    code = "import sys, time\nfor _ in sys.stdin: pass\ntime.sleep(600)"  # reads, never answers
    cfg = {"command": sys.executable, "args": ["-c", code, marker], "startup_timeout": 3}
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        MCPServers({"mute": cfg})
    took = time.monotonic() - t0
    assert took < 3 + 1.5, f"took {took:.1f} s"
    assert info.value.server == "mute"
    assert str(info.value).startswith(
        "MCP server 'mute' did not start within 3 s: it did not answer MCP's initialize request"
    )
    deadline = time.monotonic() + 3
    while running(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(marker)


# -- result caps --------------------------------------------------------------------------
def test_long_text_results_are_cut_with_a_note(servers: MCPServers) -> None:
    big = next(t for t in servers.tools() if t.name == "big")
    text = big.call(chars=1_000_000).text
    assert text.startswith("x" * 20_000) and "x" * 20_001 not in text and len(text) < 20_300
    assert "the result was cut: 20,000 of its 1,000,000 characters are shown" in text


def test_result_caps_are_set_per_server(tmp_path: Path) -> None:
    cfg = stdio("cap", timeout=10, max_result_chars=100, max_binary_bytes=500)
    with MCPServers({"cap": cfg}, image_dir=tmp_path) as s:
        tools = {t.name: t for t in s.tools()}
        text = tools["big"].call(chars=150).text
        assert text.startswith("x" * 100) and "x" * 101 not in text
        assert "100 of its 150 characters" in text
        (small,) = tools["blob"].call(size=400).content
        assert isinstance(small, ImageItem) and Path(small.image).stat().st_size == 400
        (note,) = tools["blob"].call(size=5000).content
        assert not isinstance(note, ImageItem)
        assert "an image (image/png) of 5,000 bytes was left out" in note.text
        assert "max_binary_bytes" in note.text
        assert [p.stat().st_size for p in tmp_path.iterdir()] == [400]  # not written


# -- include / exclude ------------------------------------------------------------------
def test_include_and_exclude_choose_the_tools_the_model_sees(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = {
        "inc": stdio("inc", include=["add", "echo"]),
        "exc": stdio("exc", exclude=["add", "echo", "crash", "no_such_tool"]),
    }
    with MCPServers(cfg) as s:
        by_server: dict[str, set[str]] = {}
        for t in s.tools():
            by_server.setdefault(t.server, set()).add(t.name)
        assert by_server["inc"] == {"add", "echo"}  # no clash with 'exc': no prefixes
        assert {"add", "echo", "crash"}.isdisjoint(by_server["exc"])
        assert {"slow", "image", "pid"} <= by_server["exc"]
        spec_names = {spec["name"] for spec in (t.spec() for t in s.tools())}
        assert "crash" not in spec_names
    # an unknown name in exclude is only a warning
    assert "MCP server 'exc': exclude names tool(s) it does not have: 'no_such_tool'" in (
        caplog.text
    )


def test_include_of_an_unknown_tool_is_a_config_error_listing_the_tools() -> None:
    marker = f"inc-{os.getpid()}-{time.monotonic_ns()}"
    with pytest.raises(ConfigError, match=r"MCP server 'x': include names .*'ad'.*its tools: add,"):
        MCPServers({"x": stdio(marker, include=["ad", "echo"])})
    assert not running(f"\0--name\0{marker}\0")  # the server was stopped
    with pytest.raises(ConfigError, match="'include' or 'exclude', not both"):
        parse_config({"x": stdio("x", include=["add"], exclude=["echo"])})
