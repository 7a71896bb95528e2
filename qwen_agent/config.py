"""AgentConfig: the one typed agent configuration (``qwen-agent chat --config``, ``serve``).

A TOML or JSON file holds ``name``, ``llm`` (an :class:`~qwen_agent.llm.LLMConfig` table),
``tools`` (``"module:attr"``, ``"file.py:attr"``, registered names, or tables of a name and
the tool's options), ``tool_options`` (options by tool name), ``mcp_servers`` (Model Context
Protocol servers, written as Claude Desktop's ``mcpServers``), ``format``, ``instructions``
and ``max_steps``::

    name = "helper"
    instructions = "Answer briefly."
    tools = [
        "examples/tools.py:multiply",
        "code_interpreter",
        "image_gen",
        { name = "retrieval", files = ["docs/"] },
    ]
    [tool_options.image_gen]
    model = "/models/sd-turbo"
    [mcp_servers.files]
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/shared"]
    [llm]
    base_url = "http://127.0.0.1:8000/v1"
    model = "Qwen/Qwen2.5-7B-Instruct"
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from qwen_agent.errors import ConfigError
from qwen_agent.llm import ChatModel, GenerationConfig, LLMConfig

if TYPE_CHECKING:
    from qwen_agent.agent import Agent

__all__ = ["AgentConfig", "load_tool", "tool_name"]


class AgentConfig(BaseModel):
    """Everything that makes an agent, as data."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="agent", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: None: the model it is served with (``serve``) or the bundled model (``chat``)
    llm: LLMConfig | None = None
    #: tool specs: ``"module:attr"``, ``"file.py:attr"``, a registered name, or
    #: ``{"name": ..., **options}`` (the options go to the tool class's constructor)
    tools: list[str | dict[str, Any]] = Field(default_factory=list)
    #: constructor options by tool name, for tools listed by name
    tool_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: MCP servers by name: ``{"command", "args", "env"}`` (stdio) or ``{"url"}`` (HTTP)
    mcp_servers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, validation_alias=AliasChoices("mcp_servers", "mcpServers")
    )
    format: str = "hermes"
    instructions: str = ""
    max_steps: int = Field(default=8, ge=1, le=100)
    #: Qwen3's thinking switch; None: the model's default
    thinking: bool | None = None
    #: one line saying what the agent does (shown to its users, not to the model)
    description: str = Field(default="", max_length=1000)
    #: example requests offered to users as buttons
    conversation_starters: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list,
        max_length=8,
        validation_alias=AliasChoices("conversation_starters", "starters"),
    )
    #: the first message users see (not sent to the model)
    welcome_message: str = Field(default="", max_length=2000)
    #: an image file shown beside the agent's messages
    avatar: str | None = None
    #: files or folders the agent searches with the ``retrieval`` tool
    knowledge: list[str] = Field(default_factory=list, max_length=200)
    #: the config's revision, counted up by the store that keeps it (AgentFabric)
    version: int = Field(default=1, ge=1)

    @classmethod
    def load(cls, path: str | Path) -> AgentConfig:
        """Read a TOML or JSON file; its ``name`` defaults to the file's stem."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            if path.suffix == ".json":
                data = json.loads(raw)
            else:
                import tomllib

                data = tomllib.loads(raw.decode())
        except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ConfigError(f"config file {path} is not valid: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path} must hold a table/object at the top")
        data.setdefault("name", path.stem)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            unknown = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
            if unknown:
                raise ConfigError(f"config file {path}: unknown keys {sorted(unknown)}") from None
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise ConfigError(f"config file {path}: {problems}") from None

    def build(
        self,
        llm: ChatModel | None = None,
        session_id: str | None = None,
        generation: GenerationConfig | None = None,
        mcp: Any = None,
        shared: SharedTools | None = None,
    ) -> Agent:
        """An :class:`~qwen_agent.agent.Agent`. ``llm`` overrides ``self.llm``; a tool class
        that keeps per-conversation state (takes ``session_id``, as the code interpreter
        does) is made for ``session_id``. ``mcp``: an open toolset for ``mcp_servers`` to
        share (a server keeps one for all its conversations); else one is started, and
        ``agent.close()`` stops it. ``shared``: where the other tools are made once and
        lent to every agent built with it (a retrieval index is not re-scanned per
        request); ``shared.close()`` releases them."""
        from qwen_agent.agent import Agent

        tools = []
        for i, spec in enumerate(self.tool_specs()):
            if shared is not None and not self.per_conversation(spec):
                tools.append(shared.lend(i, lambda spec=spec: self.make_tool(spec)))
            else:
                tools.append(self.make_tool(spec, session_id))
        if self.mcp_servers:
            tools.append(mcp.borrowed() if mcp is not None else self.open_mcp())
        return Agent(
            llm=llm if llm is not None else (self.llm or LLMConfig()),
            tools=tools,
            instructions=self.instructions,
            format=self.format,
            max_steps=self.max_steps,
            generation=generation,
            thinking=self.thinking,
        )

    def tool_specs(self) -> list[str | dict[str, Any]]:
        """``tools`` with ``knowledge`` given to the ``retrieval`` tool: added to a listed
        one's files, or as a new entry when none is listed."""
        if not self.knowledge:
            return list(self.tools)
        specs: list[str | dict[str, Any]] = []
        merged = False
        for spec in self.tools:
            name = tool_name(spec)
            if name == "retrieval" and not merged:
                table = dict(spec) if isinstance(spec, dict) else {"name": "retrieval"}
                files = table.get("files") or self.tool_options.get("retrieval", {}).get("files")
                files = [files] if isinstance(files, str) else list(files or [])
                table["files"] = [*files, *self.knowledge]
                spec, merged = table, True
            specs.append(spec)
        if not merged:
            specs.append({"name": "retrieval", "files": list(self.knowledge)})
        return specs

    @field_validator("mcp_servers")
    @classmethod
    def _servers_are_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if value:  # checked when the config is read; nothing starts (pydantic only)
            from qwen_agent.tools.mcp.config import parse_config

            parse_config(value)
        return value

    def open_mcp(self) -> Any:
        """Start the ``mcp_servers`` (an :class:`~qwen_agent.tools.mcp.MCPServers`)."""
        from qwen_agent.tools.mcp import MCPServers

        return MCPServers(self.mcp_servers)

    @staticmethod
    def per_conversation(spec: str | dict[str, Any]) -> bool:
        """Whether the tool ``spec`` names keeps state per conversation: a Tool class that
        takes ``session_id`` (the code interpreter, image_gen)."""
        from qwen_agent.tool import TOOLS, Tool

        name = tool_name(spec)
        if not isinstance(name, str):
            return True
        target = load_tool(name)
        target = TOOLS.get(target) if isinstance(target, str) else target
        return (
            isinstance(target, type)
            and issubclass(target, Tool)
            and "session_id" in inspect.signature(target).parameters
        )

    def make_tool(self, spec: str | dict[str, Any], session_id: str | None = None) -> Any:
        """The tool one entry of ``tools`` names, made with its options."""
        if isinstance(spec, dict):
            options = dict(spec)
            name = options.pop("name", None)
            if not isinstance(name, str) or not name:
                raise ConfigError(f"a tool table needs a 'name', got {spec!r:.200}")
        else:
            name, options = spec, {}
        options = {**self.tool_options.get(name, {}), **options}
        return _instance(load_tool(name), session_id, options, name)


