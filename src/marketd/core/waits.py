"""How background loops wait: the one backoff schedule, and the one "until stop or timeout".

Every retry loop uses `Backoff` with its own numbers (job restarts, the bus listener's
resubscribe, the event stream's reconnects, the outbox's row retries, the aggregator's tally
retries), so a delay reads the same everywhere: `initial * factor ** (failures - 1)`, capped at
`maximum`. Every loop that sleeps between rounds sleeps in `wait_for_stop`, so a shutdown
never waits for a sleep to end.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Exponential delays, capped: the first failure waits `initial`."""

    initial: float
    maximum: float
    factor: float = 2.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row (1: the first; 0 counts as 1)."""
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


class FailureStreak:
    """Consecutive failures of one loop, and the wait each one calls for."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self.failures = 0

    def failed(self) -> float:
        """Count a failure; the seconds to wait before trying again."""
        self.failures += 1
        return self.backoff.delay(self.failures)

    def succeeded(self) -> None:
        self.failures = 0


async def wait_for_stop(
    stop: asyncio.Event, seconds: float, *, wake: asyncio.Event | None = None
) -> bool:
    """Wait until `stop` is set, `wake` is set (when given) or `seconds` pass; whether `stop`
    is set."""
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return stop.is_set()
