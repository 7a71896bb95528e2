"""``qwen-agent fabric``: start AgentFabric on 127.0.0.1.

    qwen-agent fabric                                   # the bundled model, data in ~/.local/share
    qwen-agent fabric --model /models/Qwen2.5-7B-Instruct
    qwen-agent fabric --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    qwen-agent fabric --db postgresql://fabric@db/fabric --auth alice:secret --host 0.0.0.0

Nothing is sent outside the machine: Gradio's analytics and version check are off, the
page uses the system's fonts (no font service), and the server binds 127.0.0.1 unless
``--host`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_agent.errors import ConfigError

__all__ = ["FabricOptions", "create", "launch"]


@dataclass
class FabricOptions:
    """How the app starts; ``qwen-agent fabric``'s flags."""

    data_dir: Path | None = None
    db: str | None = None
    llm: dict[str, Any] = field(default_factory=dict)
    format: str = "hermes"
    host: str = "127.0.0.1"
    port: int = 7860
    auth: list[tuple[str, str]] = field(default_factory=list)
    user_header: str | None = None


def data_dir(given: Path | None) -> Path:
    if given is not None:
        return Path(given)
    env = os.environ.get("QWEN_FABRIC_DATA")
    if env:
        return Path(env)
    return Path.home() / ".local" / "share" / "qwen-agent" / "fabric"


def create(options: FabricOptions, llm: Any = None) -> tuple[Any, Any]:
    """The :class:`~agentfabric.fabric.Fabric` and its Gradio Blocks, not yet launched;
    ``llm`` (a ChatModel) overrides ``options.llm``."""
    for key, value in {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }.items():
        os.environ.setdefault(key, value)
    try:
        import gradio  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"AgentFabric needs the [fabric] extra ({exc.name} is missing): "
            "pip install 'qwen-agent-kit[fabric]'"
        ) from None
    from qwen_agent.llm import LLMConfig, get_chat_model

    from .fabric import Fabric
    from .store import Store
    from .ui import build_ui

    folder = data_dir(options.data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(options.db, folder)
    try:
        if llm is None:
            llm = get_chat_model(LLMConfig.model_validate(options.llm))
        label = options.llm.get("model") or ""
        fabric = Fabric(store, llm, folder, options.format, model_label=label)
        demo = build_ui(fabric, options.user_header)
    except BaseException:
        store.close()
        raise
    return fabric, demo


def theme() -> Any:
    """Gradio's default look with the system's fonts: the default theme fetches its
    fonts from Google's font service, and this page reaches no other host."""
    import gradio as gr

    system = ["ui-sans-serif", "system-ui", "sans-serif"]
    mono = ["ui-monospace", "Consolas", "monospace"]
    return gr.themes.Default(font=system, font_mono=mono)


#: what the page may load: its own server only. Model and tool text is rendered as
#: Markdown, and an image or a fetch in it pointing elsewhere would carry data off the
#: machine (a prompt-injection classic); the browser refuses those before any request.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'; frame-src 'self'; "
    "frame-ancestors 'self'; form-action 'self'; object-src 'none'; base-uri 'self'"
)


class SecurityHeaders:
    """ASGI middleware: every HTTP response carries :data:`CSP` and ``nosniff``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def launch(options: FabricOptions, llm: Any = None, block: bool = True) -> tuple[Any, Any]:
    """Start the app; with ``block`` it serves until interrupted, then closes the store.
    Returns the Fabric and the Blocks (launched) for a caller that does not block."""
    from starlette.middleware import Middleware

    from .ui import CSS

    fabric, demo = create(options, llm)
    # api_open=False: every event goes through the queue with its session (no direct
    # REST calls that skip it)
    demo.queue(default_concurrency_limit=None, max_size=256, api_open=False)
    if options.host not in ("127.0.0.1", "localhost", "::1") and not (
        options.auth or options.user_header
    ):
        print(
            f"AgentFabric: WARNING: listening on {options.host} without --auth or "
            "--user-header: everyone who reaches it shares the same agents",
            file=sys.stderr,
            flush=True,
        )
    demo.launch(
        server_name=options.host,
        server_port=options.port,
        auth=options.auth or None,
        prevent_thread_lock=not block,
        show_error=False,
        theme=theme(),
        css=CSS,
        allowed_paths=[str(fabric.media)],  # never the knowledge files
        footer_links=[],
        ssr_mode=False,
        quiet=not block,
        app_kwargs={"middleware": [Middleware(SecurityHeaders)]},
    )
    if block:
        fabric.store.close()
    return fabric, demo
