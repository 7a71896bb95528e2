"""Running the app: :class:`Server` (uvicorn in a background thread) and the API keys
``qwen-agent serve`` reads from the environment."""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

from qwen_agent.errors import BackendConnectionError
from qwen_agent.llm import ChatModel
from qwen_agent.serving.app import ServeConfig, create_app

__all__ = ["Server", "api_key_from_env", "API_KEY_ENV"]

API_KEY_ENV = "QWEN_AGENT_API_KEY"


class Server:
    """Runs the app with uvicorn in a background thread: for tests, notebooks and Python
    programs (``qwen-agent serve`` runs it in the foreground). ``port=0`` picks a free
    port; use as a context manager, or ``start()`` / ``stop()``."""

    _ids = itertools.count()

    def __init__(
        self,
        models: ChatModel | dict[str, ChatModel],
        config: ServeConfig | None = None,
        agents: list[Any] = (),  # type: ignore[assignment]
        **options: Any,
    ) -> None:
        config = config or ServeConfig()
        if options:
            config = config.model_copy(
                update=ServeConfig.model_validate({**config.model_dump(), **options}).model_dump()
            )
        self.config = config
        self.app = create_app(models, config, agents)
        self.port = config.port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL for OpenAI clients, e.g. ``http://127.0.0.1:8000/v1``."""
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    def start(self) -> Server:
        import socket

        import uvicorn

        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only for sockets
        # whose proto says TCP; with proto 0 every reply waits ~40 ms on delayed ACKs
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        cfg = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            limit_concurrency=self.config.max_connections,
            timeout_graceful_shutdown=2,
            backlog=2048,
        )
        self._server = uvicorn.Server(cfg)
        self._server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"qwen-agent-serve-{next(self._ids)}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise BackendConnectionError("the server did not start")
            time.sleep(0.01)
        self._sock = sock
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sock.close()
        self.app.state.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def api_key_from_env() -> list[str] | None:
    """The keys in ``$QWEN_AGENT_API_KEY`` (comma-separated), or None."""
    keys = [k.strip() for k in os.environ.get(API_KEY_ENV, "").split(",") if k.strip()]
    return keys or None
