"""MCP server configuration: the ``mcpServers`` object of Claude Desktop and Qwen-Agent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qwen_agent.errors import ConfigError, ToolError

from .redact import Redactor

__all__ = ["MCPServerError", "StdioServer", "HTTPServer", "ServerConfig", "parse_config"]


class MCPServerError(ToolError):
    """An MCP server could not start or be reached, died, refused a call or did not answer
    in time. ``server`` is its name in the config. The message names only the server (it
    may reach the model and served clients); the details are in the host's log."""

    def __init__(self, message: str, server: str = "") -> None:
        super().__init__(message)
        self.server = server


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: seconds one tool call may take
    timeout: float = Field(30.0, gt=0)
    #: seconds to start (or connect to) the server and list its tools
    startup_timeout: float = Field(30.0, gt=0)
    #: only these tools (the server's own names) are offered to the model
    include: list[str] | None = Field(None, min_length=1)
    #: these tools (the server's own names) are not offered to the model
    exclude: list[str] = Field(default_factory=list)
    #: characters of text one result may hand the model; the rest is cut, with a note
    max_result_chars: int = Field(20_000, gt=0)
    #: bytes of images, audio and blobs one result may keep; larger items become a note
    max_binary_bytes: int = Field(10 * 2**20, gt=0)

    @model_validator(mode="after")
    def _include_or_exclude(self) -> _Server:
        if self.include is not None and self.exclude:
            raise ValueError("give 'include' or 'exclude', not both")
        return self

    def redactor(self) -> Redactor:
        raise NotImplementedError

    def describe(self) -> str:
        """The command line or URL, for the host's log: secrets masked."""
        return self.redactor().describe()


class StdioServer(_Server):
    """A server run as a subprocess, speaking MCP on its stdin and stdout. ``env`` is set
    over a minimal inherited environment (HOME, PATH, ...: the SDK's rule)."""

    type: Literal["stdio"] = "stdio"
    command: str = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None

    def redactor(self) -> Redactor:
        return Redactor(command=self.command, args=self.args, env=self.env)


class HTTPServer(_Server):
    """A server reached over MCP's streamable-HTTP transport at ``url``."""

    type: Literal["streamable-http", "streamable_http", "streamableHttp", "http"] = (
        "streamable-http"
    )
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)

    def redactor(self) -> Redactor:
        return Redactor(url=self.url, headers=self.headers)


#: one server's configuration
ServerConfig = StdioServer | HTTPServer


def parse_config(config: Mapping[str, Any]) -> dict[str, ServerConfig]:
    """Validate ``{"mcpServers": {name: server}}`` or ``{name: server}``; ConfigError
    naming the server and the problem otherwise. Starts nothing."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"MCP config must be a dict of servers, got {type(config).__name__}")
    if "mcpServers" in config:
        extra = sorted(str(k) for k in config if k != "mcpServers")
        if extra:
            raise ConfigError(f"unknown key(s) next to 'mcpServers': {', '.join(extra)}")
        config = config["mcpServers"]
        if not isinstance(config, Mapping):
            raise ConfigError(f"'mcpServers' must be a dict, got {type(config).__name__}")
    return {_check_server_name(name): _parse_server(name, entry) for name, entry in config.items()}


def _check_server_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"MCP server names must be non-empty strings, got {name!r}")
    return name


def _parse_server(name: str, entry: Any) -> ServerConfig:
    if isinstance(entry, (StdioServer, HTTPServer)):
        return entry
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"MCP server {name!r}: expected a dict like {{'command': ..., 'args': [...]}} or "
            f"{{'url': ...}}, got {type(entry).__name__}"
        )
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        what = "both 'command' and 'url'" if has_command else "neither 'command' nor 'url'"
        raise ConfigError(
            f"MCP server {name!r} has {what}: give 'command' (and 'args', 'env', 'cwd') for a "
            "stdio server, or 'url' (and 'headers') for a streamable-HTTP server"
        )
    if entry.get("type") == "sse":
        raise ConfigError(
            f"MCP server {name!r}: the SSE transport is not supported (MCP deprecated it); "
            "use the server's streamable-HTTP endpoint"
        )
    try:
        return (StdioServer if has_command else HTTPServer).model_validate(dict(entry))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"MCP server {name!r}: {problems}") from None
