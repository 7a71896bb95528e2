"""The async core from sync code, as openai-agents' ``Runner.run_sync`` wraps ``Runner.run``.

:func:`run_sync` awaits a coroutine and returns its result; :func:`iterate` reads an async
iterator and yields its items. Both run the coroutine on an event loop of the calling
thread (one per thread, reused), so a sync run costs no thread hops and, like a generator,
does its work only while its caller asks for items: the loop runs until items are ready,
then hands them over together. Called where an event loop is already running (a notebook,
an async web handler), they run it on one shared loop in a daemon thread instead. Leaving
the sync iterator early (``break``, an exception, ``close()``) cancels the async one and
waits until its cleanup ran, so what it started (tool calls, a model stream) is stopped,
not left running. Sync code that is itself running on the shared loop (an async tool
calling ``Agent.run``) gets a clear error: it must await the async API instead.

:func:`wait_threads` lets code on a sync caller's own loop block on thread futures (sync
tool calls) instead of awaiting them: a loop's cross-thread wake-up costs about as much as
the rest of a fast agent run, and that loop has nothing else to run meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from qwen_agent.errors import ConfigError
from qwen_agent.llm import aclose

__all__ = ["loop", "run_sync", "iterate", "hand_over", "wait_threads"]

T = TypeVar("T")

#: how long leaving a sync iterator early waits for the async one's cleanup
CLEANUP_TIMEOUT = 30.0

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for sync callers (started on first use)."""
    global _loop, _thread
    if _loop is None:
        with _lock:
            if _loop is None:
                new = asyncio.new_event_loop()
                _thread = threading.Thread(
                    target=new.run_forever, name="qwen-agent-loop", daemon=True
                )
                _thread.start()
                _loop = new
    return _loop


def _check_thread(what: str) -> asyncio.AbstractEventLoop:
    the_loop = loop()
    if threading.current_thread() is _thread:
        raise ConfigError(
            f"{what} was called from code running on qwen-agent's event loop (an async "
            "tool?); await the async API (Agent.arun, Agent.achat, adrain) there instead"
        )
    return the_loop


class _Own:
    """This thread's loop; closed when the thread ends (its holder is collected)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        #: the iteration the loop is running now (see _iterate_here), if any
        self.run: _Run | None = None

    def __del__(self) -> None:
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


_local = threading.local()


def _own_loop() -> asyncio.AbstractEventLoop | None:
    """The calling thread's own loop, or None where a loop is running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return None
    own = getattr(_local, "own", None)
    if own is None:
        own = _local.own = _Own()
    return None if own.loop.is_running() else own.loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end; return its result (or raise its exception). An interrupt
    of the waiting thread cancels it."""
    own = _own_loop()
    if own is not None:
        task = own.create_task(coro)
        task.add_done_callback(lambda _: own.stop())
        try:
            _until_done(own, task)
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                _until_done(own, task)
    try:
        the_loop = _check_thread("a sync qwen-agent call")
    except BaseException:
        coro.close()
        raise
    fut = asyncio.run_coroutine_threadsafe(coro, the_loop)
    try:
        return fut.result()
    except BaseException:
        fut.cancel()
        raise


_END = object()


def iterate(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Yield the items of ``make()``; see the module docstring."""
    own = _own_loop()
    if own is None:
        return _iterate_shared(make)
    return _iterate_here(own, make)


class _Run:
    """One :func:`_iterate_here` iteration: the items its caller has not taken yet, and
    the future that tells its async side they were all taken."""

    __slots__ = ("loop", "ready", "flushing", "taken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: deque[Any] = deque()
        self.flushing = False
        self.taken: asyncio.Future[None] | None = None

    def put(self, item: Any) -> None:
        self.ready.append(item)
        if not self.flushing:  # hand over once the run waits for something
            self.flushing = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flushing = False
        self.loop.stop()

    async def handed_over(self) -> None:
        """Returns once the caller has taken every item put so far."""
        if self.ready:
            self.taken = self.loop.create_future()
            if not self.flushing:
                self.flushing = True
                self.loop.call_soon(self._flush)
            await self.taken


def _iterate_here(
    own: asyncio.AbstractEventLoop, make: Callable[[], AsyncIterator[T]]
) -> Iterator[T]:
    run = _Run(own)
    ready = run.ready

    async def pump() -> None:
        agen = make()
        try:
            async for item in agen:
                run.put(item)
        finally:
            await aclose(agen)

    holder: _Own = _local.own
    task = own.create_task(pump())
    task.add_done_callback(lambda _: own.stop())
    try:
        while True:
            if not ready and not task.done():
                outer, holder.run = holder.run, run
                try:
                    own.run_forever()
                finally:
                    holder.run = outer
            while ready:
                yield ready.popleft()
            if run.taken is not None:
                if not run.taken.done():
                    run.taken.set_result(None)
                run.taken = None
                continue
            if task.done():
                task.result()
                return
    finally:
        if not task.done():
            task.cancel()
            _until_done(own, task)


async def hand_over() -> None:
    """On a sync caller's own loop, returns once the caller has taken every item yielded
    so far (elsewhere at once). Call it before starting threads that :func:`wait_threads`
    will block on: a thread started while this one still runs Python waits for the GIL,
    and each such wait costs a cross-CPU wake-up."""
    own = getattr(_local, "own", None)
    if own is not None and own.run is not None and own.loop is asyncio.get_running_loop():
        await own.run.handed_over()


async def wait_threads(
    futures: list[concurrent.futures.Future[Any]], timeout: float | None
) -> set[concurrent.futures.Future[Any]] | None:
    """Blocks this thread until one of ``futures`` is done or ``timeout`` passes, and
    returns those done; where that is not safe, returns None at once (await the futures
    instead). It is safe on the loop of a sync caller (:func:`iterate`, :func:`run_sync`)
    on which no other task runs: nothing else waits for that loop. An iteration's caller
    first gets every item the run yielded so far, so a slow tool call is shown before it
    is waited on."""
    running = asyncio.get_running_loop()
    own = getattr(_local, "own", None)
    if own is None or own.loop is not running or len(asyncio.all_tasks(running)) != 1:
        return None
    if own.run is not None and own.run.ready:  # items to hand over first (run_sync has none)
        await own.run.handed_over()
        if len(asyncio.all_tasks(running)) != 1:  # pragma: no cover
            return None
    if len(futures) == 1:  # the common case, on the future's own condition
        (future,) = futures
        try:
            future.exception(timeout)
        except concurrent.futures.TimeoutError:
            return set()
        except concurrent.futures.CancelledError:
            pass
        return {future}
    done, _ = concurrent.futures.wait(
        futures, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
    )
    return done


def _until_done(own: asyncio.AbstractEventLoop, task: asyncio.Future[Any]) -> None:
    """Runs the loop until ``task`` (which stops the loop when done) is done."""
    while not task.done():
        own.run_forever()


def _iterate_shared(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    the_loop = _check_thread("a sync qwen-agent iterator")
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    cleaned = threading.Event()

    async def pump() -> None:
        agen: Any = None
        try:
            agen = make()
            async for item in agen:
                items.put((True, item))
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
            items.put((False, exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            try:
                await aclose(agen)
            finally:
                cleaned.set()
                items.put(_END)

    fut = asyncio.run_coroutine_threadsafe(pump(), the_loop)
    try:
        while True:
            got = items.get()
            if got is _END:
                return
            ok, value = got
            if not ok:
                raise value
            yield value
    finally:
        if not cleaned.is_set():
            fut.cancel()
            cleaned.wait(CLEANUP_TIMEOUT)
