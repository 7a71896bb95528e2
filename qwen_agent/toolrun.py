"""Where sync tool calls run: each on its own thread, under a process-wide bound that a
timed-out call gives back at once.

A thread cannot be stopped from outside. With a fixed pool, a call that hangs past its
timeout keeps its worker, and enough of them starve every other agent's tools (32 hung
calls once made another conversation's instant tool time out). Here:

- at most ``capacity`` calls run at once in the process; more wait for a slot;
- a call abandoned at its timeout frees its slot at once: its thread runs on, uncounted,
  and its result is dropped;
- abandoned threads still running are bounded too (``max_abandoned``), and so are calls
  running or waiting for a slot (``capacity + max_abandoned``): past either, a new call is
  refused with a clear error instead of starting yet another thread.

A thread whose call returned waits ``idle_seconds`` for the next call before it ends (at
most ``capacity`` wait), so a busy agent does not pay for a new thread on every call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from qwen_agent.errors import ToolCallError

__all__ = ["ToolRunner", "runner"]


class _Call:
    __slots__ = ("future", "abandoned", "holds_slot", "lock")

    def __init__(self) -> None:
        self.future: Future[Any] = Future()
        self.abandoned = False
        self.holds_slot = False
        self.lock = threading.Lock()


class ToolRunner:
    def __init__(
        self, capacity: int = 32, max_abandoned: int = 256, idle_seconds: float = 30.0
    ) -> None:
        self.capacity = capacity
        self.max_abandoned = max_abandoned
        self.idle_seconds = idle_seconds
        #: the inboxes of threads waiting for a call
        self._idle: list[queue.SimpleQueue[Any]] = []
        self._slots = threading.BoundedSemaphore(capacity)
        self._lock = threading.Lock()
        self._abandoned_running = 0
        self._calls: dict[Future[Any], _Call] = {}

    @property
    def abandoned_running(self) -> int:
        """Threads of abandoned calls that have not returned yet."""
        return self._abandoned_running

    def submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._abandoned_running >= self.max_abandoned:
                raise ToolCallError(
                    f"{self._abandoned_running} tool calls that timed out are still running "
                    "in this process; no more are started until some finish"
                )
            if len(self._calls) >= self.capacity + self.max_abandoned:
                raise ToolCallError(
                    f"{len(self._calls)} tool calls are running or waiting in this process; "
                    "try again when some have finished"
                )
        call = _Call()
        self._calls[call.future] = call
        job = (call, fn, kwargs)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(job)
            return call.future
        try:
            threading.Thread(
                target=self._work, args=(job,), name="qwen-agent-tool", daemon=True
            ).start()
        except RuntimeError as exc:  # "can't start new thread": a full process
            self._calls.pop(call.future, None)
            raise ToolCallError(f"no thread could be started for the call: {exc}") from None
        return call.future

    def _work(self, job: tuple[_Call, Callable[..., Any], dict[str, Any]] | None) -> None:
        """Runs calls: this one, then those handed to it while it waits idle. The thread
        is back on the idle list before it hands a result over, so the waiter that wakes
        for the result does not wait for this thread's bookkeeping (on a loop, that wait
        cost more than the hop itself)."""
        while job is not None:
            publish = self._run(*job)
            job = None
            inbox: queue.SimpleQueue[Any] | None = queue.SimpleQueue()
            with self._lock:
                if len(self._idle) >= self.capacity:
                    inbox = None
                else:
                    self._idle.append(inbox)
            if publish is not None:
                publish()
            if inbox is None:
                return
            try:
                job = inbox.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # handed a call just as the wait ended

    def abandon(self, future: Future[Any]) -> None:
        """Gives up on a call (its timeout passed): its slot is free now, its result is
        dropped when it comes."""
        call = self._calls.pop(future, None)
        if call is None:
            return
        with call.lock:
            # a future cancelled by its waiter (asyncio.wrap_future does) is still running
            if call.future.done() and not call.future.cancelled():
                return
            call.abandoned = True
            if call.holds_slot:
                call.holds_slot = False
                self._slots.release()
                with self._lock:
                    self._abandoned_running += 1
        future.cancel()

    def _run(
        self, call: _Call, fn: Callable[..., Any], kwargs: dict[str, Any]
    ) -> Callable[[], None] | None:
        """Runs the call; returns what hands its outcome to the waiter (None: nobody
        waits for it any more)."""
        self._slots.acquire()
        with call.lock:
            if call.abandoned:  # given up on while it waited: never starts
                self._slots.release()
                return None
            call.holds_slot = True
        try:
            value = fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting agent
            outcome: tuple[bool, Any] = (False, exc)
        else:
            outcome = (True, value)
        with call.lock:
            if call.holds_slot:
                call.holds_slot = False
                self._slots.release()
            elif call.abandoned:
                with self._lock:
                    self._abandoned_running -= 1
            self._calls.pop(call.future, None)
            if call.abandoned or not call.future.set_running_or_notify_cancel():
                return None
        ok, value = outcome
        if ok:
            return partial(call.future.set_result, value)
        return partial(call.future.set_exception, value)


_runner: ToolRunner | None = None
_runner_lock = threading.Lock()


def runner() -> ToolRunner:
    """The process's runner for sync tool calls."""
    global _runner
    if _runner is None:
        with _runner_lock:
            if _runner is None:
                _runner = ToolRunner()
    return _runner
