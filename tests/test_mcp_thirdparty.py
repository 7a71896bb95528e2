"""The MCP client against real third-party MCP servers, run as their users run them:

- ``@modelcontextprotocol/server-filesystem`` (npm) over stdio, with ``node`` and with
  ``npx`` (the config users copy from its README);
- ``@modelcontextprotocol/server-everything`` (npm), the reference server that exercises
  the protocol (dashed tool names, images, embedded and linked resources, structured
  content, long-running calls, log notifications), over stdio and streamable HTTP;
- ``mcp-server-time`` (PyPI, Python) over stdio.

Versions are pinned below; a compatibility claim names the version it was tested against.
The npm servers are installed once into ``~/.cache/qwen-agent-tests/mcp-npm`` (``npm
install``, at most 180 s), ``mcp-server-time`` (unless installed) into
``~/.cache/qwen-agent-tests/mcp-pypi`` (``pip install --target --no-deps``, at most 180 s;
it runs on this environment's ``mcp``). Without node/npm, or when an install fails, the
tests that need it skip, saying why; ``QWEN_REQUIRE_MCP_SERVERS=1`` (CI) makes that a
failure. ``QWEN_AGENT_TEST_CACHE`` moves the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import importlib.util
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from importlib.metadata import PathDistribution, version
from pathlib import Path
from typing import Any

import pytest

from tests.net import listening_on

pytest.importorskip("mcp")
if not sys.platform.startswith("linux"):  # processes are checked through /proc
    pytest.skip("the third-party MCP server tests need Linux", allow_module_level=True)

from qwen_agent import Agent  # noqa: E402
from qwen_agent.errors import ConfigError  # noqa: E402
from qwen_agent.messages import FileItem, ImageItem  # noqa: E402
from qwen_agent.testing import ScriptedLLM  # noqa: E402
from qwen_agent.tools.mcp import MCPServerError, MCPServers  # noqa: E402

pytestmark = pytest.mark.timeout(240)  # the first run installs the servers

NPM_PACKAGES = {
    "@modelcontextprotocol/server-filesystem": "2026.8.31",
    "@modelcontextprotocol/server-everything": "2026.8.31",
}
TIME_SERVER = "mcp-server-time==2026.10.19"
INSTALL_TIMEOUT = 180
CACHE = Path(os.environ.get("QWEN_AGENT_TEST_CACHE") or Path.home() / ".cache/qwen-agent-tests")
REQUIRED = os.environ.get("QWEN_REQUIRE_MCP_SERVERS") == "1"


def unavailable(why: str) -> None:
    if REQUIRED:
        pytest.fail(f"{why} (QWEN_REQUIRE_MCP_SERVERS=1)")
    pytest.skip(why)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One installer at a time (parallel test runs share the cache)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def install(cmd: list[str], what: str) -> None:
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        unavailable(f"installing {what} took over {INSTALL_TIMEOUT} s")
    if out.returncode != 0:
        unavailable(f"installing {what} failed: {(out.stderr or out.stdout)[-600:]}")


# -- the servers --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def npm_dir() -> Path:
    """A folder whose node_modules holds the pinned npm servers (installed on first use)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed to run the npm MCP servers")
    root = CACHE / "mcp-npm"

    def ready() -> bool:
        for pkg, want in NPM_PACKAGES.items():
            meta = root / "node_modules" / pkg / "package.json"
            if not meta.is_file() or json.loads(meta.read_text()).get("version") != want:
                return False
        return True

    with locked(root):
        if not ready():
            specs = [f"{pkg}@{v}" for pkg, v in NPM_PACKAGES.items()]
            npm_args = ["install", "--prefix", str(root), "--no-audit", "--no-fund", *specs]
            install([npm, *npm_args, "--loglevel=error"], " and ".join(specs))
            if not ready():
                unavailable(f"npm install did not leave {', '.join(specs)} in {root}")
    return root


def npm_bin(npm_dir: Path, pkg: str) -> str:
    meta = json.loads((npm_dir / "node_modules" / pkg / "package.json").read_text())
    bins = meta["bin"] if isinstance(meta["bin"], str) else next(iter(meta["bin"].values()))
    return str(npm_dir / "node_modules" / pkg / bins)


