"""The event-loop thread and one connection per server: start, call, check, restart, stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import os
import sys
import threading
from typing import Any

from .config import HTTPServer, MCPServerError, ServerConfig, StdioServer
from .process import (
    StderrTail,
    alive,
    exited,
    group_alive,
    kill_group,
    launch_command,
    stop_group,
)
from .results import Files, select_tools

log = logging.getLogger("qwen_agent.tools.mcp")

#: seconds for one server to stop: the SDK closes stdin, waits 2 s, SIGTERM, 2 s, SIGKILL;
#: then what is left of its process group gets SIGTERM, GRACE, SIGKILL
STOP_TIMEOUT = 8.0
_DETAILS = f"the host's log (logger {log.name!r}) has the details"
_AGAIN = object()  # a call to make once more, on a new session


def preload(configs: Any) -> None:
    """Import the SDK's client modules the servers need, before any startup_timeout runs
    (an import on the loop thread would hold the loop, and the clock, for seconds)."""
    importlib.import_module("mcp")
    for cfg in configs:
        kind = "stdio" if isinstance(cfg, StdioServer) else "streamable_http"
        importlib.import_module(f"mcp.client.{kind}")


class Runtime:
    """The loop thread and the connections. MCPServers' finalizer calls :meth:`shutdown`,
    so nothing here refers back to the MCPServers object."""

    def __init__(self, image_dir: str | os.PathLike[str] | None) -> None:
        self.conns: dict[str, Connection] = {}
        self.files = Files(image_dir)
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Any, timeout: float) -> Any:
        """Run ``coro`` on the loop thread and wait for it at most ``timeout`` seconds."""
        with self._lock:
            if self.closed:
                coro.close()
                raise MCPServerError("the MCP servers were closed")
            if self.loop is None:
                self.loop = asyncio.new_event_loop()
                self.thread = threading.Thread(
                    target=self.loop.run_forever, name="qwen-agent-mcp", daemon=True
                )
                self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise MCPServerError(f"the MCP call did not finish within {timeout:g} s") from None

    async def start_all(self) -> None:
        results = await asyncio.gather(
            *(c.start(strict=True) for c in self.conns.values()), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise MCPServerError("\n".join(map(str, errors)))

    async def _stop_all(self) -> None:
        for conn in self.conns.values():
            conn.closed = True
        await asyncio.gather(*(c.stop() for c in self.conns.values()), return_exceptions=True)

    def shutdown(self) -> None:
        if self.closed:
            return
        if self.thread is not None and threading.current_thread() is self.thread:
            raise RuntimeError("MCPServers.close() cannot run on its own event-loop thread")
        try:
            if self.loop is not None and self.conns:
                self.run(self._stop_all(), STOP_TIMEOUT + 4)
        except Exception as exc:  # the kill below is the fallback
            log.warning("stopping the MCP servers: %s", exc)
        finally:
            with self._lock:
                self.closed = True
            for conn in self.conns.values():
                conn.kill()
            if self.loop is not None and self.thread is not None:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(5)
                if not self.thread.is_alive():
                    self.loop.close()
            self.files.cleanup()


class Connection:
    """One server: its session lives in one long-lived task (``_run``), which enters and
    leaves the SDK's context managers; calls run as tasks of their own."""

    def __init__(self, name: str, config: ServerConfig) -> None:
        self.name, self.config = name, config
        self.session: Any = None
        self.runner: asyncio.Task[None] | None = None
        self.redactor = config.redactor()
        self._ready: asyncio.Future[Any] | None = None
        self._phase = "its process did not start"  # what a start that times out waits for
        self.listed: list[Any] = []  # the tools the last start listed
        self.dead: str | None = "not started"  # why the session cannot be used now
        self.suspect = False  # a call timed out: ping before the next one
        self.closed = False  # MCPServers.close() is stopping it
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stderr = StderrTail()
        self.failure: BaseException | None = None  # why the last session task ended
        self._verb = "start" if isinstance(config, StdioServer) else "connect"

    @property
    def pid(self) -> int | None:
        return self._stderr.pid if self.runner is not None else None

    def _who(self) -> str:
        """How errors name the server: by its name only (they may reach the model and
        served clients); :meth:`_log` writes the details to the host's log."""
        return f"MCP server {self.name!r}"

    def _log(self, what: str, exc: BaseException | None = None) -> None:
        """``what`` happened, with the command line or URL, the error and the end of
        stderr, secrets masked, in the host's log."""
        why = f": {_reason(exc)}" if exc is not None else ""
        tail = self._stderr.tail()
        tail = f"; its stderr ends with:\n{tail}" if tail else ""
        text = self.redactor.text(f"({self.redactor.describe()}) {what}{why}{tail}")
        log.warning("MCP server %r %s", self.name, text)

    async def start(self, strict: bool = False) -> None:
        """Start the server (stdio) or connect to it (HTTP), and list its tools (those the
        config's ``include`` / ``exclude`` allow; ``strict``: an unknown name in
        ``include`` is a ConfigError)."""
        ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ready, self._stop, self.failure = ready, asyncio.Event(), None
        self._phase = "its process did not start"
        self.runner = asyncio.create_task(self._run(ready, self._stop), name=f"mcp-{self.name}")
        timeout = self.config.startup_timeout
        try:
            session, listed = await asyncio.wait_for(ready, timeout)
        except (Exception, asyncio.CancelledError) as exc:
            hung = not isinstance(exc, Exception) or isinstance(exc, asyncio.TimeoutError)
            if hung:
                self._stderr.drain()  # its pid, if not read yet
                self.kill()  # no graceful stop to wait out
                why, cause = f"did not start within {timeout:g} s: {self._phase}", None
            else:
                why, cause = f"could not {self._verb} ({await self._public(exc)})", exc
            await self.stop()
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._log(why, cause)
            raise MCPServerError(f"{self._who()} {why}; {_DETAILS}", self.name) from None
        try:
            self.listed = select_tools(self.name, self.config, listed, strict)
        except BaseException:
            await self.stop()
            raise
        self.session = session
        self.dead, self.suspect = None, False

    async def _public(self, exc: BaseException) -> str:
        """What may be said of a failed start: no text of the error (it may hold the URL
        or a command line), only what kind of failure it was."""
        leaf = _leaf(exc)
        if isinstance(leaf, FileNotFoundError) and isinstance(self.config, StdioServer):
            return "its command was not found"
        status = getattr(getattr(leaf, "response", None), "status_code", None)
        if isinstance(status, int):
            return f"HTTP status {status}"
        if isinstance(self.config, StdioServer) and await exited(self._stderr.pid, 0.3):
            return "it exited while starting"
        return type(leaf).__name__

    async def _run(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        # The SDK checks results with jsonschema, imported on the first call (seconds where
        # rfc3987-syntax is installed): import it while the server starts, not in a call.
        schema = asyncio.get_running_loop().run_in_executor(
            None, importlib.import_module, "jsonschema"
        )
        try:
            from mcp import ClientSession

            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._open(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                self._phase = "it did not answer MCP's initialize request"
                await session.initialize()
                self._phase = "it did not answer tools/list"
                listed = await _list_tools(session)
                self._phase = "the tools' schemas were still being checked"
                await schema
                if not ready.done():
                    ready.set_result((session, listed))
                await stop.wait()
        except Exception as exc:  # the transport failed: the server died or went away
            if not ready.done():
                ready.set_exception(exc)
            elif not stop.is_set():
                self.failure = exc
                why = self.redactor.text(_reason(exc))
                log.info("MCP server %r: the connection ended: %s", self.name, why)

    async def _open(self, stack: contextlib.AsyncExitStack) -> Any:
        cfg = self.config
        if isinstance(cfg, HTTPServer):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            timeout = httpx2.Timeout(
                max(cfg.timeout, 30.0), connect=cfg.startup_timeout, read=max(300, cfg.timeout)
            )
            client = httpx2.AsyncClient(headers=cfg.headers, timeout=timeout)
            await stack.enter_async_context(client)
            return await stack.enter_async_context(
                streamable_http_client(cfg.url, http_client=client)
            )
        from mcp.client.stdio import StdioServerParameters, stdio_client

        command, args = launch_command(cfg)
        errlog: Any = sys.stderr
        if os.name == "posix":  # the server's stderr: kept for error messages
            read_fd, errlog = os.pipe()
            self._stderr = StderrTail(read_fd)
        params = StdioServerParameters(command=command, args=args, env=cfg.env or None, cwd=cfg.cwd)
        try:
            return await stack.enter_async_context(stdio_client(params, errlog=errlog))
        finally:
            if isinstance(errlog, int):
                os.close(errlog)  # the child has its copy

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call ``tool`` (restarting the server first if it is gone); its CallToolResult."""
        result = await self._call(tool, arguments, again=True)
        if result is _AGAIN:  # the HTTP server forgot the session (it restarted): not run
            result = await self._call(tool, arguments, again=False)
        return result

    async def _call(self, tool: str, arguments: dict[str, Any], again: bool) -> Any:
        await self._ensure()
        session, runner = self.session, self.runner
        task = asyncio.ensure_future(session.call_tool(tool, arguments))
        task.add_done_callback(_retrieve)
        done, _ = await asyncio.wait(
            {task, runner}, timeout=self.config.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        fix = "restarted" if isinstance(self.config, StdioServer) else "reconnected"
        if task in done:
            try:
                return task.result()
            except Exception as exc:
                expired = isinstance(self.config, HTTPServer) and _session_expired(exc)
                if expired and session is self.session:
                    self.dead = "the session expired"
                if expired and again:
                    return _AGAIN
                if not expired and not _disconnected(exc):  # the server refused it: say why
                    why = self.redactor.text(_reason(exc))
                    raise MCPServerError(
                        f"the call to {tool!r} on MCP server {self.name!r} failed: {why}",
                        self.name,
                    ) from None
                why = self.redactor.text(_reason(exc))
        else:
            task.cancel()
            if runner not in done:
                if session is self.session:
                    self.suspect = True
                raise MCPServerError(
                    f"MCP server {self.name!r} did not answer the call to {tool!r} within "
                    f"{self.config.timeout:g} s; the call was cancelled (the server is checked, "
                    f"and {fix} if it does not answer, at the next call)",
                    self.name,
                )
            why = "the connection ended"
        if self.closed:
            raise MCPServerError(f"the MCP servers were closed during the call to {tool!r}")
        if runner is not None and not runner.done():  # the transport's own error says more
            await asyncio.wait({runner}, timeout=0.2)
        if runner is not None and runner.done() and self.failure is not None:
            why = self.redactor.text(_reason(self.failure))
        if session is self.session:
            self.dead = why
        gone = isinstance(self.config, StdioServer) and await exited(self._stderr.pid)
        self._stderr.drain()
        what = f"{'exited' if gone else 'dropped the connection'} during the call to {tool!r}"
        self._log(f"{what} ({why})")
        raise MCPServerError(
            f"{self._who()} {what}; it is {fix} at the next call; {_DETAILS}", self.name
        )

    async def _ensure(self) -> None:
        async with self._lock:
            if self.dead is None and (self.runner is None or self.runner.done()):
                self.dead = "the connection ended"
            pid = self._stderr.pid
            if self.dead is None and pid is not None and not alive(pid):
                self.dead = "its process exited"  # between calls: restart before this one
            if self.dead is None and self.suspect:
                try:
                    await asyncio.wait_for(self.session.send_ping(), ping_timeout(self.config))
                    self.suspect = False
                except Exception:
                    self.dead = "it did not answer a ping after a call timed out"
                    self.kill()  # hung: no need to wait out a graceful stop
            if self.dead is not None:
                if self.dead != "not started":
                    log.warning("restarting MCP server %r: %s", self.name, self.dead)
                await self.stop()
                await self.start()  # not strict: the tools were chosen at the first start

    async def stop(self) -> None:
        """End the session task: the SDK stops the server process (stdin, SIGTERM, SIGKILL);
        then what is left of its process group (workers it started) is stopped too."""
        runner, self.runner, self.session = self.runner, None, None
        ready = self._ready
        self.dead = self.dead or "stopped"
        if runner is not None:
            self._stop.set()
            up = ready is not None and ready.done() and not ready.cancelled()
            if not (up and ready.exception() is None):
                runner.cancel()  # still starting: it does not wait for the stop event
            await asyncio.wait({runner}, timeout=STOP_TIMEOUT)
            if not runner.done():
                runner.cancel()
                await asyncio.wait({runner}, timeout=2)
        await stop_group(self._stderr.pgid)
        self._stderr.close()

    def kill(self) -> None:
        """SIGKILL the server's process group now (a hung server; the fallback at close)."""
        if group_alive(self._stderr.pgid):
            kill_group(self._stderr.pgid)


async def _list_tools(session: Any) -> list[Any]:
    from mcp.types import PaginatedRequestParams

    listed, cursor = [], None
    for _ in range(100):  # pages
        page = await session.list_tools(
            params=PaginatedRequestParams(cursor=cursor) if cursor else None
        )
        # a tool that must run as a task (taskSupport "required") cannot be called by this
        # client (the SDK has no tasks): the server would refuse every call to it
        listed += [t for t in page.tools if not _task_only(t)]
        cursor = page.next_cursor
        if not cursor:
            break
    return listed


def _task_only(tool: Any) -> bool:
    execution = getattr(tool, "execution", None)
    if getattr(execution, "task_support", None) == "required":
        log.info("MCP tool %r must run as a task (not supported here): skipped", tool.name)
        return True
    return False


def ping_timeout(cfg: ServerConfig) -> float:
    return min(cfg.timeout, 5.0)


def _leaf(exc: BaseException) -> BaseException:
    while getattr(exc, "exceptions", None):  # an ExceptionGroup from a task group
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _reason(exc: BaseException) -> str:
    exc = _leaf(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _disconnected(exc: BaseException) -> bool:
    """Whether a failed request means the connection is gone (not a refusal)."""
    import anyio
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    exc = _leaf(exc)
    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError)) or (
        type(exc).__module__.startswith(("httpx", "httpcore"))
    )


def _session_expired(exc: BaseException) -> bool:
    """An HTTP server answered 404 for our session id: it no longer knows the session (the
    request was not run); the spec says to start a new one."""
    from mcp.shared.exceptions import MCPError
    from mcp.types import INVALID_REQUEST

    exc = _leaf(exc)
    return (
        isinstance(exc, MCPError)
        and exc.code == INVALID_REQUEST
        and exc.message in ("Session not found", "Session terminated")
    )


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # no "exception was never retrieved" for a call given up on
