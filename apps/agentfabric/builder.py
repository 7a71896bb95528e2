"""The builder: an agent whose one tool, ``update_agent_config``, changes the agent being built.

A builder turn sees the draft as it is now (hand edits of the form included) in its
instructions; each call of the tool is a partial update, validated against
:class:`~qwen_agent.config.AgentConfig` before anything changes. A bad update (an unknown
tool, a name that cannot be one, a field that does not exist) is an error observation the
builder reads and fixes on its next step; the draft keeps its last good state. Nothing is
scraped out of free text.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_agent.agent import Agent
from qwen_agent.config import AgentConfig, tool_name
from qwen_agent.errors import ToolCallError
from qwen_agent.tool import Tool

__all__ = ["BUILTIN_TOOLS", "ConfigUpdate", "Draft", "UpdateAgentConfig", "apply_update", "builder"]

#: the tools a person can switch on in the app: registered name -> what the form says
BUILTIN_TOOLS: dict[str, str] = {
    "code_interpreter": "Code interpreter: runs Python in a sandbox (charts, maths, files)",
    "image_gen": "Image generation: draws pictures from a description",
    "retrieval": "Knowledge search: searches the uploaded knowledge files",
}

INSTRUCTIONS = """\
You help a person build an AI assistant. When they say what it should be or do, call \
update_agent_config with the fields that change, then say briefly what you changed. If the \
request is unclear, ask one short question.

The assistant now: {config}"""


class ConfigUpdate(BaseModel):
    """A partial update of the agent being built: only the fields given change."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, description="the assistant's name")
    description: str | None = Field(default=None, description="one line saying what it does")
    instructions: str | None = Field(
        default=None, description="how the assistant behaves (its system prompt)"
    )
    tools: list[str] | None = Field(default=None, description="built-in tools to add")
    remove_tools: list[str] | None = Field(default=None, description="built-in tools to remove")
    conversation_starters: list[str] | None = Field(
        default=None, description="example questions to add"
    )
    remove_conversation_starters: list[str] | None = Field(
        default=None, description="example questions to remove"
    )
    welcome_message: str | None = Field(default=None, description="the first message users see")
    avatar: str | None = Field(default=None, description="a picture to draw as its avatar")