def _instance(
    obj: Any, session_id: str | None, options: dict[str, Any] | None = None, name: str = ""
) -> Any:
    from qwen_agent.tool import TOOLS, Tool

    options = dict(options or {})
    target = TOOLS.get(obj) if isinstance(obj, str) else obj
    if isinstance(target, type) and issubclass(target, Tool):
        params = inspect.signature(target).parameters
        if session_id is not None and "session_id" in params:
            options.setdefault("session_id", session_id)
        unknown = sorted(set(options) - set(params))
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            known = sorted(k for k in params if k != "self")
            raise ConfigError(
                f"tool {name or target.__name__!r} has no option(s) {unknown}; its options: {known}"
            )
        try:
            return target(**options)
        except TypeError as exc:
            raise ConfigError(f"tool {name or target.__name__!r}: {exc}") from None
    if options:
        raise ConfigError(
            f"tool {name!r} is not a Tool class, so it takes no options (got {sorted(options)})"
        )
    return target


def tool_name(spec: Any) -> Any:
    """The name one entry of ``AgentConfig.tools`` names (a string, or a table's ``name``)."""
    return spec.get("name") if isinstance(spec, dict) else spec


def load_tool(spec: str) -> Any:
    """The tool ``spec`` names: ``"module:attr"``, ``"path/file.py:attr"`` or a registered
    tool name (returned as is)."""
    from qwen_agent.tool import TOOLS

    if ":" not in spec:
        if spec in TOOLS:
            return spec
        raise ConfigError(
            f"tool {spec!r}: give MODULE:ATTR, FILE.py:ATTR or a registered tool name "
            f"({', '.join(sorted(TOOLS.names()))})"
        )
    module_name, _, attr = spec.rpartition(":")
    if module_name.endswith(".py"):
        module = _import_file(spec, Path(module_name))
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`: tools next to you import
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"tool {spec!r}: cannot import {module_name!r}: {exc}") from None
        except BaseException as exc:  # the user's module failed, or called sys.exit()
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise ConfigError(f"tool {spec!r}: importing {module_name!r} {_failed(exc)}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"tool {spec!r}: {module_name!r} has no {attr!r}") from None


def _import_file(spec: str, path: Path) -> Any:
    import importlib.util

    if not path.is_file():
        raise ConfigError(f"tool {spec!r}: no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"_qwen_agent_tools_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"tool {spec!r}: cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module  # dataclasses and pickling look modules up here
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:  # the user's file failed (or exited): say so, no traceback
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(module_spec.name, None)
        raise ConfigError(f"tool {spec!r}: running {path.name} {_failed(exc)}") from None
    return module


def _failed(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}); a tool module must not exit"
    return f"failed: {type(exc).__name__}: {exc}"


class SharedTools:
    """The tools of one agent config that keep no conversation state, made once and lent to
    every conversation's agent (as a server runs them); :meth:`close` releases them."""

    def __init__(self) -> None:
        self._tools: dict[int, Any] = {}
        self._lock = threading.Lock()

    def lend(self, key: int, make: Any) -> Any:
        """The tool under ``key`` (made by ``make()`` the first time), as a toolset an
        agent may close without closing the tool."""
        from qwen_agent.tool import Toolset, as_tool

        with self._lock:
            if key not in self._tools:
                self._tools[key] = as_tool(make())
            tool = self._tools[key]

        class _Lent(Toolset):
            def tools(self) -> list[Any]:
                return [tool]

        return _Lent()

    def close(self) -> None:
        with self._lock:
            tools, self._tools = list(self._tools.values()), {}
        for tool in tools:
            if callable(getattr(tool, "close", None)):
                tool.close()
