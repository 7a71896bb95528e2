"""Conversations of served agents: whose they are, and how many one caller may hold.

A served agent keeps state per conversation (a code-interpreter kernel and its files,
generated images), keyed by the ``conversation_id`` a client sends. Without care, ids are a
shared namespace: two callers who pick the same id share a kernel, and one caller can open
conversations until the kernel pool is full and everyone else is locked out. So:

- an id is 1 to 128 characters of ``A-Z a-z 0-9 _ . : -`` (else a 400);
- a conversation belongs to the caller that opened it: its state is keyed by the caller's
  identity (a hash of the API key it presented; on a server without keys, the client's
  address, so callers behind one address share their conversations and their limit: give
  each user a key) and the id, so the same id from another key is another conversation;
- each caller may hold ``max_per_owner`` conversations that were used within ``idle``
  seconds; one more is a 429 that says so, for that caller only, never a lock-out of
  others.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time

from qwen_agent.serving.wire import WireError

__all__ = ["Conversations", "owner_of", "conversation_id"]

_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def owner_of(key: str | None) -> str:
    """A caller's identity from the API key it presented: a short hash, never the key."""
    if not key:
        return "open"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def conversation_id(value: object, param: str = "metadata.conversation_id") -> str | None:
    """The validated conversation id, or None when none was given; a 400 otherwise."""
    if value is None:
        return None
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = value[:40] + "..." if isinstance(value, str) and len(value) > 40 else value
        raise WireError(
            400,
            f"conversation_id must be 1-128 characters of letters, digits and _.:- "
            f"(got {shown!r:.60})",
            param,
        )
    return value


class Conversations:
    """Open conversations by owner, with a bound per owner (thread-safe)."""

    def __init__(self, max_per_owner: int, idle: float, clock=time.monotonic) -> None:
        self.max_per_owner = max_per_owner
        self.idle = idle
        self._clock = clock
        self._open: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def claim(self, owner: str, conversation: str) -> str:
        """Marks ``conversation`` of ``owner`` used now and returns the key its state lives
        under; a 429 when it is new and the owner already holds its share."""
        now = self._clock()
        with self._lock:
            mine = self._open.setdefault(owner, {})
            for cid in [c for c, seen in mine.items() if now - seen > self.idle]:
                del mine[cid]
            if conversation not in mine and len(mine) >= self.max_per_owner:
                oldest = min(mine.values())
                wait = max(1, int(self.idle - (now - oldest)) + 1)
                raise WireError(
                    429,
                    f"this API key holds {len(mine)} open conversations, its limit; reuse "
                    f"one, or wait until one has been idle for {int(self.idle)} s",
                    "metadata.conversation_id",
                    code="too_many_conversations",
                    kind="rate_limit_error",
                    headers={"Retry-After": str(wait)},
                )
            mine[conversation] = now
        return f"{owner}:{conversation}"

    def held(self, owner: str) -> int:
        with self._lock:
            return len(self._open.get(owner, {}))
