"""A WebSocket connection's message budget: a token bucket, pure (the clock is injected).

Every client frame may cost a Redis or database read (subscribe, auth); without a budget one
connection could send hundreds a second. Over budget, a frame is answered with a
`rate_limited` error and otherwise ignored; the connection stays open.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MessageBudget:
    """`rate` messages a second on average, bursts of up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> bool:
        """Spend one message; False when the budget is exhausted (nothing is spent)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
