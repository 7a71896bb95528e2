"""MCP (Model Context Protocol) client: the tools of MCP servers as qwen_agent tools.

    from qwen_agent import Agent
    from qwen_agent.tools.mcp import MCPServers

    config = {"mcpServers": {
        "files": {"command": "npx",
                  "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "search": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ..."}},
    }}
    with MCPServers(config) as mcp:
        agent = Agent(llm=..., tools=[mcp, ...])
        print(agent.chat("Which files are in /tmp?").answer)

``config`` is the ``mcpServers`` object of Claude Desktop and Qwen-Agent, or the bare dict
inside it: a stdio server has ``command`` (and ``args``, ``env``, ``cwd``), a streamable-HTTP
server has ``url`` (and ``headers``); either may set ``timeout`` (seconds per call, default
30), ``startup_timeout`` (seconds to start and list the tools, default 30), ``include`` or
``exclude`` (lists of the server's own tool names), ``max_result_chars`` (default 20,000)
and ``max_binary_bytes`` (default 10 MiB). Needs the ``[mcp]`` extra (the ``mcp`` SDK, 2.x).

- Every server is started (stdio) or connected to (HTTP) when :class:`MCPServers` is made;
  one that cannot start within its ``startup_timeout`` (a server that never answers
  ``initialize`` included) raises :class:`MCPServerError` naming it, and nothing is left
  running.
- Errors (raised, or observations for the model and served clients) name the server only.
  Its command line or URL, the transport's error and the end of its stderr go to the
  host's log (logger ``qwen_agent.tools.mcp``), with secrets masked: URL userinfo and
  query values, values after flags like ``--token`` / ``--api-key``, token-like arguments,
  env and header values (:mod:`.redact`).
- ``include`` (only these tools) or ``exclude`` (all but these; not both) choose the tools
  the model sees, before they are listed to it (a server with many tools can fill a small
  model's window). A name in ``include`` that the server does not have is a
  :class:`~qwen_agent.errors.ConfigError` listing the server's tools (the model would lack
  a tool the user counted on); one in ``exclude`` is only a log warning.
- Tool names are the servers' own, made valid (``[A-Za-z0-9_-]``, what OpenAI allows; at
  most 64 characters); a name that two servers share becomes ``server__tool``
  (``prefix="always"``: every name).
- A call waits at most its server's ``timeout``. A server that dies or drops the
  connection during a call, or lets it time out, makes that call an error observation
  (an :class:`MCPServerError` naming the server and what happened; calls are never
  retried once sent); the next call restarts (stdio) or reconnects (HTTP) it, after a ping
  when the last call timed out. A stdio server found dead between calls is restarted
  before the next one, and a call an HTTP server turns away for an unknown session (it
  restarted) is made again on a new session.
- Text results are text, cut at the server's ``max_result_chars`` (all text items
  together) with a note saying how much there was; images (and audio, binary resources)
  are files in a temporary folder removed at close (pass ``image_dir`` to keep them), and
  those past ``max_binary_bytes`` (per result) are left out with a note; ``isError``
  results are error observations.
- On POSIX each stdio server runs under a small supervisor (:data:`.process.SUPERVISOR`),
  the leader of a process group of its own: it stops the whole group (SIGTERM, then
  SIGKILL after 2 s) when the server exits, when it is stopped, and on Linux when this
  process dies (``PR_SET_PDEATHSIG``), so workers a server starts do not outlive it.
  :meth:`MCPServers.close` (the ``with`` block, or :meth:`Agent.close`) stops every server
  and then what is left of its group; so does the end of the interpreter. The SDK runs on
  one event-loop thread owned by the object; each session lives in one long-lived task,
  and calls are tasks of their own.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any, Literal

from qwen_agent.errors import ConfigError, ToolCallError
from qwen_agent.messages import ToolResult
from qwen_agent.tool import Tool, Toolset

from .config import HTTPServer, MCPServerError, ServerConfig, StdioServer, parse_config
from .results import drop_titles, to_result, tool_names
from .session import STOP_TIMEOUT, Connection, Runtime, ping_timeout, preload

__all__ = [
    "MCPServers",
    "MCPTool",
    "MCPServerError",
    "StdioServer",
    "HTTPServer",
    "ServerConfig",
    "parse_config",
]


class MCPServers(Toolset):
    """The tools of one or more MCP servers (see the module docstring for ``config``).

    Args:
        config: ``{"mcpServers": {...}}`` or the dict inside it.
        prefix: ``"clash"``: ``server__tool`` only for names several servers share;
            ``"always"``: for every tool (use it when a local tool has the same name).
        image_dir: where images and other binary results are written (kept); default: a
            temporary folder removed at :meth:`close`.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        prefix: Literal["clash", "always"] = "clash",
        image_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if prefix not in ("clash", "always"):
            raise ConfigError(f"prefix must be 'clash' or 'always', got {prefix!r}")
        self.config = parse_config(config)
        self._runtime = Runtime(image_dir)
        self._finalizer = weakref.finalize(self, self._runtime.shutdown)
        self._tools: list[MCPTool] = []
        if not self.config:
            return
        _check_sdk()
        preload(self.config.values())
        rt = self._runtime
        rt.conns = {name: Connection(name, cfg) for name, cfg in self.config.items()}
        try:
            wait = max(c.startup_timeout for c in self.config.values()) + STOP_TIMEOUT + 5
            rt.run(rt.start_all(), wait)
            listing = {name: [t.name for t in c.listed] for name, c in rt.conns.items()}
            names = tool_names(listing, prefix)
            for name, conn in rt.conns.items():
                self._tools += [MCPTool(self, conn, t, names[name, t.name]) for t in conn.listed]
        except BaseException:
            self.close()
            raise

    def tools(self) -> list[Tool]:
        return list(self._tools)

    @property
    def pids(self) -> dict[str, int | None]:
        """The process id of each stdio server now (None: HTTP, or not known)."""
        return {name: c.pid for name, c in self._runtime.conns.items()}

    def close(self) -> None:
        """Stop every stdio server process and close every HTTP session; safe to call twice."""
        self._finalizer()

    def __enter__(self) -> MCPServers:
        return self

    def __repr__(self) -> str:
        return f"<MCPServers {', '.join(self.config) or 'none'}>"


