"""The page: Create (chat with the builder) and Configure (the form) on the left, a live
Preview on the right, the person's agents on top. Gradio 6.

Every handler finds its :class:`~agentfabric.fabric.Session` by the page's session hash and
the person: the name they logged in with (``auth``), the user header a trusted proxy sets
(``user_header``), or ``"local"`` when the app runs for one person on their machine.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import gradio as gr
from pydantic import ValidationError

from qwen_agent.config import AgentConfig, tool_name
from qwen_agent.errors import QwenAgentError

from .builder import BUILTIN_TOOLS, check_tool_options, slug
from .fabric import BUILDER, PREVIEW, Fabric, Session

__all__ = ["build_ui", "owner_of"]

CSS = """
#preview-col { border-left: 1px solid var(--border-color-primary); padding-left: 12px; }
footer { display: none !important; }
"""
KNOWLEDGE_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".csv", ".json"]


def owner_of(request: Any, user_header: str | None) -> str:
    """Who is asking: the logged-in name, the trusted proxy's header, or ``local``."""
    name = getattr(request, "username", None)
    if name:
        return f"user:{name}"
    if user_header:
        value = request.headers.get(user_header.lower()) if request is not None else None
        if not value:
            raise QwenAgentError(f"the {user_header} header is missing: sign in through the proxy")
        return f"user:{value}"
    return "local"


def build_ui(fabric: Fabric, user_header: str | None = None) -> Any:
    """The Gradio Blocks of the app for ``fabric``."""
    return Page(fabric, user_header).build()