def check_tool_options(text: str) -> dict[str, dict[str, Any]]:
    """The form's tool options (JSON: options by built-in tool name), checked as an
    import is: only the options :data:`~agentfabric.checks.SETTABLE` lists, within their
    bounds (never a host path, nothing only the app or its operator sets). Raises
    :class:`~qwen_agent.errors.ConfigError` with what to fix."""
    from qwen_agent.errors import ConfigError

    from .checks import settable_problem

    try:
        data = json.loads(text or "{}")
    except ValueError as exc:
        raise ConfigError(f"tool options are not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError('tool options are {"tool name": {"option": value}}')
    for tool, options in data.items():
        if tool not in BUILTIN_TOOLS:
            raise ConfigError(
                f"no built-in tool {tool!r:.40}; choose from {', '.join(BUILTIN_TOOLS)}"
            )
        for key, value in options.items():
            problem = settable_problem(tool, key, value)
            if problem is not None:
                raise ConfigError(problem)
    return data


def slug(name: str) -> str:
    """A display name as an agent name: spaces become hyphens, other characters that a
    name cannot hold are dropped ("Chef Bot!" -> "Chef-Bot")."""
    name = re.sub(r"\s+", "-", name.strip())
    return re.sub(r"[^A-Za-z0-9_.-]", "", name)[:64].strip("-.")


def apply_update(config: AgentConfig, update: dict[str, Any]) -> tuple[AgentConfig, list[str]]:
    """``config`` with ``update`` applied, and the names of the fields that changed. Raises
    :class:`~qwen_agent.errors.ToolCallError` (said so the builder can fix it) for an
    update that is not valid; ``config`` is never changed in place. An ``avatar`` in the
    update is a picture to draw: it is returned as the field ``avatar_prompt`` in the
    changes (``"avatar"``) and left to the caller."""
    try:
        upd = ConfigUpdate.model_validate(update)
    except ValidationError as exc:
        raise ToolCallError("update_agent_config: " + _problems(exc)) from None
    data = config.model_dump()
    changed: list[str] = []
    if upd.name is not None:
        name = slug(upd.name)
        if not name:
            raise ToolCallError(
                f"update_agent_config: {upd.name!r} cannot be a name: use letters, digits, "
                "spaces, '-', '_' or '.'"
            )
        data["name"] = name
    for field in ("description", "instructions", "welcome_message"):
        value = getattr(upd, field)
        if value is not None:
            data[field] = value.strip()
    names = [tool_name(spec) for spec in data["tools"]]
    for tool in upd.tools or []:
        if tool not in BUILTIN_TOOLS:
            raise ToolCallError(
                f"update_agent_config: there is no built-in tool {tool!r}; "
                f"choose from {', '.join(BUILTIN_TOOLS)}"
            )
        if tool not in names:
            data["tools"].append(tool)
            names.append(tool)
    for tool in upd.remove_tools or []:
        data["tools"] = [s for s in data["tools"] if tool_name(s) != tool]
    starters = list(data["conversation_starters"])
    for text in upd.conversation_starters or []:
        if text.strip() and text.strip() not in starters:
            starters.append(text.strip())
    drop = {t.strip() for t in upd.remove_conversation_starters or []}
    data["conversation_starters"] = [s for s in starters if s not in drop]
    try:
        new = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ToolCallError("update_agent_config: " + _problems(exc)) from None
    before = config.model_dump()
    after = new.model_dump()
    changed = [k for k in after if after[k] != before[k]]
    if upd.avatar:
        changed.append("avatar")
    return new, changed


def _problems(exc: ValidationError) -> str:
    out = []
    for err in exc.errors()[:4]:
        where = ".".join(map(str, err["loc"])) or "(update)"
        msg = "no such field" if err["type"] == "extra_forbidden" else err["msg"]
        out.append(f"{where}: {msg}")
    fields = ", ".join(ConfigUpdate.model_fields)
    return "; ".join(out) + f" (the fields are: {fields})"


class Draft:
    """The agent being built in one browser session: its config, changed by the builder
    (:meth:`update`) and by hand (:meth:`replace`), thread-safe. ``on_change(config,
    changed, avatar_prompt)`` runs after each builder update that changed something."""

    def __init__(
        self,
        config: AgentConfig | None = None,
        on_change: Callable[[AgentConfig, list[str], str | None], None] | None = None,
    ) -> None:
        self._config = config or AgentConfig(name="my-assistant")
        self._lock = threading.Lock()
        self.on_change = on_change

    @property
    def config(self) -> AgentConfig:
        with self._lock:
            return self._config

    def replace(self, config: AgentConfig) -> None:
        with self._lock:
            self._config = config

    def update(self, update: dict[str, Any]) -> list[str]:
        with self._lock:
            new, changed = apply_update(self._config, update)
            self._config = new
        if changed and self.on_change is not None:
            self.on_change(new, changed, update.get("avatar") or None)
        return changed


def _schema() -> dict[str, Any]:
    """The tool's parameters as the model reads them: plain types, no nulls (a small
    model's window is short), built-in tool names as an enum (a guided backend can write
    no other); :func:`apply_update` checks a call against :class:`ConfigUpdate`."""
    props: dict[str, Any] = {}
    for key, field in ConfigUpdate.model_fields.items():
        prop: dict[str, Any] = {"type": "string"}
        if key in ("tools", "remove_tools"):
            prop = {"type": "array", "items": {"type": "string", "enum": list(BUILTIN_TOOLS)}}
        elif key.endswith("conversation_starters"):
            prop = {"type": "array", "items": {"type": "string"}}
        props[key] = {**prop, "description": field.description}
    return {"type": "object", "properties": props}


class UpdateAgentConfig(Tool):
    """The builder's one tool, bound to one :class:`Draft`."""

    name = "update_agent_config"
    description = "Change the assistant being built: give only the fields to change."
    parameters = _schema()

    def __init__(self, draft: Draft) -> None:
        super().__init__()
        self.draft = draft

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Checked by :func:`apply_update`, whose messages say what to fix."""
        if not isinstance(arguments, dict):
            raise ToolCallError("update_agent_config takes a JSON object of fields to change")
        return arguments

    def call(self, **arguments: Any) -> str:
        changed = self.draft.update(arguments)
        if not changed:
            return "Nothing changed: the assistant already had those settings."
        now = self.draft.config
        shown = {k: getattr(now, k) for k in changed if k != "avatar"}
        extra = " A new avatar is being drawn." if "avatar" in changed else ""
        return f"Updated {', '.join(changed)}: {json.dumps(shown, ensure_ascii=False)}.{extra}"


def describe(config: AgentConfig) -> str:
    """The draft as the builder reads it: the fields a person sets, as JSON."""
    shown = config.model_dump(
        include={
            "name",
            "description",
            "instructions",
            "conversation_starters",
            "welcome_message",
        }
    )
    shown["tools"] = [tool_name(s) for s in config.tools]
    shown["knowledge_files"] = len(config.knowledge)
    return json.dumps(shown, ensure_ascii=False)


def builder(draft: Draft, llm: Any, format: str = "hermes") -> Agent:
    """The builder agent for ``draft`` on ``llm`` (a ChatModel, shared with the app). Its
    instructions hold the draft as it is now, so make one per builder turn."""
    return Agent(
        llm=llm,
        tools=[UpdateAgentConfig(draft)],
        instructions=INSTRUCTIONS.format(config=describe(draft.config)),
        format=format,
        max_steps=4,
    )
