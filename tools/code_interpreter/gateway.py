"""Kernels on a remote Jupyter Kernel Gateway or Enterprise Gateway (the scale-out path).

:class:`GatewayPool` has the same ``execute`` / ``close_session`` / ``shutdown`` API as
:class:`~.pool.KernelPool`: each session gets a kernel made with ``POST /api/kernels``, code
goes over the kernel's ``/channels`` WebSocket (Jupyter's JSON message protocol), a timeout
becomes ``POST .../interrupt`` and, if the kernel does not stop, ``POST .../restart``.
Isolation is the gateway's job. The WebSocket uses tornado (a jupyter_client dependency) in
one background event-loop thread per pool.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from qwen_agent.errors import SandboxError

from .config import GatewayConfig, OutputLimits
from .outputs import ExecutionResult, OutputCollector

__all__ = ["GatewayPool"]


class _RemoteKernel:
    def __init__(self, pool: GatewayPool, kernel_id: str) -> None:
        self.pool, self.id = pool, kernel_id
        self.session = uuid.uuid4().hex
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ws: Any = None
        self.lock = threading.Lock()
        #: an interrupt went out but the code ended on its own (see KernelPool's kernel)
        self.interrupt_pending = False

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "username": "qwen-agent",
                "session": self.session,
                "msg_type": msg_type,
                "version": "5.3",
                "date": datetime.now(timezone.utc).isoformat(),
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": channel,
            "buffers": [],
        }
        self.pool._call(self.ws.write_message, json.dumps(msg))
        return msg_id


class GatewayPool:
    """Sessions whose kernels run on a Jupyter gateway at ``config.url``."""

    def __init__(self, config: GatewayConfig, *, limits: OutputLimits | None = None) -> None:
        import httpx

        self.config = config
        self.limits = limits or OutputLimits()
        headers = dict(config.headers)
        if config.auth_token:
            headers["Authorization"] = f"token {config.auth_token}"
        self._headers = headers
        self._http = httpx.Client(
            base_url=config.url.rstrip("/"),
            headers=headers,
            timeout=config.request_timeout,
            verify=config.validate_cert,
        )
        self._images = tempfile.mkdtemp(prefix="qwen-ci-gw-")
        self._sessions: dict[str, _RemoteKernel] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="qwen-ci-gateway", daemon=True
        )
        self._thread.start()

    # -- HTTP and the event loop ----------------------------------------------------------
    def _request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise SandboxError(f"kernel gateway {self.config.url}: {exc}") from None
        if r.status_code >= 400:
            raise SandboxError(
                f"kernel gateway {method} {path} failed: HTTP {r.status_code} {r.text[:300]}"
            )
        return r.json() if r.content else None

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Call ``fn`` in the event-loop thread and wait for its (awaited) result."""
        fut = asyncio.run_coroutine_threadsafe(_in_loop(fn, *args, **kw), self._loop)
        return fut.result(self.config.request_timeout + 5)

    def _connect(self, kernel: _RemoteKernel) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = self.config.url.rstrip("/").replace("http", "ws", 1)
        req = HTTPRequest(
            f"{url}/api/kernels/{kernel.id}/channels?session_id={kernel.session}",
            headers=self._headers,
            validate_cert=self.config.validate_cert,
            request_timeout=self.config.request_timeout,
        )

        # this connection's own inbox: once a reconnect gives the kernel a new one, what
        # the old connection still says (its close above all) cannot reach the new calls
        inbox = kernel.inbox

        def on_message(text: str | bytes | None) -> None:
            if text is None:
                inbox.put({"msg_type": "_closed", "content": {}})
            elif isinstance(text, str):
                try:
                    msg = json.loads(text)
                except ValueError:
                    msg = None
                ok = isinstance(msg, dict) and isinstance(msg.get("content", {}), dict)
                ok = ok and isinstance(msg.get("parent_header", {}), dict)
                inbox.put(msg if ok else {"msg_type": "_malformed", "content": {}})

        try:
            kernel.ws = self._call(
                websocket_connect, req, on_message_callback=on_message, max_message_size=2**26
            )
        except Exception as exc:  # tornado raises several types for a failed handshake
            raise SandboxError(f"cannot open the kernel's WebSocket: {exc}") from None

    # -- sessions -------------------------------------------------------------------------
    def _session(self, session_id: str) -> _RemoteKernel:
        if self._closed:
            raise SandboxError("the gateway pool was shut down")
        with self._lock:
            k = self._sessions.get(session_id)
        if k is not None:
            return k
        body: dict[str, Any] = {"name": self.config.kernel_name}
        if self.config.env:
            body["env"] = dict(self.config.env)
        info = self._request("POST", "/api/kernels", json=body)
        k = _RemoteKernel(self, info["id"])
        try:
            self._connect(k)
            self._wait_ready(k)
        except BaseException:
            self._delete(k)
            raise
        with self._lock:
            if session_id in self._sessions:  # made meanwhile by another thread
                other = self._sessions[session_id]
            else:
                self._sessions[session_id], other = k, None
        if other is not None:
            self._delete(k)
            return other
        return k

    def _wait_ready(self, k: _RemoteKernel) -> None:
        """Until the kernel answers on shell *and* IOPub: what it publishes before the
        gateway's IOPub subscription is connected is lost."""
        deadline = time.monotonic() + self.config.request_timeout
        while time.monotonic() < deadline:
            msg_id = k.send("shell", "kernel_info_request", {})
            seen: set[str] = set()
            end = min(deadline, time.monotonic() + 1.0)
            while time.monotonic() < end and len(seen) < 2:
                try:
                    msg = k.inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    seen.add(str(msg.get("channel")))
            if {"shell", "iopub"} <= seen:
                self._drain(k)
                return
        raise SandboxError("the gateway's kernel did not answer")

    @staticmethod
    def _drain(k: _RemoteKernel) -> None:
        for _ in range(1000):
            try:
                k.inbox.get(timeout=0.05)
            except queue.Empty:
                return

    def open_session(self, session_id: str) -> None:
        self._session(session_id)

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def execute(self, session_id: str, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run ``code`` in the session's remote kernel."""
        k = self._session(session_id)
        timeout = timeout if timeout is not None else self.config.timeout
        with k.lock:
            if k.interrupt_pending:  # a late interrupt lands in a short cell of its own
                k.interrupt_pending = False
                settle = k.send(
                    "shell",
                    "execute_request",
                    {"code": "import time as _t; _t.sleep(0.05); del _t", "silent": True,
                     "store_history": False, "allow_stdin": False, "user_expressions": {},
                     "stop_on_error": False},
                )  # fmt: skip
                quiet = OutputCollector(self.limits, self._images, "gw-settle")
                grace = self.config.interrupt_grace
                self._collect(k, settle, quiet, time.monotonic() + grace, grace)
            col = OutputCollector(self.limits, self._images, f"gw-{os.urandom(3).hex()}")
            start = time.monotonic()
            msg_id = k.send(
                "shell",
                "execute_request",
                {"code": code, "silent": False, "store_history": True, "allow_stdin": False,
                 "user_expressions": {}, "stop_on_error": True},
            )  # fmt: skip
            res = self._collect(k, msg_id, col, start + timeout, timeout)
            res.duration = time.monotonic() - start
            return res

    def _collect(
        self, k: _RemoteKernel, msg_id: str, col: OutputCollector, deadline: float, timeout: float
    ) -> ExecutionResult:
        interrupted_at: float | None = None
        timed_out = restarted = False
        while True:
            try:
                msg = k.inbox.get(timeout=0.1)
            except queue.Empty:
                msg = None
            if msg is not None and msg.get("msg_type") == "_malformed":
                col.malformed()
            elif msg is not None:
                if msg.get("msg_type") == "_closed":
                    col.note("the connection to the kernel gateway was lost")
                    restarted = True
                    break
                state = msg.get("content", {}).get("execution_state")
                if msg.get("msg_type") == "status" and state in ("restarting", "dead"):
                    col.note("the kernel died while running this code; the gateway restarted it")
                    restarted = True
                    break
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    if msg.get("channel") == "iopub" and state == "idle":
                        break
                    if msg.get("channel") == "iopub":
                        col.add(msg)
            now = time.monotonic()
            if interrupted_at is None and (now >= deadline or col.flooded):
                timed_out = not col.flooded
                col.note(
                    f"execution timed out after {timeout:g} s and was interrupted"
                    if timed_out
                    else "the output was flooding; the execution was interrupted"
                )
                interrupted_at = now
                self._request("POST", f"/api/kernels/{k.id}/interrupt")
            elif interrupted_at is not None and now - interrupted_at > self.config.interrupt_grace:
                col.note("the kernel did not stop after the interrupt, so it was restarted")
                self._request("POST", f"/api/kernels/{k.id}/restart")
                restarted = True
                break
        res = col.result()
        res.timed_out, res.kernel_restarted = timed_out, restarted
        if interrupted_at is not None and not restarted:
            k.interrupt_pending = res.error is None or res.error.ename != "KeyboardInterrupt"
        if restarted:
            res.notes.append("variables and imports from earlier calls are lost")
            self._reconnect(k)
        return res

    def _reconnect(self, k: _RemoteKernel) -> None:
        if k.ws is not None:  # closed on the loop that owns it, as _delete does
            self._loop.call_soon_threadsafe(k.ws.close)
        k.inbox = queue.Queue()
        k.session = uuid.uuid4().hex  # a new session: no replay of the old one's buffer
        self._connect(k)
        self._wait_ready(k)

    def close_session(self, session_id: str) -> None:
        with self._lock:
            k = self._sessions.pop(session_id, None)
        if k is not None:
            self._delete(k)

    def _delete(self, k: _RemoteKernel) -> None:
        try:
            if k.ws is not None:
                self._loop.call_soon_threadsafe(k.ws.close)
        finally:
            try:
                self._request("DELETE", f"/api/kernels/{k.id}")
            except SandboxError:
                pass  # already gone on the gateway

    def upload(self, session_id: str, name: str, data: Any) -> str:
        raise SandboxError("file upload is not available with a kernel gateway")

    def list_files(self, session_id: str) -> list[Any]:
        raise SandboxError("file listing is not available with a kernel gateway")

    def read_file(self, session_id: str, path: str, max_bytes: int = 0) -> bytes:
        raise SandboxError("file download is not available with a kernel gateway")

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sid in self.sessions():
            self.close_session(sid)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._http.close()
        shutil.rmtree(self._images, ignore_errors=True)

    def __enter__(self) -> GatewayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


async def _in_loop(fn: Any, *args: Any, **kw: Any) -> Any:
    out = fn(*args, **kw)
    return (await out) if asyncio.isfuture(out) or asyncio.iscoroutine(out) else out