class Page:
    """The components and their handlers."""

    def __init__(self, fabric: Fabric, user_header: str | None) -> None:
        self.gr = gr
        self.fabric = fabric
        self.user_header = user_header

    def session(self, request: gr.Request) -> Session:
        return self.fabric.session(request.session_hash or "", owner_of(request, self.user_header))

    # -- layout ---------------------------------------------------------------------------
    def build(self) -> Any:
        gr = self.gr
        with gr.Blocks(title="AgentFabric", analytics_enabled=False) as demo:
            self._top()
            self.status = gr.Markdown("", elem_id="status")
            self.exported = gr.File(label="Exported agent", visible=False, elem_id="exported")
            with gr.Row():
                with gr.Column(scale=1), gr.Tabs():
                    with gr.Tab("Create", id="create"):
                        self._create_tab()
                    with gr.Tab("Configure", id="configure"):
                        self._configure_tab()
                with gr.Column(scale=1, elem_id="preview-col"):
                    self._preview()
            self._wire(demo)
        return demo

    def _top(self) -> None:
        gr = self.gr
        with gr.Row(equal_height=True):
            self.agents = gr.Dropdown(label="Your agents", choices=[], scale=3, elem_id="agents")
            self.new_btn = gr.Button("New", scale=0, size="sm", elem_id="new-agent")
            self.dup_btn = gr.Button("Duplicate", scale=0, size="sm", elem_id="duplicate-agent")
            self.del_btn = gr.Button(
                "Delete", scale=0, size="sm", variant="stop", elem_id="delete-agent"
            )
            self.export_btn = gr.Button("Export", scale=0, size="sm", elem_id="export-agent")
            self.import_btn = gr.UploadButton(
                "Import", file_types=[".json"], scale=0, size="sm", elem_id="import-agent"
            )

    def _create_tab(self) -> None:
        gr = self.gr
        self.builder_chat = gr.Chatbot(
            label="Builder",
            height=460,
            elem_id="builder-chat",
            sanitize_html=True,
            allow_tags=False,
            buttons=["copy_all"],
            placeholder="Tell me what assistant you want, in plain words: "
            "*make me a travel planner that answers in French*.",
        )
        self.builder_box = gr.Textbox(
            show_label=False,
            placeholder="Describe your assistant",
            elem_id="builder-input",
            submit_btn=True,
        )

    def _configure_tab(self) -> None:
        gr = self.gr
        self.name = gr.Textbox(label="Name", elem_id="cfg-name")
        self.description = gr.Textbox(label="Description", elem_id="cfg-description")
        self.instructions = gr.Textbox(label="Instructions", lines=5, elem_id="cfg-instructions")
        self.welcome = gr.Textbox(label="Welcome message", elem_id="cfg-welcome")
        self.starters = gr.Textbox(
            label="Conversation starters (one per line)", lines=3, elem_id="cfg-starters"
        )
        self.tools = gr.CheckboxGroup(
            label="Tools",
            choices=[(label, key) for key, label in BUILTIN_TOOLS.items()],
            elem_id="cfg-tools",
        )
        self.tool_options = gr.Code(
            label='Tool options (JSON by tool name, e.g. {"retrieval": {"top_k": 6}})',
            language="json",
            lines=3,
            elem_id="cfg-tool-options",
        )
        self.knowledge = gr.File(
            label="Knowledge files (searched by the agent; not the chat's sandbox)",
            file_count="multiple",
            file_types=KNOWLEDGE_TYPES,
            elem_id="cfg-knowledge",
        )
        with gr.Row():
            self.knowledge_list = gr.Dropdown(
                label="Knowledge", choices=[], scale=3, elem_id="knowledge-list"
            )
            self.remove_file = gr.Button("Remove", scale=0)
        self.avatar = gr.Image(label="Avatar", type="filepath", height=128, elem_id="cfg-avatar")
        with gr.Row():
            self.versions = gr.Dropdown(
                label="Versions (each change is kept)", choices=[], scale=3, elem_id="versions"
            )
            self.restore = gr.Button("Restore", scale=0, elem_id="restore-version")
        self.published = gr.Checkbox(
            label="Published: served as agent:NAME by `qwen-agent serve --store`",
            elem_id="cfg-published",
        )
        gr.Markdown(f"Model: {self.fabric.model_label or 'the bundled model'}")

    def _preview(self) -> None:
        gr = self.gr
        gr.Markdown("### Preview")
        self.preview = gr.Chatbot(
            label="Preview",
            height=520,
            elem_id="preview-chat",
            sanitize_html=True,
            allow_tags=False,
            buttons=["copy_all"],
        )
        self.preview_box = gr.MultimodalTextbox(
            show_label=False,
            placeholder="Try your assistant (files go to its code sandbox)",
            elem_id="preview-input",
            file_count="multiple",
        )
        with gr.Row():
            self.stop_btn = gr.Button("Stop", elem_id="preview-stop")
            self.retry_btn = gr.Button("Retry", elem_id="preview-retry")
            self.clear_btn = gr.Button("Clear", elem_id="preview-clear")

    @property
    def form(self) -> list[Any]:
        return [
            self.name,
            self.description,
            self.instructions,
            self.welcome,
            self.starters,
            self.tools,
            self.tool_options,
            self.published,
        ]

    @property
    def page(self) -> list[Any]:
        return [
            self.agents,
            *self.form,
            self.knowledge_list,
            self.avatar,
            self.builder_chat,
            self.preview,
            self.exported,
            self.versions,
        ]

    def _wire(self, demo: Any) -> None:
        outs = [*self.page, self.status]
        demo.load(self.on_load, None, outs)
        self.agents.input(self.on_open, self.agents, outs)
        self.new_btn.click(self.on_new, None, outs)
        self.dup_btn.click(self.on_duplicate, None, outs)
        self.del_btn.click(self.on_delete, None, outs)
        self.import_btn.upload(self.on_import, self.import_btn, outs)
        self.export_btn.click(self.on_export, None, self.exported)
        edited = [*self.form, self.preview, self.status]
        for field in self.form:  # a text field is saved when it loses focus, not per key
            event = field.input if field in (self.tools, self.published) else field.blur
            event(self.on_edit, self.form, edited)
        self.knowledge.upload(
            self.on_knowledge, self.knowledge, [*self.page, self.knowledge, self.status]
        )
        self.remove_file.click(self.on_remove_file, self.knowledge_list, outs)
        self.avatar.upload(self.on_avatar, self.avatar, outs)
        self.restore.click(self.on_restore, self.versions, outs)
        self.builder_box.submit(
            self.on_build, self.builder_box, [*self.page, self.builder_box, self.status]
        )
        chat_out = [self.preview, self.preview_box, self.status]
        send = self.preview_box.submit(
            self.on_send, self.preview_box, chat_out, concurrency_limit=None
        )
        start = self.preview.example_select(self.on_starter, None, chat_out, concurrency_limit=None)
        again = self.retry_btn.click(self.on_retry, None, chat_out, concurrency_limit=None)
        self.stop_btn.click(None, None, None, cancels=[send, start, again])
        running = [send, start, again]
        self.clear_btn.click(self.on_clear, None, chat_out, cancels=running)
        self.preview.clear(self.on_clear, None, chat_out, cancels=running)
        self.builder_chat.clear(self.on_clear_builder, None, self.builder_chat)
        demo.unload(self.on_unload)

    # -- how the page shows a session --------------------------------------------------
    def preview_update(self, s: Session, chat: bool = True) -> Any:
        """The preview's look for the draft; with ``chat`` its conversation too (not while
        a builder turn streams: a preview round may be streaming beside it)."""
        c = s.draft.config
        look = {
            "placeholder": c.welcome_message or f"**{c.name}**\n\n{c.description}",
            "examples": [{"text": t} for t in c.conversation_starters] or None,
            "avatar_images": (None, self.avatar_path(s)),
        }
        return self.gr.Chatbot(value=s.preview_chat, **look) if chat else self.gr.Chatbot(**look)

    def avatar_path(self, s: Session) -> str | None:
        return self.fabric.avatar(s)

    def form_values(self, s: Session) -> list[Any]:
        c = s.draft.config
        on = [t for t in (tool_name(spec) for spec in c.tools) if t in BUILTIN_TOOLS]
        return [
            c.name,
            c.description,
            c.instructions,
            c.welcome_message,
            "\n".join(c.conversation_starters),
            on,
            json.dumps(c.tool_options, indent=1) if c.tool_options else "",
            self.fabric.record(s).published,
        ]

    def kept(self) -> list[Any]:
        """The form as the person left it (an edit that was not saved is not undone)."""
        return [self.gr.skip() for _ in self.form]

    def show(self, s: Session) -> list[Any]:
        gr = self.gr
        record = self.fabric.record(s)
        mine = self.fabric.store.list_agents(s.owner)
        files = [(f.filename, f.id) for f in record.files if f.kind == "knowledge"]
        return [
            gr.Dropdown(choices=[(r.config.name, r.id) for r in mine], value=s.agent_id),
            *self.form_values(s),
            gr.Dropdown(choices=files, value=None),
            self.avatar_path(s),
            s.builder_chat,
            self.preview_update(s),
            gr.File(value=None, visible=False),
            self.version_choices(s),
        ]

    def version_choices(self, s: Session) -> Any:
        kept = self.fabric.store.versions(s.owner, s.agent_id, latest=50)
        choices = [
            (f"v{n} · {when:%Y-%m-%d %H:%M} · {config.name}", n)
            for n, when, config in reversed(kept)
        ]
        return self.gr.Dropdown(choices=choices, value=s.version)

    # -- agents: load, open, new, duplicate, delete, import, export ---------------------
    def on_load(self, request: gr.Request) -> list[Any]:
        return [*self.show(self.session(request)), ""]

    def busy(self, s: Session) -> list[Any] | None:
        """The page as it is, with why nothing happened, while a reply runs."""
        if not s.busy:
            return None
        return [*self.show(s), "A reply is still running: press Stop, or wait for it."]

    def on_open(self, agent_id: str, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if (page := self.busy(s)) is not None:
            return page
        if agent_id and agent_id != s.agent_id:
            self.fabric.open(s, agent_id)
        return [*self.show(s), ""]

    def on_new(self, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if (page := self.busy(s)) is not None:
            return page
        store = self.fabric.store
        record = store.create_agent(s.owner, self.fabric.new_config(s.owner))
        self.fabric.open(s, record.id)
        return [*self.show(s), f"Created {record.config.name}."]

    def on_duplicate(self, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if (page := self.busy(s)) is not None:
            return page
        record = self.fabric.store.duplicate(s.owner, s.agent_id)
        self.fabric.open(s, record.id)
        return [*self.show(s), f"Duplicated as {record.config.name}."]

    def on_delete(self, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if (page := self.busy(s)) is not None:
            return page
        store = self.fabric.store
        gone = s.draft.config.name
        store.delete_agent(s.owner, s.agent_id)
        rest = store.list_agents(s.owner)
        record = rest[0] if rest else store.create_agent(s.owner, self.fabric.new_config(s.owner))
        self.fabric.open(s, record.id)
        return [*self.show(s), f"Deleted {gone}."]

    def on_import(self, file: Any, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if (page := self.busy(s)) is not None:
            return page
        try:
            data = Path(file).read_bytes()
            record = self.fabric.store.import_agent(s.owner, data)
        except (OSError, QwenAgentError) as exc:
            return [*self.show(s), f"Import refused: {exc}"]
        self.fabric.open(s, record.id)
        return [*self.show(s), f"Imported {record.config.name}."]

    def on_export(self, request: gr.Request) -> Any:
        s = self.session(request)
        data = self.fabric.store.export_agent(s.owner, s.agent_id)
        self.fabric.sweep_exports()
        folder = self.fabric.media / f"export-{uuid.uuid4().hex}"
        folder.mkdir()
        out = folder / f"{slug(s.draft.config.name) or 'agent'}.json"
        out.write_bytes(data)
        return self.gr.File(value=str(out), visible=True)

    # -- the form: a hand edit is saved and is what the builder sees next ---------------
    def on_edit(
        self,
        name: str,
        description: str,
        instructions: str,
        welcome: str,
        starters: str,
        tools: list[str],
        tool_options: str,
        published: bool,
        request: gr.Request,
    ) -> list[Any]:
        s = self.session(request)
        c = s.draft.config
        keep = [spec for spec in c.tools if tool_name(spec) not in BUILTIN_TOOLS]
        try:
            options = check_tool_options(tool_options)
        except QwenAgentError as exc:
            return [*self.kept(), self.preview_update(s), f"Not saved: {exc}"]
        try:
            config = AgentConfig.model_validate(
                {
                    **c.model_dump(),
                    "name": slug(name) or c.name,
                    "description": description,
                    "instructions": instructions,
                    "welcome_message": welcome,
                    "conversation_starters": [
                        x.strip() for x in starters.splitlines() if x.strip()
                    ],
                    "tools": [*keep, *(t for t in tools if t in BUILTIN_TOOLS)],
                    "tool_options": options,
                }
            )
        except ValidationError as exc:
            problem = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]
            )
            return [*self.kept(), self.preview_update(s), f"Not saved: {problem}"]
        said = self.fabric.save(s, config) if config != c else ""
        if published != self.fabric.record(s).published:
            try:
                self.fabric.store.set_published(s.owner, s.agent_id, published)
                said += " Published." if published else " Unpublished."
            except QwenAgentError as exc:
                said += f" Not published: {exc}"
        return [*self.form_values(s), self.preview_update(s), said]

    def on_restore(self, version: int | None, request: gr.Request) -> list[Any]:
        s = self.session(request)
        kept = {n: c for n, _, c in self.fabric.store.versions(s.owner, s.agent_id, latest=50)}
        if version not in kept:
            return [*self.show(s), "Choose a version first."]
        said = self.fabric.save(s, kept[version])
        return [*self.show(s), f"Restored v{version}. {said}"]

    def on_knowledge(self, files: list[str] | None, request: gr.Request) -> list[Any]:
        s = self.session(request)
        said = []
        for path in files or []:
            try:
                data = Path(path).read_bytes()
                info = self.fabric.store.add_file(s.owner, s.agent_id, "knowledge", path, data)
                said.append(f"Added {info.filename} to the knowledge base.")
            except (OSError, QwenAgentError) as exc:
                said.append(f"{Path(path).name} refused: {exc}")
        return [*self.show(s), None, " ".join(said)]

    def on_remove_file(self, file_id: str | None, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if file_id:
            self.fabric.store.remove_file(s.owner, s.agent_id, file_id)
        return [*self.show(s), "Removed." if file_id else "Choose a file first."]

    def on_avatar(self, path: str | None, request: gr.Request) -> list[Any]:
        s = self.session(request)
        if not path:
            return [*self.show(s), ""]
        try:
            data = Path(path).read_bytes()
            self.fabric.store.add_file(s.owner, s.agent_id, "avatar", Path(path).name, data)
        except (OSError, QwenAgentError) as exc:
            return [*self.show(s), f"Avatar refused: {exc}"]
        return [*self.show(s), "Avatar saved."]

    # -- the builder ---------------------------------------------------------------------
    async def on_build(self, text: str, request: gr.Request) -> Any:
        s = self.session(request)
        if not text.strip():
            yield [*self.show(s), "", ""]
            return
        skip = self.gr.skip
        start = seen = s.version
        async for chat in self.fabric.builder_turn(s, text.strip()):
            # the form and the preview's look change only when an update was saved (so
            # a person typing in Configure meanwhile keeps their keystrokes)
            saved = s.version != seen
            seen = s.version
            form = self.form_values(s) if saved else [skip() for _ in self.form]
            look = self.preview_update(s, chat=False) if saved else skip()
            yield [skip(), *form, skip(), skip(), chat, look, skip(), skip(), "", ""]
        said = ""
        if s.avatar_prompt:
            yield [*self.unchanged(), "", "Drawing the avatar…"]
            said = await asyncio.to_thread(self.fabric.draw_avatar, s, s.avatar_prompt)
        if s.version == start and not s.avatar_prompt:
            yield [*self.unchanged(), "", said]
            return
        page = self.show(s)
        page[self.page.index(self.preview)] = self.preview_update(s, chat=False)
        page[self.page.index(self.builder_chat)] = skip()
        yield [*page, "", said]

    def unchanged(self) -> list[Any]:
        return [self.gr.skip() for _ in self.page]

    # -- the preview ---------------------------------------------------------------------
    async def round(self, s: Session, text: str) -> Any:
        """A preview round's chats, with a status line while it runs: the first update
        comes before the agent is (re)built, which indexes its knowledge files."""
        busy = "Working…"
        if self.fabric.knows(s):
            busy = "Preparing the agent (indexing its knowledge files)…"
        async for chat in self.fabric.preview_turn(s, text):
            yield chat, busy
            busy = ""

    async def on_send(self, message: dict[str, Any] | None, request: gr.Request) -> Any:
        s = self.session(request)
        message = message or {}
        text = (message.get("text") or "").strip()
        files = [f if isinstance(f, str) else f.get("path") for f in message.get("files") or []]
        notes: list[str] = []
        if files:
            notes = await asyncio.to_thread(self.fabric.upload, s, [f for f in files if f])
        if not text:
            yield s.preview_chat, None, " ".join(notes)
            return
        async for chat, status in self.round(s, text):
            yield chat, None, " ".join([*notes, status]).strip()

    async def on_starter(self, event: gr.SelectData, request: gr.Request) -> Any:
        s = self.session(request)
        value = event.value if isinstance(event.value, dict) else {}
        async for chat, status in self.round(s, value.get("text", "")):
            yield chat, None, status

    async def on_retry(self, request: gr.Request) -> Any:
        s = self.session(request)
        users = [i for i, m in enumerate(s.history) if m.role == "user"]
        if not users:
            yield s.preview_chat, None, "Nothing to retry yet."
            return
        text = s.history[users[-1]].text
        s.history = s.history[: users[-1]]
        shown = [i for i, m in enumerate(s.preview_chat) if m.get("role") == "user"]
        if shown:
            s.preview_chat = s.preview_chat[: shown[-1]]
        async for chat, status in self.round(s, text):
            yield chat, None, status

    def on_clear(self, request: gr.Request) -> list[Any]:
        s = self.session(request)
        self.fabric.clear(s, PREVIEW)
        return [self.preview_update(s), None, ""]

    def on_clear_builder(self, request: gr.Request) -> list[Any]:
        s = self.session(request)
        self.fabric.clear(s, BUILDER)
        return []

    def on_unload(self, request: gr.Request) -> None:
        self.fabric.end(request.session_hash or "")
