"""The ``code_interpreter`` tool: one sandboxed kernel per conversation.

    pool = KernelPool(SandboxConfig(memory_mb=512, timeout=30))
    agent = Agent(llm=..., tools=[CodeInterpreter(session_id="conv-42", pool=pool)])
    ...
    pool.close_session("conv-42")   # or let the pool reap it when idle

Without ``pool`` the tool uses :func:`default_pool`, a process-wide :class:`KernelPool`
with default limits, made on first use and shut down at exit. Images in results are files
in the session's directory on the host; they are deleted with the session, so copy them to
keep them. Serve the session's files with :meth:`CodeInterpreter.read_file`, never by path:
the code inside can replace them with symlinks.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Protocol

from qwen_agent.messages import Content
from qwen_agent.tool import Tool

from .config import SandboxConfig
from .files import FileInfo
from .outputs import ExecutionResult
from .sandbox import check_sandbox

__all__ = ["CodeInterpreter", "default_pool"]


class KernelBackend(Protocol):
    """What the tool needs from a pool: :class:`KernelPool` or :class:`GatewayPool`."""

    def execute(
        self, session_id: str, code: str, timeout: float | None = None
    ) -> ExecutionResult: ...

    def close_session(self, session_id: str) -> None: ...


_default: Any = None
_default_lock = threading.Lock()


def default_pool() -> Any:
    """The process-wide :class:`KernelPool` (bubblewrap, default limits), made on first use."""
    global _default
    with _default_lock:
        if _default is None or _default._stop.is_set():
            from .pool import KernelPool

            _default = KernelPool()
        return _default


class CodeInterpreter(Tool):
    """Runs Python in the kernel of one conversation (``session_id``); state persists
    between calls. Returns the printed output, the result value, a trimmed traceback and
    any plots as images."""

    name = "code_interpreter"
    description = "Run Python code in a sandboxed Jupyter kernel and return what it prints."
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "the Python code to run"}},
        "required": ["code"],
    }

    def __init__(
        self,
        session_id: str | None = None,
        pool: KernelBackend | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        if pool is None:
            check_sandbox(SandboxConfig())  # refuse early, with the reason, if no sandbox
        self.session_id = session_id or f"session-{os.urandom(8).hex()}"
        self._pool = pool
        self.exec_timeout = timeout
        cfg = getattr(pool, "config", None) or SandboxConfig()
        run = timeout if timeout is not None else cfg.timeout
        # the agent's limit: the run, an interrupt, and a kernel restart must fit in it
        self.timeout = run + cfg.interrupt_grace + getattr(cfg, "startup_timeout", 30.0) + 10

    @property
    def pool(self) -> Any:
        if self._pool is None:
            self._pool = default_pool()
        return self._pool

    def call(self, code: str) -> Content:  # type: ignore[override]
        """Run ``code``; its outputs as content items, which print as their text."""
        return Content(self.run(code).to_content())

    def run(self, code: str) -> ExecutionResult:
        """Run ``code`` and return the structured result."""
        return self.pool.execute(self.session_id, code, timeout=self.exec_timeout)

    # -- files ----------------------------------------------------------------------------
    def upload(self, name: str, data: bytes | os.PathLike[str]) -> str:
        """Copy a user's file (bytes, or a host file as a :class:`~pathlib.Path`; a ``str``
        is refused) into the working directory; returns the path the code sees."""
        return self.pool.upload(self.session_id, name, data)

    def list_files(self) -> list[FileInfo]:
        return self.pool.list_files(self.session_id)

    def read_file(self, path: str, max_bytes: int = 64 * 2**20) -> bytes:
        return self.pool.read_file(self.session_id, path, max_bytes)

    def close(self) -> None:
        """Stop this conversation's kernel and delete its files."""
        if self._pool is not None:
            self._pool.close_session(self.session_id)
