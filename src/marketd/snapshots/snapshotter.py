"""The snapshot worker: a daily cron job (midnight UTC by default) run by one instance.

``run_snapshot`` is what the scheduler, the CLI (``marketd snapshot [--market ID] [--date D]``)
and tests call: it takes the ``snapshots`` lock (returning None at once when another instance
holds it), builds the configured stores and archives the day. ``snapshot_jobs`` lists the cron
jobs of this domain (snapshot, prune) for the worker process to schedule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from marketd.core.container import Container
from marketd.snapshots.config import SnapshotSettings, snapshot_config
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
    config = config or snapshot_config(container.settings)
    now = now or datetime.now(UTC)
    day = day or last_complete_day(now)
    async with container.locks.hold(SNAPSHOT_LOCK, config.snapshot_lock_ttl_seconds) as lease:
        if lease is None:
            await log.ainfo("snapshot skipped: another instance holds the lock", day=str(day))
            return None
        owned = stores is None
        stores = stores or build_stores(container.settings, config)
        try:
            service = SnapshotService(container.database, container.bus, stores, config)
            return await service.run(day, market_id, now=now, should_stop=lease.lost.is_set)
        finally:
            if owned:
                await stores.aclose()


@dataclass(frozen=True)
class Job:
    """A periodic job: the worker adds ``run`` to its scheduler under ``trigger``."""

    name: str
    trigger: CronTrigger
    run: Callable[[], Awaitable[None]]


def snapshot_jobs(container: Container, config: SnapshotSettings | None = None) -> list[Job]:
    """The daily snapshot and prune jobs, on their configured crontabs (UTC)."""
    config = config or snapshot_config(container.settings)

    async def snapshot() -> None:
        await run_snapshot(container, config=config)

    async def prune() -> None:
        await run_prune(container, config=config)

    return [
        Job("snapshot", CronTrigger.from_crontab(config.snapshot_cron, timezone=UTC), snapshot),
        Job("prune", CronTrigger.from_crontab(config.prune_cron, timezone=UTC), prune),
    ]


def schedule(scheduler: AsyncIOScheduler, jobs: list[Job]) -> None:
    """Add jobs so that a late or missed firing runs once (coalesced), never concurrently."""
    for job in jobs:
        scheduler.add_job(
            job.run,
            job.trigger,
            id=job.name,
            name=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
            replace_existing=True,
        )


def build_scheduler(
    container: Container, config: SnapshotSettings | None = None
) -> AsyncIOScheduler:
    """An ``AsyncIOScheduler`` (UTC) holding this domain's jobs; the caller starts it."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    schedule(scheduler, snapshot_jobs(container, config))
    return scheduler
