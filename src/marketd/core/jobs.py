"""Hosting of background jobs (aggregator, outbox runner, indexer, snapshotter, …).

A job is a coroutine that runs until `stop` is set. The supervisor restarts a job that
crashes (with exponential backoff, so a broken dependency does not spin the CPU) and stops
them all on shutdown, letting each finish its current step and release its locks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

JOB_RESTARTS = Counter("marketd_job_restarts_total", "Background job crashes.", ["job"])
log = structlog.get_logger("marketd.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[asyncio.Event], Awaitable[None]]


async def supervise(
    job: Job, stop: asyncio.Event, *, first_backoff: float = 0.5, max_backoff: float = 30.0
) -> None:
    backoff = first_backoff
    while not stop.is_set():
        try:
            await job.run(stop)
            backoff = first_backoff
            if not stop.is_set():
                log.warning("job returned before shutdown; restarting", job=job.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            JOB_RESTARTS.labels(job.name).inc()
            log.exception("job crashed; restarting", job=job.name, backoff_s=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(max_backoff, backoff * 2)


class JobHost:
    """Runs jobs as supervised tasks; `stop()` asks them to finish and waits (bounded)."""

    def __init__(self, jobs: Sequence[Job], grace_seconds: float = 10.0) -> None:
        self.jobs = list(jobs)
        self.grace_seconds = grace_seconds
        self.stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for job in self.jobs:
            log.info("job starting", job=job.name)
            self._tasks.append(asyncio.create_task(supervise(job, self.stop_event), name=job.name))

    async def stop(self) -> None:
        self.stop_event.set()
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(self._tasks, timeout=self.grace_seconds)
        for task in pending:
            # Cancelled: its `finally` blocks still run, so a held lock is still released.
            log.warning(
                "job did not stop within the grace period; cancelled",
                job=task.get_name(),
                grace_s=self.grace_seconds,
            )
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()

    async def wait(self) -> None:
        await self.stop_event.wait()


async def pause(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep between passes of a polling job: until `stop` or `wake` is set, or `seconds`."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
