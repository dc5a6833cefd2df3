"""Hosting of background jobs (aggregator, outbox runner, indexer, snapshotter, …).

A job is a coroutine that runs until `stop` is set. The supervisor restarts a job that
crashes (with exponential backoff, so a broken dependency does not spin the CPU) and stops
them all on shutdown, letting each finish its current step and release its locks.

Jobs come in two shapes, each written once here:

* `run_rounds`: a polling job (outbox runner, trade relay, finality check, reconcile, automatic
  transitions): one round, then a wait (`interval`, shorter when woken or when the round says
  so); a failing round is logged and the next one comes;
* `leader_locked`: a job that must run on one instance only (indexer, its checks, the vote
  aggregator): it waits for its leader lock, works while it holds it, stops working when the
  lock is lost and waits for it again.

A round may return a `RunReport` (how many items ended in each result: rows confirmed,
submissions failed, events finalized, markets fixed, transitions enqueued), logged the same way
for every job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter

from marketd.core.locks import Locks
from marketd.core.waits import Backoff, FailureStreak, wait_for_stop

JOB_RESTARTS = Counter("marketd_job_restarts_total", "Background job crashes.", ["job"])
log = structlog.get_logger("marketd.jobs")

RESTART_BACKOFF = Backoff(initial=0.5, maximum=30.0)
"""Waits between restarts of a job that keeps crashing."""

Work = Callable[[asyncio.Event], Awaitable[None]]
"""A job's body: runs until the event is set."""


@dataclass(frozen=True)
class BackgroundJob:
    """A named long-running coroutine for the `JobHost` to supervise."""

    name: str
    run: Work


@dataclass
class RunReport:
    """What one round of a job did: how many items ended in each result."""

    results: dict[str, int] = field(default_factory=dict)

    @classmethod
    def tally(cls, **counts: int) -> RunReport:
        """A report of these counts (the zero ones left out)."""
        return cls({name: count for name, count in counts.items() if count})

    def add(self, result: str) -> None:
        key = str(result)  # a StrEnum member counts under its value
        self.results[key] = self.results.get(key, 0) + 1

    def count(self, result: str) -> int:
        return self.results.get(str(result), 0)


def log_round(job: str, report: RunReport) -> None:
    """Log what a round did (debug: rounds come every second or two; each item that fails or
    retries is logged at warning by the job itself)."""
    if report.results:
        log.debug("job round", job=job, **report.results)


async def run_rounds(
    job: str,
    stop: asyncio.Event,
    round_: Callable[[], Awaitable[RunReport | None]],
    interval: float,
    *,
    wake: asyncio.Event | None = None,
    next_round: Callable[[], Awaitable[float]] | None = None,
) -> None:
    """Run `round_` until `stop` is set, waiting `interval` seconds between rounds.

    `wake` set (e.g. by a `notify()` after an enqueue) starts the next round at once; it is
    cleared before each round, so a wake during a round triggers another. `next_round`, when
    given, says after a successful round how long to wait instead (at most `interval` is the
    caller's to enforce). Errors are logged and never end the loop."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        timeout = interval
        try:
            report = await round_()
            if report is not None:
                log_round(job, report)
            if next_round is not None:
                timeout = await next_round()
        except Exception:
            log.exception("job round failed", job=job)
        await wait_for_stop(stop, timeout, wake=wake)


def leader_locked(
    locks: Locks,
    lock: str,
    ttl: float,
    work: Work,
    *,
    leading: Callable[[bool], None] | None = None,
) -> Work:
    """`work`, run only while this instance holds the leader lock `lock`.

    The returned job waits for the lock (until `stop`), then runs `work` with an event set on
    `stop` or when the lock is lost to another instance; after a loss it waits for the lock
    again. `leading(True/False)` is told when leadership starts and ends (e.g. a gauge)."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with locks.leadership(lock, ttl, stop) as lease:
                if lease is None:
                    return
                log.info("job leading", lock=lock)
                if leading is not None:
                    leading(True)
                until = asyncio.Event()
                watcher = asyncio.create_task(_set_on_either(stop, lease.lost, until))
                try:
                    await work(until)
                finally:
                    watcher.cancel()
                    if leading is not None:
                        leading(False)
                if lease.lost.is_set():
                    log.warning("job lost the lock", lock=lock)

    return run


async def _set_on_either(first: asyncio.Event, second: asyncio.Event, out: asyncio.Event) -> None:
    waits = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        out.set()
    finally:
        for task in waits:
            task.cancel()


async def supervise(
    job: BackgroundJob, stop: asyncio.Event, *, backoff: Backoff = RESTART_BACKOFF
) -> None:
    crashes = FailureStreak(backoff)
    while not stop.is_set():
        try:
            await job.run(stop)
            crashes.succeeded()
            if not stop.is_set():
                log.warning("job returned before shutdown; restarting", job=job.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = crashes.failed()
            JOB_RESTARTS.labels(job.name).inc()
            log.exception("job crashed; restarting", job=job.name, backoff_s=delay)
            await wait_for_stop(stop, delay)


class JobHost:
    """Runs jobs as supervised tasks; `stop()` asks them to finish and waits (bounded)."""

    def __init__(self, jobs: Sequence[BackgroundJob], grace_seconds: float = 10.0) -> None:
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
