"""`SlotTicker`: the local chain's slots advance in real time, as a cluster's do.

A cluster produces a slot every ~400 ms whether or not transactions arrive, so the Clock sysvar
moves with wall time, blockhashes rotate and landed transactions reach confirmed and finalized
by themselves. The ticker calls `LocalChain.tick` on that schedule from the event loop that also
serves the chain's RPC (the chain is single-threaded). Slots are due by elapsed monotonic time:
when the loop was busy for a while, the missed slots are produced at once, so the slot number
stays in step with time.

A test may `pause` it (no slot is produced, time spent paused is skipped) and drive the slots
itself with the advance_slots control.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from marketd.chain.localnet.svm import LocalChain

log = structlog.get_logger(__name__)

SLOT_SECONDS = 0.4
"""A cluster's target slot time."""


class SlotTicker:
    def __init__(
        self,
        chain: LocalChain,
        slot_seconds: float = SLOT_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slot_seconds <= 0:
            raise ValueError("slot_seconds must be positive")
        self.chain = chain
        self.slot_seconds = slot_seconds
        self._clock = clock
        self._origin = clock()
        self._produced = 0
        self.paused = False

    def due(self) -> int:
        """Slots whose time has come and that were not produced yet."""
        return int((self._clock() - self._origin) / self.slot_seconds) - self._produced

    def step(self) -> int:
        """Produce the due slots (none while paused: their time is skipped); returns how many."""
        due = self.due()
        if due <= 0:
            return 0
        self._produced += due
        if self.paused:
            return 0
        self.chain.tick(due)
        return due

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.step()  # skip the slots that fell due while paused
        self.paused = False

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            next_at = self._origin + (self._produced + 1) * self.slot_seconds
            await asyncio.sleep(max(0.0, next_at - self._clock()))
            try:
                self.step()
            except Exception:  # a listener failing must not stop time
                log.exception("local chain slot tick failed")
