"""What the server runs on: a model's gate (capacity plus a fair queue), the Prometheus
metrics, and the disconnect watch."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from qwen_agent.serving.wire import WireError

__all__ = ["Gate", "Metrics", "wait_disconnect"]

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


async def wait_disconnect(request: Any) -> None:
    """Returns when the client of a non-streamed request goes away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