@pytest.fixture(scope="session")
def time_config() -> dict[str, Any]:
    """The stdio config of mcp-server-time: installed here, or pip-installed into the cache
    with --no-deps, on this environment's mcp (whose version its requirement must allow)."""
    from packaging.requirements import Requirement

    command = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    if importlib.util.find_spec("mcp_server_time") is not None:
        return command
    target = CACHE / "mcp-pypi" / TIME_SERVER.replace("==", "-")
    with locked(target.parent):
        if not (target / "mcp_server_time").is_dir():
            tmp = target.with_name(target.name + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            pip += ["--no-deps", "--target", str(tmp), TIME_SERVER, "tzlocal", "tzdata"]
            install(pip, TIME_SERVER)
            tmp.rename(target)
    (info,) = target.glob("mcp_server_time-*.dist-info")
    for line in PathDistribution(info).requires or []:
        req = Requirement(line)
        if req.name == "mcp" and not req.specifier.contains(version("mcp")):
            unavailable(f"{TIME_SERVER} needs {req}, this environment has mcp {version('mcp')}")
    return {**command, "env": {"PYTHONPATH": str(target)}}


# -- processes ----------------------------------------------------------------------------
def descendants() -> dict[int, str]:
    """This process's live descendants: pid -> command line (from /proc)."""
    parent: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                state, ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                if state not in ("Z", "X"):
                    parent[int(proc.name)] = int(ppid)
    found, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in found:
                with contextlib.suppress(OSError):
                    cmd = (Path("/proc") / str(child) / "cmdline").read_bytes()
                    found[child] = cmd.replace(b"\0", b" ").decode(errors="replace").strip()
                todo.append(child)
    return found


@contextlib.contextmanager
def reaped_servers(config: dict[str, Any], **kwargs: Any) -> Iterator[MCPServers]:
    """MCPServers(config); after close, every process it started (its children's children
    too: node under npx) is gone within 5 s."""
    before = set(descendants())
    servers = MCPServers(config, **kwargs)
    try:
        yield servers
    finally:
        t0 = time.monotonic()
        servers.close()
        closed_in = time.monotonic() - t0
        left: dict[int, str] = {}
        while time.monotonic() - t0 < 5:
            left = {p: c for p, c in descendants().items() if p not in before}
            if not left:
                break
            time.sleep(0.05)
    assert not left, f"processes left after close(): {left}"
    assert closed_in < 5, f"close() took {closed_in:.1f} s"


def by_name(servers: MCPServers) -> dict[str, Any]:
    return {t.name: t for t in servers.tools()}


def through_agent(servers: MCPServers, call: dict[str, Any], answer: str) -> tuple[Any, str]:
    """One model turn that calls a tool (hermes text, as Qwen writes it), then the answer:
    the tool message the agent made, and the tools the model was offered."""
    llm = ScriptedLLM([f"<tool_call>\n{json.dumps(call)}\n</tool_call>", answer])
    # the tools, not the toolset: the agent does not close the fixture's servers
    with Agent(llm=llm, tools=servers.tools()) as agent:
        reply, messages = agent.chat("Please use a tool.")
    assert reply == answer
    (observation,) = [m for m in messages if m.role == "tool"]
    assert observation.name == call["name"]
    return observation, {t.name: t for t in llm.requests[0].tools}


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" + b"\x00\xff\x00" * 2 + b"\x00" + b"\x00\x00\xff" * 2)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def wav_bytes() -> bytes:
    samples = b"\x00\x00" * 80
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- server-filesystem --------------------------------------------------------------------
@pytest.fixture(scope="module")
def fs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fs-allowed").resolve()


@pytest.fixture(scope="module")
def filesystem(npm_dir: Path, fs_root: Path) -> Iterator[MCPServers]:
    entry = npm_bin(npm_dir, "@modelcontextprotocol/server-filesystem")
    cfg = {"command": "node", "args": [entry, str(fs_root)], "timeout": 10}
    with reaped_servers({"files": cfg}) as servers:
        pid = servers.pids["files"]
        assert pid in descendants() and "server-filesystem" in descendants()[pid]
        yield servers


def test_filesystem_lists_tools_with_their_schemas(filesystem: MCPServers) -> None:
    tools = by_name(filesystem)
    assert {"read_text_file", "write_file", "list_directory", "read_media_file"} <= set(tools)
    write = tools["write_file"]
    assert write.remote_name == "write_file" and write.server == "files" and write.description
    assert write.parameters["type"] == "object"
    assert write.parameters["properties"] == {
        "path": {"type": "string"},
        "content": {"type": "string"},
    }
    assert write.parameters["required"] == ["path", "content"]
    # nested schemas come through whole
    edits = tools["edit_file"].parameters["properties"]["edits"]
    assert edits["type"] == "array" and edits["items"]["required"] == ["oldText", "newText"]
    assert tools["read_text_file"].parameters["properties"]["head"]["type"] == "number"
    assert tools["list_allowed_directories"].parameters["properties"] == {}


def test_filesystem_write_read_list(filesystem: MCPServers, fs_root: Path) -> None:
    tools = by_name(filesystem)
    sub = fs_root / "notes"
    assert not tools["create_directory"].call(path=str(sub)).is_error
    result = tools["write_file"].call(path=str(sub / "a.txt"), content="héllo\nworld\n")
    assert not result.is_error and "a.txt" in result.text
    assert (sub / "a.txt").read_text() == "héllo\nworld\n"
    assert tools["read_text_file"].call(path=str(sub / "a.txt")).text == "héllo\nworld\n"
    args = tools["read_text_file"].validate({"path": str(sub / "a.txt"), "head": 1})
    assert tools["read_text_file"].call(**args).text == "héllo"
    assert tools["list_directory"].call(path=str(sub)).text == "[FILE] a.txt"
    assert "[DIR] notes" in tools["list_directory"].call(path=str(fs_root)).text.splitlines()
    assert str(fs_root) in tools["list_allowed_directories"].call().text


def test_filesystem_outside_the_allowed_dir_is_an_error_observation(
    filesystem: MCPServers, fs_root: Path, tmp_path: Path
) -> None:
    tools = by_name(filesystem)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    for path in (secret, fs_root / ".." / tmp_path.name / "secret.txt"):
        result = tools["read_text_file"].call(path=str(path))
        assert result.is_error and "do not read" not in result.text
        assert "Access denied" in result.text and "read_text_file" in result.text
    result = tools["write_file"].call(path=str(tmp_path / "new.txt"), content="x")
    assert result.is_error and "Access denied" in result.text
    assert not (tmp_path / "new.txt").exists()
    # through an agent: an observation the model reads, not an exception
    call = {"name": "read_text_file", "arguments": {"path": str(secret)}}
    observation, offered = through_agent(filesystem, call, "I may not read that file.")
    assert "Access denied" in observation.text and "do not read" not in observation.text
    assert offered["read_text_file"].parameters == tools["read_text_file"].parameters


def test_filesystem_media_files(filesystem: MCPServers, fs_root: Path) -> None:
    tools = by_name(filesystem)
    (fs_root / "dot.png").write_bytes(png_bytes())
    (fs_root / "beep.wav").write_bytes(wav_bytes())
    (item,) = tools["read_media_file"].call(path=str(fs_root / "dot.png")).content
    assert isinstance(item, ImageItem) and Path(item.image).read_bytes() == png_bytes()
    (audio,) = tools["read_media_file"].call(path=str(fs_root / "beep.wav")).content
    assert isinstance(audio, FileItem) and Path(audio.file).read_bytes() == wav_bytes()
    assert audio.file.endswith(".wav")  # audio/wav: not in Python 3.11's mimetypes


def test_filesystem_through_npx_and_close_stops_the_whole_tree(
    npm_dir: Path, tmp_path: Path
) -> None:
    """The README's config (npx -y ...): npm, sh and node all stop at close()."""
    # --offline: the package comes from npm_dir's node_modules (cwd), never the network
    args = ["--offline", "-y", "@modelcontextprotocol/server-filesystem", str(tmp_path)]
    cfg = {"command": "npx", "args": args, "cwd": str(npm_dir), "timeout": 10}
    (tmp_path / "x.txt").write_text("x")
    with reaped_servers({"files": cfg}) as servers:
        tree = " | ".join(descendants().values())
        assert "server-filesystem" in tree and "npm" in tree, tree
        assert by_name(servers)["list_directory"].call(path=str(tmp_path)).text == "[FILE] x.txt"


def test_filesystem_include_offers_the_model_only_the_chosen_tools(
    npm_dir: Path, fs_root: Path, filesystem: MCPServers
) -> None:
    """Its 14 tools fill a small model's window: ``include`` keeps the few it needs."""
    entry = npm_bin(npm_dir, "@modelcontextprotocol/server-filesystem")
    chosen = ["read_text_file", "list_directory"]
    cfg = {"command": "node", "args": [entry, str(fs_root)], "include": chosen}
    with reaped_servers({"files": cfg}) as servers:
        call = {"name": "list_directory", "arguments": {"path": str(fs_root)}}
        observation, offered = through_agent(servers, call, "Listed.")
        assert sorted(offered) == sorted(chosen)
        assert not observation.text.startswith("Error"), observation.text

    def size(tools: list[Any]) -> int:
        return len(json.dumps([t.spec() for t in tools]))

    assert size(servers.tools()) * 4 < size(filesystem.tools())
    before = set(descendants())
    with pytest.raises(ConfigError, match=r"include names .*'raed_file'.*its tools: .*read_text"):
        MCPServers({"files": {**cfg, "include": ["raed_file"]}})
    deadline = time.monotonic() + 5
    while set(descendants()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(descendants()) - before  # the server was stopped


# -- server-everything --------------------------------------------------------------------
EVERYTHING = "@modelcontextprotocol/server-everything"


@pytest.fixture(scope="module")
def everything(npm_dir: Path) -> Iterator[MCPServers]:
    cfg = {"command": "node", "args": [npm_bin(npm_dir, EVERYTHING), "stdio"], "timeout": 3}
    with reaped_servers({"everything": cfg}) as servers:
        yield servers


def check_everything_tools(servers: MCPServers) -> None:
    tools = by_name(servers)
    dashed = {"get-sum", "get-tiny-image", "get-structured-content", "get-resource-links"}
    assert dashed | {"echo", "trigger-long-running-operation"} <= set(tools)
    assert all(tools[n].remote_name == n for n in dashed)  # dashes are valid: kept
    # it must run as an MCP task, which the client cannot do: not offered to the model
    assert "simulate-research-query" not in tools
    params = tools["get-sum"].parameters
    assert params["required"] == ["a", "b"]
    assert params["properties"]["a"] == {"type": "number", "description": "First number"}
    assert tools["get-structured-content"].parameters["properties"]["location"]["enum"] == [
        "New York",
        "Chicago",
        "Los Angeles",
    ]


def check_everything_calls(servers: MCPServers) -> None:
    tools = by_name(servers)
    assert tools["echo"].call(message="héllo <b>").text == "Echo: héllo <b>"
    assert tools["get-sum"].call(**tools["get-sum"].validate({"a": 2, "b": 3.5})).text == (
        "The sum of 2 and 3.5 is 5.5."
    )
    images = [i for i in tools["get-tiny-image"].call().content if isinstance(i, ImageItem)]
    assert len(images) == 1 and Path(images[0].image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    weather = json.loads(tools["get-structured-content"].call(location="Chicago").text)
    assert {"temperature", "conditions", "humidity"} <= set(weather)
    links = tools["get-resource-links"].call(count=2).text
    assert links.count("demo://resource/") == 2, links


def check_timeout_then_working_call(servers: MCPServers, name: str) -> None:
    tools = by_name(servers)
    long_op = tools["trigger-long-running-operation"]
    pid = servers.pids[name]
    t0 = time.monotonic()
    with pytest.raises(MCPServerError, match=rf"MCP server '{name}' did not answer the call to "):
        long_op.call(duration=30, steps=3)
    assert 2.5 < time.monotonic() - t0 < 6
    assert tools["echo"].call(message="still here").text == "Echo: still here"
    assert servers.pids[name] == pid  # it answered the ping: kept, not restarted
    assert long_op.call(duration=0.5, steps=2).text.startswith("Long running operation completed")


def test_everything_lists_tools_with_dashed_names_and_schemas(everything: MCPServers) -> None:
    check_everything_tools(everything)


def test_everything_content_types(everything: MCPServers) -> None:
    check_everything_calls(everything)
    tools = by_name(everything)
    text_ref = tools["get-resource-reference"].call(resourceType="Text", resourceId=1)
    assert "This is a plaintext resource" in text_ref.text
    blob_ref = tools["get-resource-reference"].call(resourceType="Blob", resourceId=2).content
    (blob,) = [i for i in blob_ref if isinstance(i, FileItem)]
    assert Path(blob.file).is_file() and blob.name == "demo://resource/dynamic/blob/2"
    # an embedded binary resource, made from a data: URI (no network)
    data = "data:text/plain;base64,aGVsbG8gbWNw"
    gz = tools["gzip-file-as-resource"].call(name="h.gz", data=data, outputType="resource")
    (item,) = gz.content
    assert isinstance(item, FileItem) and gzip.decompress(Path(item.file).read_bytes()) == (
        b"hello mcp"
    )
    linked = tools["gzip-file-as-resource"].call(name="l.gz", data=data)  # a resource link
    assert "demo://resource/session/l.gz" in linked.text
    annotated = tools["get-annotated-message"].call(messageType="error", includeImage=True)
    assert not annotated.is_error and any(isinstance(i, ImageItem) for i in annotated.content)


def test_everything_timeout_then_a_working_call(everything: MCPServers) -> None:
    check_timeout_then_working_call(everything, "everything")


def test_everything_log_notifications_keep_the_session(everything: MCPServers) -> None:
    tools = by_name(everything)
    toggle = tools["toggle-simulated-logging"]
    assert "Started" in toggle.call().text  # sends a log message now, then every 5 s
    assert tools["echo"].call(message="after logs").text == "Echo: after logs"
    assert "Stopped" in toggle.call().text


def test_everything_through_agent(everything: MCPServers) -> None:
    call = {"name": "get-sum", "arguments": {"a": 2, "b": 3}}
    observation, offered = through_agent(everything, call, "2 + 3 = 5.")
    assert observation.text == "The sum of 2 and 3 is 5."
    assert offered["get-sum"].parameters == by_name(everything)["get-sum"].parameters


# -- server-everything over streamable HTTP -----------------------------------------------
# The server listens on every interface (app.listen(PORT), no host option): a preload
# makes it bind 127.0.0.1 only, and the test checks that it did.
LOOPBACK_ONLY = """
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "object" && args[0] !== null && !(args[0] instanceof net.Server)) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  } else if (typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
"""


@pytest.fixture(scope="module")
def everything_http(npm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("everything-http")
    preload = folder / "loopback-only.cjs"
    preload.write_text(LOOPBACK_ONLY)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(folder / "server.log", "wb")  # closed below
    cmd = ["node", "--require", str(preload), npm_bin(npm_dir, EVERYTHING), "streamableHttp"]
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not listening_on(port):
            assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "server-everything did not listen within 30 s"
            time.sleep(0.05)
        assert listening_on(port) == {"0100007F"}, "it must listen on 127.0.0.1 only"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait(10)
        log.close()


@pytest.mark.network
def test_everything_over_http(everything_http: str) -> None:
    cfg = {"url": everything_http, "timeout": 3}
    with reaped_servers({"mcpServers": {"web": cfg}}) as servers:
        assert servers.pids == {"web": None}
        check_everything_tools(servers)
        check_everything_calls(servers)
        check_timeout_then_working_call(servers, "web")
        call = {"name": "get-sum", "arguments": {"a": 20, "b": 22}}
        observation, _ = through_agent(servers, call, "42.")
        assert observation.text == "The sum of 20 and 22 is 42."


# -- mcp-server-time (PyPI) ---------------------------------------------------------------
def test_time_server(time_config: dict[str, Any]) -> None:
    with reaped_servers({"time": {**time_config, "timeout": 10}}) as servers:
        tools = by_name(servers)
        assert {"get_current_time", "convert_time"} <= set(tools)
        params = tools["get_current_time"].parameters
        assert params["required"] == ["timezone"] and params["properties"]["timezone"]["type"] == (
            "string"
        )
        assert "title" not in json.dumps(params)  # pydantic's titles are dropped
        assert tools["convert_time"].parameters["required"] == [
            "source_timezone",
            "time",
            "target_timezone",
        ]
        now = json.loads(tools["get_current_time"].call(timezone="Asia/Tokyo").text)
        assert now["timezone"] == "Asia/Tokyo" and now["datetime"].endswith("+09:00")
        converted = tools["convert_time"].call(
            source_timezone="Etc/UTC", time="12:00", target_timezone="Asia/Kolkata"
        )
        target = json.loads(converted.text)["target"]
        assert target["datetime"].endswith("T17:30:00+05:30")
        bad = tools["get_current_time"].call(timezone="Mars/Olympus_Mons")
        assert bad.is_error and "Invalid timezone" in bad.text
        call = {"name": "get_current_time", "arguments": {"timezone": "Europe/Paris"}}
        observation, offered = through_agent(servers, call, "It is evening in Paris.")
        assert json.loads(observation.text)["timezone"] == "Europe/Paris"
        assert offered["get_current_time"].parameters == params
