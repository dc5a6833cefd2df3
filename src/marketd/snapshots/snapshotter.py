"""The snapshot worker: a daily cron job (midnight UTC by default) run by one instance.

``run_snapshot`` is what the scheduler, the CLI (``marketd snapshot [--market ID] [--date D]``)
and tests call: it takes the ``snapshots`` lock (returning None at once when another instance
holds it), builds the configured stores and archives the day. ``run_pending`` only uploads the
rows an interrupted run left pending (same lock). ``snapshot_jobs`` lists the jobs of this
domain for the worker process to schedule: the daily snapshot and prune, and the pending
catch-up, which runs at worker start and every ``SNAPSHOT_RETRY_SECONDS``, so a run killed
mid-upload is finished as soon as its lock is free, not a day later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from marketd.config import SnapshotSettings
from marketd.core.container import Container
from marketd.snapshots.retention import run_prune
from marketd.snapshots.rules import last_complete_day
from marketd.snapshots.service import SnapshotRun, SnapshotService
from marketd.snapshots.stores import SnapshotStores, build_stores

log = structlog.get_logger("marketd.snapshots")

SNAPSHOT_LOCK = "snapshots"


async def run_snapshot(
    container: Container,
    market_id: str | None = None,
    day: date | None = None,
    *,
    config: SnapshotSettings | None = None,
    stores: SnapshotStores | None = None,
    now: datetime | None = None,
) -> SnapshotRun | None:
    """Snapshot ``day`` (default: the last complete UTC day) for every live market or one.

    None when another instance holds the lock. ``stores`` (else built from the settings and
    closed afterwards) and ``now`` are for tests and benchmarks.
    """
    config = config or container.settings.snapshots
    moment = now or datetime.now(UTC)
    target = day or last_complete_day(moment)

    async def archive(service: SnapshotService, should_stop: Callable[[], bool]) -> SnapshotRun:
        return await service.run(target, market_id, now=moment, should_stop=should_stop)

    return await _locked(container, config, stores, archive, target)


async def run_pending(
    container: Container,
    *,
    config: SnapshotSettings | None = None,
    stores: SnapshotStores | None = None,
) -> SnapshotRun | None:
    """Upload what an interrupted run left ``pending`` (any day), under the snapshot lock.

    None when another instance holds the lock (it pins the same rows itself)."""
    config = config or container.settings.snapshots
    today = datetime.now(UTC).date()

    async def catch_up(service: SnapshotService, should_stop: Callable[[], bool]) -> SnapshotRun:
        run = SnapshotRun(day=today)
        await service.pin_pending(run, should_stop=should_stop)
        if run.pinned or run.failed:
            await log.ainfo("snapshot catch-up", pinned=len(run.pinned), failed=len(run.failed))
        return run

    return await _locked(container, config, stores, catch_up, today)


async def _locked(
    container: Container,
    config: SnapshotSettings,
    stores: SnapshotStores | None,
    work: Callable[[SnapshotService, Callable[[], bool]], Awaitable[SnapshotRun]],
    day: date,
) -> SnapshotRun | None:
    """Run ``work`` holding the ``snapshots`` lock with the configured stores (built and closed
    here unless given); None at once when another instance holds the lock."""
    async with container.locks.hold(SNAPSHOT_LOCK, config.snapshot_lock_ttl_seconds) as lease:
        if lease is None:
            await log.ainfo("snapshot skipped: another instance holds the lock", day=str(day))
            return None
        owned = stores is None
        stores = stores or build_stores(container.settings, config)
        try:
            service = SnapshotService(container.database, container.bus, stores, config)
            return await work(service, lease.lost.is_set)
        finally:
            if owned:
                await stores.aclose()


@dataclass(frozen=True)
class ScheduledJob:
    """A periodic job: the worker adds ``run`` to its scheduler under ``trigger`` (and runs it
    once at start too when ``at_start``)."""

    name: str
    trigger: BaseTrigger
    run: Callable[[], Awaitable[None]]
    at_start: bool = False


def snapshot_jobs(
    container: Container, config: SnapshotSettings | None = None
) -> list[ScheduledJob]:
    """The daily snapshot and prune jobs, on their configured crontabs (UTC), and the pending
    catch-up (at start, then every ``snapshot_retry_seconds``)."""
    config = config or container.settings.snapshots

    async def snapshot() -> None:
        await run_snapshot(container, config=config)

    async def prune() -> None:
        await run_prune(container, config=config)

    async def pending() -> None:
        await run_pending(container, config=config)

    return [
        ScheduledJob(
            "snapshot", CronTrigger.from_crontab(config.snapshot_cron, timezone=UTC), snapshot
        ),
        ScheduledJob("prune", CronTrigger.from_crontab(config.prune_cron, timezone=UTC), prune),
        ScheduledJob(
            "snapshot-pending",
            IntervalTrigger(seconds=config.snapshot_retry_seconds, timezone=UTC),
            pending,
            at_start=True,
        ),
    ]


def schedule(scheduler: AsyncIOScheduler, jobs: list[ScheduledJob]) -> None:
    """Add jobs so that a late or missed firing runs once (coalesced), never concurrently."""
    for job in jobs:
        start: dict[str, datetime] = {"next_run_time": datetime.now(UTC)} if job.at_start else {}
        scheduler.add_job(
            job.run,
            job.trigger,
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
            replace_existing=True,
            **start,
        )


def build_scheduler(
    container: Container, config: SnapshotSettings | None = None
) -> AsyncIOScheduler:
    """An ``AsyncIOScheduler`` (UTC) holding this domain's jobs; the caller starts it."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    schedule(scheduler, snapshot_jobs(container, config))
    return scheduler
