"""What the server runs on: a model's gate (capacity plus a fair queue), the pump that
iterates a generation in a worker thread, the Prometheus metrics, and the disconnect
watch."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from qwen_agent.errors import RunCancelled
from qwen_agent.serving.wire import WireError

__all__ = ["Gate", "Pump", "Metrics", "ThreadSlot", "ClientLeft", "wait_disconnect"]

log = logging.getLogger("qwen_agent.serving")


# -- the gate: capacity plus a fair queue ----------------------------------------------------


class Gate:
    def __init__(self, capacity: int, max_queue: int, timeout: float) -> None:
        self.capacity, self.max_queue, self.timeout = capacity, max_queue, timeout
        self.running = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self.waiters if not w.done())

    async def acquire(self) -> None:
        if self.running < self.capacity and not self.waiting:
            self.running += 1
            return
        if self.waiting >= self.max_queue:
            raise WireError(
                429,
                f"the server is busy: {self.running} running and {self.waiting} waiting; "
                "retry later",
                code="rate_limit_exceeded",
                kind="rate_limit_error",
                headers={"Retry-After": "1"},
            )
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.timeout)
        except TimeoutError:
            if fut.done():  # granted just now: give it back
                self.release()
            else:
                fut.cancel()
            raise WireError(
                503,
                f"the request waited {self.timeout:g} s in the queue; retry later",
                code="queue_timeout",
                kind="server_error",
                headers={"Retry-After": "5"},
            ) from None
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            else:
                fut.cancel()
            raise

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on: running stays the same
                return
        self.running -= 1


# -- running a generation in a thread --------------------------------------------------------

_END = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Pump:
    """Items of ``make()`` iterated in a worker thread (of ``pool``, else a new one), read
    with ``async for`` one at a time or with :meth:`batch` all that are ready; the
    iteration stops (and its generator is closed) once ``cancel`` is set or
    :meth:`aclose` is called."""

    def __init__(
        self, make: Callable[[], Iterator[Any]], cancel: threading.Event, pool: Any = None
    ) -> None:
        self.cancel = cancel
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.done = False
        self._ready: list[Any] = []
        self._failure: BaseException | None = None
        self._make = make
        if pool is not None:
            pool.submit(self._work)
        else:
            threading.Thread(target=self._work, name="qwen-agent-serve", daemon=True).start()

    def _put(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening
            self.cancel.set()

    def _work(self) -> None:
        it: Any = None
        try:
            it = self._make()
            for item in it:
                self._put(item)
                if self.cancel.is_set():
                    break
        except BaseException as exc:  # reported to the request
            self._put(_Failed(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # closing a failed generator: nothing more to report
                    log.debug("closing a generation failed", exc_info=True)
            self._put(_END)

    async def batch(self) -> list[Any]:
        """The next items, all that are ready (at least one); empty at the end."""
        if self._ready:
            out, self._ready = self._ready, []
            return out
        if self.done:
            return []
        items = [await self.queue.get()]
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        out = []
        for item in items:
            if item is _END:
                self.done = True
                break
            if isinstance(item, _Failed):
                self.done = True
                if out:  # what came before the failure first, then the failure
                    self._failure = item.exc
                    return out
                raise item.exc
            out.append(item)
        return out

    def __aiter__(self) -> Pump:
        return self

    async def __anext__(self) -> Any:
        if not self._ready:
            if self._failure is not None:
                exc, self._failure = self._failure, None
                raise exc
            self._ready = await self.batch()
            if not self._ready:
                raise StopAsyncIteration
        return self._ready.pop(0)

    async def aclose(self) -> None:
        self.cancel.set()


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "qwen_agent_requests", "Requests answered", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "qwen_agent_request_seconds", "Time to the whole answer", ["endpoint"], registry=r
        )
        self.queue_wait = Histogram(
            "qwen_agent_queue_wait_seconds", "Time waited for a slot", ["model"], registry=r
        )
        self.running = Gauge("qwen_agent_running", "Generations running", ["model"], registry=r)
        self.waiting = Gauge("qwen_agent_waiting", "Requests queued", ["model"], registry=r)
        self.prompt_tokens = Counter(
            "qwen_agent_prompt_tokens", "Prompt tokens read", ["model"], registry=r
        )
        self.completion_tokens = Counter(
            "qwen_agent_completion_tokens", "Tokens generated", ["model"], registry=r
        )
        self.disconnects = Counter(
            "qwen_agent_client_disconnects",
            "Generations stopped by a client leaving",
            ["model"],
            registry=r,
        )


class ThreadSlot:
    """A model's slot, taken from the worker thread of an agent run for each model call
    (so the run's tools do not hold the model while they work)."""

    def __init__(
        self,
        acquire: Callable[[], Any],
        release: Callable[[], None],
        loop: Any,
        cancel: threading.Event,
    ) -> None:
        self.acquire, self.release, self.loop, self.cancel = acquire, release, loop, cancel

    def __enter__(self) -> None:
        import concurrent.futures

        fut = asyncio.run_coroutine_threadsafe(self.acquire(), self.loop)
        while True:
            try:
                fut.result(timeout=0.1)
                return
            except concurrent.futures.TimeoutError:
                if self.cancel.is_set() and fut.cancel():
                    raise ClientLeft() from None
            except concurrent.futures.CancelledError:
                raise ClientLeft() from None

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.release)


class ClientLeft(RunCancelled):
    """The client left while an agent run waited for the model."""


async def wait_disconnect(request: Any, cancel: threading.Event) -> None:
    """Sets ``cancel`` when the client of a non-streamed request goes away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
            return
