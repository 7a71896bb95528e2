"""Kernels for many conversations: one per session, pre-started, reaped when idle.

:class:`KernelPool` keeps ``size`` kernels started and warm, so a new conversation gets
one at once; :meth:`KernelPool.execute` runs code in the session's kernel (claiming one on
first use), restarting it when it died; idle sessions are closed after ``idle_timeout``;
:meth:`KernelPool.shutdown` (also run at interpreter exit) stops everything.

Kernels are started by a few long-lived starter threads: the sandbox dies with the thread
that started it, so a crash of the host process takes every kernel with it.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from qwen_agent.errors import SandboxError

from .config import OutputLimits, SandboxConfig
from .files import FileInfo, list_files, read_file, write_upload
from .kernel import SandboxedKernel
from .outputs import ExecutionResult
from .sandbox import Slot, check_sandbox
from .stale import PREFIX, remove_root, sweep_stale_roots, write_owner
from .uids import UidAllocator
from .wire import WireProcess

__all__ = ["KernelPool"]

_LIVE: weakref.WeakSet[KernelPool] = weakref.WeakSet()
log = logging.getLogger(__name__)


class _Session:
    def __init__(self, sid: str, kernel: SandboxedKernel) -> None:
        self.id = sid
        self.kernel = kernel
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.closed = False


class KernelPool:
    """Sandboxed kernels keyed by session id (see the module docstring).

    Args:
        config: the sandbox; ``SandboxConfig()`` is bubblewrap with default limits.
        size: kernels kept started and unclaimed.
        max_sessions: most sessions open at once.
        idle_timeout: seconds after which an unused session is closed; None: never.
        limits: how much output is shown to the model.
        starters: threads that start kernels in parallel.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        size: int = 2,
        max_sessions: int = 32,
        idle_timeout: float | None = 1800.0,
        limits: OutputLimits | None = None,
        starters: int = 2,
    ) -> None:
        self.config = config or SandboxConfig()
        check_sandbox(self.config)
        if size < 0 or max_sessions < 1 or starters < 1:
            raise SandboxError("size must be >= 0, max_sessions and starters >= 1")
        if idle_timeout is not None and idle_timeout <= 0:
            raise SandboxError("idle_timeout must be > 0 or None")
        self.size, self.max_sessions, self.idle_timeout = size, max_sessions, idle_timeout
        self.limits = limits or OutputLimits()
        sandboxed = self.config.mode == "bwrap"
        self._uids = (
            UidAllocator(self.config.uid_base, self.config.uid_count) if sandboxed else None
        )
        self._own_root = self.config.root_dir is None
        if self._own_root and sandboxed:
            sweep_stale_roots(self._uids)
        self.root = self.config.root_dir or tempfile.mkdtemp(prefix=PREFIX)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        if self._own_root:
            write_owner(self.root)
        import zmq

        self._zmq = zmq.Context()
        # on every client socket: a message part over the limit is dropped (and the kernel's
        # connection cut) before it is read into memory; few messages wait in a queue
        self._zmq.setsockopt(zmq.MAXMSGSIZE, self.limits.message_bytes)
        self._zmq.setsockopt(zmq.RCVHWM, _QUEUE_MESSAGES)
        # ... and a whole message (all its parts) is bounded on the wire (see wire.py)
        self._wire = WireProcess()
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        #: sessions a close_session() has taken out of _sessions and not yet disposed
        self._closing: set[_Session] = set()
        self._warm: list[SandboxedKernel] = []
        self._starting = 0
        self._creating = 0
        #: the last error of a kernel started in the background, if any
        self.last_error: BaseException | None = None
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._starter, name=f"qwen-ci-starter-{i}", daemon=True)
            for i in range(starters)
        ]
        self._threads.append(
            threading.Thread(target=self._reaper, name="qwen-ci-reaper", daemon=True)
        )
        for t in self._threads:
            t.start()
        _LIVE.add(self)
        self._refill()

    # -- public API -----------------------------------------------------------------------
    def execute(self, session_id: str, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run ``code`` in the session's kernel, creating the session on first use."""
        self._wire.ensure()  # a relay that died is started again (the kernels reconnect)
        session = self._session(session_id)
        with session.lock:
            if session.closed:
                raise SandboxError(f"session {session_id!r} was closed")
            session.last_used = time.monotonic()
            notes: list[str] = []
            if not session.kernel.is_alive():
                self._restart(session)
                notes.append("the kernel had stopped; a new one was started (variables lost)")
            res = session.kernel.execute(code, timeout=timeout, limits=self.limits)
            if session.closed:
                res.notes.append("the session was closed; its kernel and files are gone")
                return res
            if res.kernel_restarted:
                self._restart(session)
                res.notes.append(
                    "a new kernel was started: variables and imports from earlier calls are "
                    "lost, files in the working directory are kept"
                )
            res.notes[:0] = notes
            session.last_used = time.monotonic()
            return res

    def open_session(self, session_id: str) -> None:
        """Claim a kernel for ``session_id`` now (it is otherwise claimed on first use)."""
        self._session(session_id)

    def has_session(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._sessions

    def close_session(self, session_id: str) -> None:
        """Stop the session's kernel and delete its files; unknown ids are ignored.

        The kernel is killed first, so a call running in it ends at once (its result says
        the session was closed) instead of the close waiting for it."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
            if session is not None:
                self._closing.add(session)
        if session is None:
            return
        session.closed = True
        session.kernel.closing = True
        session.kernel.kill()
        try:
            with session.lock:
                _dispose(session.kernel)
        finally:
            with self._lock:
                self._closing.discard(session)
        self._refill()

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def upload(self, session_id: str, name: str, data: bytes | os.PathLike[str]) -> str:
        """Copy a file (its bytes, or a host file given as a :class:`~pathlib.Path`) into the
        session's working directory under a safe version of ``name``; return the path the
        code sees. A ``str`` is refused: it could be meant as the text or as a path."""
        kernel = self._session(session_id).kernel
        safe = write_upload(kernel.slot.work, name, data, kernel.slot.uid)
        return f"{kernel.slot.inside_work()}/{safe}"

    def list_files(self, session_id: str) -> list[FileInfo]:
        """Regular files in the session's working directory (symlinks are not followed)."""
        return list_files(self._session(session_id).kernel.slot.work)

    def read_file(self, session_id: str, path: str, max_bytes: int = 64 * 2**20) -> bytes:
        """The content of a regular file in the working directory; ``path`` is relative to
        it or a path under the directory the code sees."""
        kernel = self._session(session_id).kernel
        inside = kernel.slot.inside_work().rstrip("/") + "/"
        if path.startswith(inside):
            path = path[len(inside) :]
        return read_file(kernel.slot.work, path, max_bytes)

    def working_dir(self, session_id: str) -> str:
        """The host path of the session's working directory (read it with read_file)."""
        return self._session(session_id).kernel.slot.work

    def uids_used(self) -> list[int]:
        """Every uid this pool's sandboxes ran as (for audits and leak checks)."""
        return sorted(self._uids.ever_used) if self._uids is not None else []

    def warm_count(self) -> int:
        with self._lock:
            return len(self._warm)

    def wait_warm(self, count: int | None = None, timeout: float = 60.0) -> bool:
        """Wait until ``count`` (default: ``size``) kernels are warm; False on timeout."""
        want = self.size if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.warm_count() >= want:
                return True
            time.sleep(0.02)
        return self.warm_count() >= want

    def shutdown(self) -> None:
        """Stop all kernels and threads, delete all session files; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        for _ in self._threads:
            self._jobs.put(None)
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            sessions += list(self._closing)  # a close waiting on a call: dispose them too
            warm, self._warm = self._warm, []
        for s in sessions:
            s.closed = True
            s.kernel.closing = True
            s.kernel.kill()
        for s in sessions:
            _dispose(s.kernel)
        for k in warm:
            _dispose(k)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=30)
        while True:  # jobs queued behind the stop signals: fail them, nobody runs them
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and not job[1].done():
                job[1].set_exception(SandboxError("the kernel pool was shut down"))
        with self._lock:  # kernels a starter finished while we were stopping
            late, self._warm = self._warm, []
        for k in late:
            _dispose(k)
        self._zmq.destroy(linger=0)
        self._wire.close()
        if self._own_root:
            remove_root(self.root)
        _LIVE.discard(self)

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- sessions -------------------------------------------------------------------------
    def _session(self, session_id: str) -> _Session:
        if not isinstance(session_id, str) or not session_id:
            raise SandboxError("session_id must be a non-empty string")
        if self._stop.is_set():
            raise SandboxError("the kernel pool was shut down")
        with self._lock:
            s = self._sessions.get(session_id)
            if s is not None:
                return s
            if len(self._sessions) + self._creating >= self.max_sessions:
                raise SandboxError(
                    f"too many open sessions ({self.max_sessions}); close some with "
                    "close_session() or raise max_sessions"
                )
            kernel = self._warm.pop(0) if self._warm else None
            self._creating += 1
        try:
            if kernel is None:
                kernel = self._run_in_starter(self._new_kernel).result()
        finally:
            with self._lock:
                self._creating -= 1
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None and not self._stop.is_set():
                s = self._sessions[session_id] = _Session(session_id, kernel)
                kernel = None
        if kernel is not None:  # another thread made the session first, or we stopped
            _dispose(kernel)
            if s is None:
                raise SandboxError("the kernel pool was shut down")
        self._refill()
        return s

    def _restart(self, session: _Session) -> None:
        old = session.kernel
        old.shutdown()
        slot = old.slot
        slot.reset_tmp()

        def start() -> SandboxedKernel:
            k = self._kernel(slot)
            k.start()
            return k

        session.kernel = self._run_in_starter(start).result()

    # -- background threads ---------------------------------------------------------------
    def _kernel(self, slot: Slot) -> SandboxedKernel:
        return SandboxedKernel(slot, self.config, self._zmq, self._wire, self.limits.message_bytes)

    def _new_kernel(self) -> SandboxedKernel:
        slot = Slot(self.config, self.root, self._uids, self.limits.image_store_mb * 2**20)
        kernel = self._kernel(slot)
        try:
            kernel.start()
        except BaseException:
            slot.close()
            raise
        return kernel

    def _run_in_starter(self, fn: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        if self._stop.is_set():
            fut.set_exception(SandboxError("the kernel pool was shut down"))
        else:
            self._jobs.put((fn, fut))
        return fut

    def _refill(self) -> None:
        with self._lock:
            missing = self.size - len(self._warm) - self._starting
            room = self.max_sessions - len(self._sessions) - len(self._warm) - self._starting
            n = max(0, min(missing, room))
            self._starting += n
        for _ in range(n):
            self._run_in_starter(self._new_kernel).add_done_callback(self._warmed)

    def _warmed(self, fut: Future[Any]) -> None:
        exc = fut.exception()
        with self._lock:
            self._starting -= 1
            if exc is None and not self._stop.is_set():
                self._warm.append(fut.result())
                return
        if exc is None:
            _dispose(fut.result())
        elif not self._stop.is_set():
            self.last_error = exc  # the next session's own start raises it to its caller
            log.warning("could not pre-start a sandboxed kernel: %s", exc)

    def _starter(self) -> None:
        try:
            self._serve_jobs()
        finally:  # jupyter_client's sync calls left an event loop in this thread
            from jupyter_core.utils import ensure_event_loop

            loop = ensure_event_loop()
            if not loop.is_running():
                loop.close()

    def _serve_jobs(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, fut = job
            if self._stop.is_set():
                fut.set_exception(SandboxError("the kernel pool was shut down"))
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting caller
                fut.set_exception(exc)

    def _reaper(self) -> None:
        interval = min(30.0, max(0.2, (self.idle_timeout or 30.0) / 4))
        while not self._stop.wait(interval):
            if self.idle_timeout is None:
                continue
            now = time.monotonic()
            with self._lock:
                idle = [
                    sid
                    for sid, s in self._sessions.items()
                    if now - s.last_used > self.idle_timeout and not s.lock.locked()
                ]
            for sid in idle:
                self.close_session(sid)


# zmq RCVHWM: messages a client socket queues before the kernel has to wait (the kernel's
# own send queue holds a burst): with message_bytes, what a session can park in the host
_QUEUE_MESSAGES = 1


def _dispose(kernel: SandboxedKernel) -> None:
    kernel.shutdown()
    kernel.slot.close()


@atexit.register
def _shutdown_all() -> None:
    for pool in list(_LIVE):
        pool.shutdown()