def _check_sdk() -> None:
    """ConfigError unless the ``mcp`` SDK 2.x (the ``[mcp]`` extra) is installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("mcp")
    except PackageNotFoundError:
        found = None
    if found is None or not found.split(".")[0].isdigit() or int(found.split(".")[0]) < 2:
        have = f"mcp {found} is installed" if found else "mcp is missing"
        raise ConfigError(
            f"MCP servers need the [mcp] extra, the mcp SDK 2.x ({have}): "
            "pip install 'qwen-agent-kit[mcp]'"
        )


class MCPTool(Tool):
    """One tool of an MCP server; ``server`` and ``remote_name`` say which."""

    def __init__(self, owner: MCPServers, conn: Connection, remote: Any, name: str) -> None:
        self.name = name
        self.description = remote.description or remote.title or ""
        self.parameters = drop_titles({"type": "object", **(remote.input_schema or {})})
        self.server = conn.name
        self.remote_name = remote.name
        self._owner = owner  # the servers live while one of their tools does
        self._conn = conn
        cfg = conn.config
        # the agent's limit: a restart (stop + start) and the call itself fit in it
        self.timeout = cfg.timeout + cfg.startup_timeout + ping_timeout(cfg) + STOP_TIMEOUT + 2
        super().__init__()

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate(arguments)
        except ToolCallError:
            raise
        except Exception:  # a schema jsonschema cannot use: the server checks the arguments
            return arguments

    def call(self, **arguments: Any) -> ToolResult:
        rt = self._owner._runtime
        result = rt.run(self._conn.call(self.remote_name, arguments), self.timeout + 5)
        return to_result(result, self.name, rt.files, self._conn.config)
