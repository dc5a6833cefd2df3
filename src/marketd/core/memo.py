"""A bounded, per-process memo whose entries expire: for facts a process may reuse for a few
seconds instead of asking PostgreSQL or Redis again on every request."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def spread(jitter: float) -> float:
    """A random factor in (1 - jitter, 1] for a lifetime, so that things stored together do
    not all expire together (timing only: no secret depends on it)."""
    return 1 - jitter * random.random()  # noqa: S311


class RecentMemo(Generic[K, V]):
    """Values remembered for `window` seconds; past `capacity` the least recently stored go.

    With `jitter` (a fraction), each entry lives a random `window * (1 - jitter)` to `window`:
    entries stored together (clients that arrived together) then do not all expire together
    and send their requests to the database in one burst.
    """

    def __init__(self, window: float, capacity: int = 100_000, jitter: float = 0.0) -> None:
        self.window = window
        self.capacity = capacity
        self.jitter = jitter
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if time.monotonic() >= expires_at:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        lifetime = self.window * spread(self.jitter)
        self._entries[key] = (time.monotonic() + lifetime, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class Throttle:
    """`due(key)` is True at most once every `interval` seconds per key (per process): for work
    a hot path may do now and then instead of on every request. Without a key, one throttle
    for the whole process; with keys, the `capacity` most recent are remembered."""

    def __init__(self, interval: float, capacity: int = 100_000, jitter: float = 0.0) -> None:
        self._done: RecentMemo[Hashable, bool] = RecentMemo(interval, capacity, jitter)

    def due(self, key: Hashable = None) -> bool:
        """True (and remembered) when `key` was not due within the interval."""
        if self._done.get(key):
            return False
        self._done.put(key, True)
        return True
