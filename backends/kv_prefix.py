"""Reusing the KV cache of recent token sequences, as vLLM's automatic prefix caching does.

Every request of an agent starts with the same system prompt and tool list, and each next
turn repeats the whole conversation so far, the last reply included. :class:`PrefixCache`
keeps the KV caches of the last few sequences (a prompt and the reply generated after it);
a new prompt gets a copy of the cache of its longest stored prefix, cropped to where they
part, and only the rest of the prompt is computed. The caller serializes access (the
transformers backend takes its generation lock).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

__all__ = ["PrefixCache", "common_prefix"]


def common_prefix(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    lo = 0
    # compare in slices: a conversation shares long runs, and slice equality runs in C
    step = 256
    while lo < n:
        hi = min(lo + step, n)
        if a[lo:hi] == b[lo:hi]:
            lo = hi
            continue
        for i in range(lo, hi):
            if a[i] != b[i]:
                return i
    return n


class PrefixCache:
    """The KV caches of the last ``size`` token sequences, ``max_tokens`` in all (the least
    recently used go first; a KV cache costs about 46 KB a token for the bundled 135M model
    in float32, 57 KB for Qwen2.5-7B in bfloat16)."""

    def __init__(self, size: int, min_tokens: int = 16, max_tokens: int = 8192) -> None:
        self.size = size
        self.min_tokens = min_tokens
        self.max_tokens = max_tokens
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        #: tokens handed back from the cache, and tokens asked for, since the start
        self.hit_tokens = 0
        self.prompt_tokens = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, ids: list[int]) -> Any | None:
        """A copy of the cache of the longest stored prefix of ``ids``, cropped to it and
        to at most ``len(ids) - 1`` tokens (the model must see one token to answer), or
        None when no stored sequence shares ``min_tokens`` with it."""
        self.prompt_tokens += len(ids)
        if not self._entries:
            return None
        key = tuple(ids)
        best, best_n = None, 0
        for stored in self._entries:
            n = common_prefix(stored, key)
            if n > best_n:
                best, best_n = stored, n
        n = min(best_n, len(ids) - 1)
        if best is None or n < self.min_tokens:
            return None
        self._entries.move_to_end(best)
        cache = copy.deepcopy(self._entries[best])
        extra = cache.get_seq_length() - n
        if extra > 0:
            cache.crop(-extra)  # a negative count removes that many (transformers 4 and 5)
        self.hit_tokens += n
        return cache

    def put(self, ids: list[int], cache: Any) -> None:
        """Keeps ``cache``, which holds the KV of the first ``cache.get_seq_length()``
        tokens of ``ids``; a stored sequence it extends is dropped (it covers it)."""
        if self.size <= 0:
            return
        n = cache.get_seq_length()
        if n < self.min_tokens:
            return
        key = tuple(ids[:n])
        for stored in [k for k in self._entries if len(k) <= n and key[: len(k)] == k]:
            del self._entries[stored]
        if n > self.max_tokens:
            return
        self._entries[key] = cache
        while len(self._entries) > self.size or sum(map(len, self._entries)) > self.max_tokens:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
