"""The app's logic without its page: who is asking, their sessions, the builder and preview
turns as streams of chat updates. :mod:`agentfabric.ui` lays these out in Gradio.

One :class:`Fabric` per process holds the store, the model (one, shared by the builder and
every preview, so an engine that batches serves them all) and the sessions. A
:class:`Session` is one browser tab: its owner, the agent it has open, the draft, the
builder's and the preview's conversations and its own tool sessions (code-interpreter
kernel, files). Every store call names the owner, so nobody reaches another's agents.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent.agent import Agent
from qwen_agent.config import AgentConfig, tool_name
from qwen_agent.errors import QwenAgentError, ToolCallError
from qwen_agent.events import (
    CallParseError,
    FinalEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallEvent,
    ToolResultEvent,
)
from qwen_agent.llm import ChatModel
from qwen_agent.messages import FileItem, ImageItem, Message

from .builder import Draft, builder
from .checks import image_ext
from .store import AgentRecord, Conflict, NotFound, Store, StoreError

__all__ = ["Busy", "ChatView", "Fabric", "Session"]


class Busy(QwenAgentError):
    """The tab is running a reply; what was asked waits for it to end."""


log = logging.getLogger("agentfabric")

#: how the preview conversation is keyed in the store (one per owner and agent)
PREVIEW = "preview"
BUILDER = "builder"
#: a tab unused this long (and running nothing) is closed when another tab opens
IDLE_SECONDS = 3 * 3600
#: the mark on an answer that was stopped before its end
STOPPED = "\n\n*(stopped)*"
#: the most messages of a conversation the page shows and the store keeps
MAX_MESSAGES = 400


def fence(text: str) -> str:
    """``text`` as a Markdown code block that nothing inside can close: tool results and
    arguments are data, never markup."""
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text}\n{ticks}"


class ChatView:
    """A conversation as the page shows it: Gradio's message dicts, with tool calls as
    collapsible steps (``metadata.title``, ``status`` pending then done) and images
    copied into the app's media folder under generated names."""

    def __init__(self, media: Path, messages: list[dict[str, Any]] | None = None) -> None:
        self.media = media
        self.messages: list[dict[str, Any]] = list(messages or [])
        self._steps: dict[str, dict[str, Any]] = {}
        self._text: dict[str, Any] | None = None

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self._text = None

    def text(self, delta: str) -> None:
        if self._text is None:
            self._text = {"role": "assistant", "content": ""}
            self.messages.append(self._text)
        self._text["content"] += delta

    def note(self, text: str, title: str = "") -> None:
        msg: dict[str, Any] = {"role": "assistant", "content": text}
        if title:
            msg["metadata"] = {"title": title, "status": "done"}
        self.messages.append(msg)
        self._text = None

    def tool_call(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        args = json.dumps(arguments, ensure_ascii=False, indent=1)
        step = {
            "role": "assistant",
            "content": fence(args),
            "metadata": {"title": f"🛠️ {name}", "status": "pending", "id": call_id},
        }
        self._steps[call_id] = step
        self.messages.append(step)
        self._text = None

    def tool_result(
        self, call_id: str, name: str, text: str, error: bool, files: list[Any]
    ) -> None:
        step = self._steps.pop(call_id, None)
        if step is None:
            self.tool_call(call_id, name, {})
            step = self._steps.pop(call_id)
        shown = text if len(text) <= 4000 else text[:4000] + "\n…"
        step["content"] += "\n\n" + ("**Error**\n" if error else "**Result**\n") + fence(shown)
        step["metadata"] = {**step["metadata"], "status": "done"}
        if error:
            step["metadata"]["title"] = f"⚠️ {name}"
        for item in files:
            path = self.keep(item)
            if path is not None:
                self.messages.append({"role": "assistant", "content": {"path": str(path)}})
        self._text = None

    def keep(self, item: Any) -> Path | None:
        """A copy of a tool's image or file under a generated name in the media folder
        (the tool's own file may live in a sandbox that goes away); None if unreadable."""
        src = item.image if isinstance(item, ImageItem) else item.file
        if not isinstance(src, str) or src.startswith(("http:", "https:", "data:")):
            return None
        source = Path(src)
        if not source.is_file() or source.is_symlink():
            return None
        ext = "".join(c for c in source.suffix.lower()[:8] if c.isalnum() or c == ".")
        dest = self.media / f"{uuid.uuid4().hex}{ext}"
        try:
            shutil.copyfile(source, dest)
        except OSError:
            return None
        return dest


@dataclass
class Session:
    """One browser tab."""

    owner: str
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    agent_id: str = ""
    version: int = 0
    draft: Draft = field(default_factory=Draft)
    builder_history: list[Message] = field(default_factory=list)
    history: list[Message] = field(default_factory=list)
    builder_chat: list[dict[str, Any]] = field(default_factory=list)
    preview_chat: list[dict[str, Any]] = field(default_factory=list)
    #: the preview agent and the config it was built from
    agent: Agent | None = None
    built_from: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    avatar_prompt: str | None = None
    #: the code interpreter's session: random, never derived from what the client sent
    sandbox: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the conversation kinds with a round running now (one at a time per kind)
    busy: set[str] = field(default_factory=set)
    #: counted up by Clear, so a round that ends after it keeps nothing
    epoch: dict[str, int] = field(default_factory=dict)
    used: float = field(default_factory=time.monotonic)

    def idle(self, seconds: float) -> bool:
        return not self.busy and time.monotonic() - self.used > seconds

    def close(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            _close_quietly(agent)


def _still_running() -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "A reply is still running: press Stop, or wait for it.",
        "metadata": {"title": "ℹ️ Busy", "status": "done"},
    }


def _from_a_user(messages: list[Message], most: int) -> list[Message]:
    """The last ``most`` messages or fewer, starting at a user's (a cut that began at a
    tool result would show a server a result without its call)."""
    kept = messages[-most:]
    start = next((i for i, m in enumerate(kept) if m.role == "user"), len(kept))
    return kept[start:]


def _close_quietly(agent: Agent) -> None:
    try:
        agent.close()
    except Exception as exc:  # a kernel that will not stop is reaped by its pool
        log.warning("closing a preview agent failed: %s", exc)


class Fabric:
    """The app's state shared by every session."""

    def __init__(
        self,
        store: Store,
        llm: ChatModel,
        data_dir: Path,
        format: str = "hermes",
        model_label: str = "",
    ) -> None:
        self.store = store
        self.llm = llm
        self.format = format
        self.model_label = model_label
        self.data_dir = Path(data_dir)
        self.media = self.data_dir / "media"
        self.files = self.data_dir / "files"
        for folder in (self.media, self.files):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sessions: dict[tuple[str, str], Session] = {}
        self._lock = threading.Lock()

    # -- sessions -----------------------------------------------------------------------
    def session(self, key: str, owner: str) -> Session:
        """The session of browser tab ``key``, opened for ``owner`` on first use (their
        most recent agent, or a new one)."""
        gone: list[Session] = []
        with self._lock:
            s = self.sessions.get((owner, key))
            fresh = s is None
            if s is None:
                idle = [k for k, v in self.sessions.items() if v.idle(IDLE_SECONDS)]
                gone = [self.sessions.pop(k) for k in idle]
                s = self.sessions[(owner, key)] = Session(owner=owner, key=key)
            s.used = time.monotonic()
        for old in gone:  # tabs that went away without saying so
            old.close()
        with s.lock:
            if fresh or (not s.busy and not self._exists(s)):  # or deleted in another tab
                self._open_latest(s)
        return s

    def _exists(self, s: Session) -> bool:
        try:
            self.store.get_agent(s.owner, s.agent_id)
        except NotFound:
            return False
        return True

    def _open_latest(self, s: Session) -> None:
        """Open the owner's most recently changed agent (a new one if they have none)."""
        agents = self.store.list_agents(s.owner)
        record = agents[0] if agents else self.store.create_agent(s.owner, self.new_config(s.owner))
        self.open(s, record.id)

    def sweep_exports(self, older_than: float = 3600.0) -> None:
        """Remove export files written more than ``older_than`` seconds ago (each export
        is a download, not something to keep)."""
        now = time.time()
        for folder in self.media.glob("export-*"):
            try:
                if now - folder.stat().st_mtime > older_than:
                    shutil.rmtree(folder)
            except OSError:
                continue

    def end(self, key: str) -> None:
        with self._lock:
            ended = [self.sessions.pop(k) for k in list(self.sessions) if k[1] == key]
        for s in ended:
            s.close()

    def new_config(self, owner: str) -> AgentConfig:
        taken = {r.config.name for r in self.store.list_agents(owner)}
        name, n = "my-assistant", 1
        while name in taken:
            n += 1
            name = f"my-assistant-{n}"
        return AgentConfig(name=name)

    def open(self, s: Session, agent_id: str) -> AgentRecord:
        if s.busy:
            raise Busy("a reply is still running: press Stop (or wait) before switching agents")
        record = self.store.get_agent(s.owner, agent_id)
        s.close()
        s.agent_id, s.version = record.id, record.version
        s.draft.replace(record.config)
        s.built_from = ""
        s.history = [Message.model_validate(m) for m in self._load(s, PREVIEW)]
        s.builder_history = [Message.model_validate(m) for m in self._load(s, BUILDER)]
        s.preview_chat = self.render(s.history)
        s.builder_chat = self.render(s.builder_history)
        return record

    def render(self, history: list[Message]) -> list[dict[str, Any]]:
        """A kept conversation as the page shows it (after a reload)."""
        view = ChatView(self.media)
        for m in history:
            if m.role == "user":
                view.user(m.text)
            elif m.role == "assistant":
                if m.text:
                    view.text(m.text)
                for call in m.tool_calls or []:
                    view.tool_call(call.id, call.name, call.arguments)
            elif m.role == "tool":
                view.tool_result(m.tool_call_id or "", m.name or "tool", m.text, False, [])
        return view.messages[-MAX_MESSAGES:]

    def _load(self, s: Session, kind: str) -> list[dict[str, Any]]:
        try:
            return self.store.load_conversation(s.owner, s.agent_id, kind)
        except QwenAgentError as exc:
            log.warning("a stored conversation could not be read: %s", exc)
            return []

    def record(self, s: Session) -> AgentRecord:
        return self.store.get_agent(s.owner, s.agent_id)

    def save(self, s: Session, config: AgentConfig) -> str:
        """Keep ``config`` as the open agent's next version; a message for the page."""
        return self.try_save(s, config)[1]

    def try_save(self, s: Session, config: AgentConfig) -> tuple[bool, str]:
        """:meth:`save`, saying whether it was kept; when it was not, the draft is the
        stored version again."""
        try:
            record = self.store.save_config(s.owner, s.agent_id, config, expected_version=s.version)
        except StoreError as exc:
            record = self.record(s)
            s.version = record.version
            s.draft.replace(record.config)
            if isinstance(exc, Conflict) and "version" in str(exc):
                return False, "This agent was changed in another tab; its latest version is loaded."
            return False, f"Not saved: {exc}"
        s.version = record.version
        s.draft.replace(record.config)
        return True, f"Saved (version {record.version})."

    # -- preview --------------------------------------------------------------------------
    def runtime_config(self, s: Session) -> AgentConfig:
        record = self.record(s)
        config = self.store.materialize(record, self.files)
        tools = config.tools
        if not config.knowledge:  # knowledge search with nothing to search: left out
            tools = [t for t in tools if tool_name(t) != "retrieval"]
        return config.model_copy(update={"llm": None, "mcp_servers": {}, "tools": tools})

    def preview_agent(self, s: Session) -> Agent:
        """The preview's agent for the draft as it is now: rebuilt when the config (or
        its files) changed since the last build, at once, with no Update button."""
        config = self.runtime_config(s)
        stamp = config.model_dump_json()
        with s.lock:
            if s.agent is not None and s.built_from == stamp:
                return s.agent
            old, s.agent = s.agent, None
        if old is not None:  # the sandbox (its files, its variables) outlives a rebuild
            old._owned = [t for t in old._owned if getattr(t, "session_id", None) != s.sandbox]
            _close_quietly(old)
        agent = config.build(llm=self.llm, session_id=s.sandbox)
        with s.lock:
            s.agent, s.built_from = agent, stamp
        return agent

    def upload(self, s: Session, paths: list[str]) -> list[str]:
        """Put a chat's uploaded files into the preview agent's code-interpreter sandbox;
        what to tell the person."""
        if not paths:
            return []
        agent = self.preview_agent(s)
        ci = agent.tools.get("code_interpreter")
        if ci is None or not hasattr(ci, "upload"):
            return [
                "Files sent in the chat go to the code interpreter's sandbox, and this "
                "agent has none: switch it on in Configure, or add the file as knowledge."
            ]
        said = []
        for path in paths:
            name = Path(path).name
            inside = ci.upload(name, Path(path))
            said.append(f"Uploaded {name} to the sandbox as {inside}.")
        return said

    async def preview_turn(self, s: Session, text: str) -> AsyncIterator[list[dict[str, Any]]]:
        """One preview round: the chat after each change."""
        view = ChatView(self.media, s.preview_chat)
        if PREVIEW in s.busy:
            yield view.messages + [_still_running()]
            return
        view.user(text)
        yield view.messages
        listed = [tool_name(t) for t in s.draft.config.tools]
        if "retrieval" in listed and not s.draft.config.knowledge and not self.knows(s):
            view.note(
                "Knowledge search is on, but there are no knowledge files yet: upload some "
                "in Configure. The agent answers without it until then.",
                "ℹ️ No knowledge files",
            )
        try:
            agent = await asyncio.to_thread(self.preview_agent, s)
        except QwenAgentError as exc:
            view.note(f"The preview agent could not be built: {exc}", "⚠️ Error")
            s.preview_chat = view.messages
            yield view.messages
            return
        async for messages in self._turn(s, view, agent, text, s.history, PREVIEW):
            yield messages

    def knows(self, s: Session) -> bool:
        """Whether the open agent has knowledge files."""
        return any(f.kind == "knowledge" for f in self.record(s).files)

    async def _turn(
        self,
        s: Session,
        view: ChatView,
        agent: Agent,
        text: str,
        history: list[Message],
        kind: str,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        s.busy.add(kind)
        bound, epoch = s.agent_id, s.epoch.get(kind, 0)
        run = agent.arun(text, history=history)
        said: list[str] = []
        ended = False  # answered, or failed (a failed round is not kept)
        try:
            async for ev in run:
                if isinstance(ev, TextDelta):
                    view.text(ev.text)
                    said.append(ev.text)
                elif isinstance(ev, ReasoningDelta):
                    continue
                elif isinstance(ev, ToolCallEvent):
                    view.tool_call(ev.call.id, ev.call.name, ev.call.arguments)
                elif isinstance(ev, ToolResultEvent):
                    r = ev.result
                    media = [c for c in r.content if isinstance(c, ImageItem | FileItem)]
                    view.tool_result(r.call_id, r.name, r.text, r.is_error, media)
                elif isinstance(ev, CallParseError):
                    view.note(ev.message, "⚠️ The model wrote a call that cannot be read")
                elif isinstance(ev, FinalEvent):
                    if ev.stop_reason != "answer":
                        view.text(ev.message.text)
                    del history[:]
                    history.extend(_from_a_user(ev.messages, MAX_MESSAGES))
                    ended = True
                    if s.epoch.get(kind, 0) == epoch:  # not cleared meanwhile
                        self._keep(s, kind, history, bound)
                else:
                    continue
                yield view.messages
        except QwenAgentError as exc:
            ended = True
            view.note(f"{type(exc).__name__}: {exc}", "⚠️ Error")
            yield view.messages
        except Exception as exc:  # the app keeps working; the person sees what broke
            ended = True
            log.exception("a %s turn failed", kind)
            view.note(f"Something went wrong: {type(exc).__name__}: {exc}", "⚠️ Error")
            yield view.messages
        finally:
            await run.aclose()
            self._after(s, kind, view, (bound, epoch), "".join(said) if not ended else "", text)

    def _after(
        self, s: Session, kind: str, view: ChatView, at: tuple[str, int], cut: str, text: str
    ) -> None:
        """The end of a round started on agent ``at[0]`` in Clear-epoch ``at[1]``: a round
        cut short (``cut``: what was said) is kept with a mark; the tab's chat is updated
        unless it was cleared or switched to another agent since."""
        s.busy.discard(kind)
        bound, epoch = at
        if s.epoch.get(kind, 0) != epoch:
            return
        history = s.history if kind == PREVIEW else s.builder_history
        if cut and s.agent_id == bound:  # stopped, or the page went away
            history.append(Message(role="user", content=text))
            history.append(Message(role="assistant", content=cut + STOPPED))
            self._keep(s, kind, history, bound)
        if s.agent_id != bound:
            return
        view.messages[:] = view.messages[-MAX_MESSAGES:]
        if kind == PREVIEW:
            s.preview_chat = view.messages
        else:
            s.builder_chat = view.messages

    def _keep(
        self, s: Session, kind: str, history: list[Message], agent_id: str | None = None
    ) -> None:
        data = [m.model_dump(mode="json", exclude_none=True) for m in history]
        try:
            self.store.save_conversation(s.owner, agent_id or s.agent_id, kind, data)
        except QwenAgentError as exc:
            log.warning("a conversation was not kept: %s", exc)

    def clear(self, s: Session, kind: str) -> None:
        s.epoch[kind] = s.epoch.get(kind, 0) + 1  # a round still running keeps nothing
        if kind == PREVIEW:
            s.history, s.preview_chat = [], []
        else:
            s.builder_history, s.builder_chat = [], []
        self._keep(s, kind, [])

    # -- builder --------------------------------------------------------------------------
    async def builder_turn(self, s: Session, text: str) -> AsyncIterator[list[dict[str, Any]]]:
        """One builder round: the chat after each change; the draft is saved after each
        update the builder makes (so the form and the preview follow at once)."""
        view = ChatView(self.media, s.builder_chat)
        if BUILDER in s.busy:
            yield view.messages + [_still_running()]
            return
        view.user(text)
        yield view.messages
        s.avatar_prompt = None

        def changed(config: AgentConfig, fields: list[str], avatar: str | None) -> None:
            ok, said = self.try_save(s, config)
            if not ok:  # the builder reads why, and the draft is what is stored
                raise ToolCallError(f"update_agent_config: {said}")
            if avatar:
                s.avatar_prompt = avatar

        s.draft.on_change = changed
        agent = builder(s.draft, self.llm, self.format)
        try:
            async for messages in self._turn(s, view, agent, text, s.builder_history, BUILDER):
                yield messages
        finally:
            s.draft.on_change = None
            agent.close()

    def avatar(self, s: Session) -> str | None:
        """The open agent's avatar as the page may show it: a copy in the media folder
        named by its SHA-256 (the only folder the page's server hands out; knowledge
        files are never served)."""
        record = self.record(s)
        found = next((f for f in record.files if f.kind == "avatar"), None)
        if found is None:
            return None
        shown = next(self.media.glob(f"{found.sha256}.*"), None)
        if shown is None:
            data = self.store.read_file(s.owner, s.agent_id, found.id)
            shown = self.media / f"{found.sha256}{image_ext(data[:16]) or '.img'}"
            tmp = shown.with_name(f".{shown.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.replace(tmp, shown)
        return str(shown)

    def draw_avatar(self, s: Session, prompt: str) -> str:
        """Draw an avatar with ``image_gen`` and keep it; a message for the page."""
        from qwen_agent.tool import get_tool

        try:
            tool = get_tool("image_gen")
            result = tool.call(prompt=prompt)
        except Exception as exc:
            return f"The avatar could not be drawn: {type(exc).__name__}: {exc}"
        for item in getattr(result, "items", result if isinstance(result, list) else [result]):
            if isinstance(item, ImageItem) and os.path.isfile(item.image):
                data = Path(item.image).read_bytes()
                self.store.add_file(s.owner, s.agent_id, "avatar", "avatar.png", data)
                return "A new avatar was drawn."
        return "The image tool gave no picture."
