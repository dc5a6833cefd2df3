"""The run loop the trade relay and the chain outbox runner share: woken by ``notify()``,
stopped by an event, surviving a pass that raises. One set-up for both test files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import pytest


class NotifiedLoop(Protocol):
    def notify(self) -> None: ...

    async def run(self, stop: asyncio.Event, interval: float = ...) -> None: ...


@asynccontextmanager
async def running(worker: NotifiedLoop) -> AsyncIterator[None]:
    """The worker's loop in a task with an hour's interval (so only ``notify()`` wakes it),
    stopped and awaited on the way out."""
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop, interval=3600))
    try:
        yield
    finally:
        stop.set()
        worker.notify()
        await asyncio.wait_for(loop, 10)


async def passes_through_failures(worker: NotifiedLoop, monkeypatch: pytest.MonkeyPatch) -> int:
    """Runs the loop with a ``run_once`` that always raises, stopping on the second pass; the
    number of passes made (2 when a failing pass does not end the loop)."""
    passes: list[int] = []
    stop = asyncio.Event()

    async def broken_pass() -> None:
        passes.append(1)
        if len(passes) == 2:
            stop.set()
        raise RuntimeError("database down")

    monkeypatch.setattr(worker, "run_once", broken_pass)
    await asyncio.wait_for(worker.run(stop, interval=0), 10)
    return len(passes)
