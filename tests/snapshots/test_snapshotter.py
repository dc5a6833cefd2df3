"""The cron jobs: schedules from the settings, and a scheduled run publishing its snapshot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

from marketd.snapshots.snapshotter import (
    SNAPSHOT_LOCK,
    build_scheduler,
    run_pending,
    run_snapshot,
    snapshot_jobs,
)

from ..helpers.snapshots import Snap, at, snapshot_settings


async def test_jobs_follow_the_configured_crontabs(snap: Snap) -> None:
    default = {job.name: job for job in snapshot_jobs(snap.container, snap.config)}
    assert set(default) == {"snapshot", "prune", "snapshot-pending"}
    after = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
    assert default["snapshot-pending"].at_start
    assert not default["snapshot"].at_start and not default["prune"].at_start
    # The catch-up runs every SNAPSHOT_RETRY_SECONDS (default five minutes).
    catch_up = default["snapshot-pending"].trigger
    first = catch_up.get_next_fire_time(None, after)
    assert catch_up.get_next_fire_time(first, first) - first == timedelta(minutes=5)
    assert default["snapshot"].trigger.get_next_fire_time(None, after) == datetime(
        2026, 3, 15, tzinfo=UTC
    )
    assert default["prune"].trigger.get_next_fire_time(None, after) == datetime(
        2026, 3, 15, 1, 30, tzinfo=UTC
    )
    custom = snapshot_jobs(snap.container, snapshot_settings(snapshot_cron="5 2 * * *"))
    assert custom[0].trigger.get_next_fire_time(None, after) == datetime(
        2026, 3, 15, 2, 5, tzinfo=UTC
    )


async def test_scheduled_jobs_snapshot_and_prune(snap: Snap) -> None:
    market = await snap.market()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    await snap.post(market, "from yesterday", at(yesterday, 12))
    config = snapshot_settings(snapshot_retention_days=1)
    old = await run_snapshot(snap.container, day=yesterday - timedelta(days=4), config=config)
    assert old is not None
    scheduler = build_scheduler(snap.container, config)
    assert {job.id for job in scheduler.get_jobs()} == {"snapshot", "prune", "snapshot-pending"}
    scheduler.remove_job("snapshot-pending")  # this test drives the daily run itself
    finished = asyncio.Event()
    loop = asyncio.get_running_loop()
    scheduler.add_listener(
        lambda _: loop.call_soon_threadsafe(finished.set), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
    )
    async with snap.container.bus.subscribe("snapshots") as events:
        scheduler.start()
        try:
            scheduler.get_job("snapshot").modify(next_run_time=datetime.now(UTC))
            event = await asyncio.wait_for(events.get(), 10)
            await asyncio.wait_for(finished.wait(), 10)
        finally:
            scheduler.shutdown(wait=False)
    assert event["marketId"] == market and event["date"] == yesterday.isoformat()
    query = "SELECT cid, status FROM snapshot_pins ORDER BY snapshot_date"
    rows = await snap.rows(query)
    assert [(r.cid, r.status) for r in rows] == [
        (old.pinned[0].cid, "pinned"),
        (event["cid"], "pinned"),
    ]

    # The prune job (retention 1 day): the old snapshot goes, yesterday's stays.
    prune = next(job for job in snapshot_jobs(snap.container, config) if job.name == "prune")
    await prune.run()
    assert [r.status for r in await snap.rows(query)] == ["pruned", "pinned"]


async def test_rows_an_interrupted_run_left_pending_are_pinned_once_the_lock_is_free(
    snap: Snap,
) -> None:
    market = await snap.market()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    await snap.post(market, "written before the crash", at(yesterday, 9))
    # A run that died after preparing its rows: they are pending, and nothing holds the lock.
    assert await snap.service(snap.stores()).prepare(yesterday) == 1
    query = "SELECT status FROM snapshot_pins"
    assert [r.status for r in await snap.rows(query)] == ["pending"]

    async with snap.container.locks.hold(SNAPSHOT_LOCK, 30) as lease:
        assert lease is not None
        assert await run_pending(snap.container, config=snap.config) is None  # not ours yet
    assert [r.status for r in await snap.rows(query)] == ["pending"]

    run = await run_pending(snap.container, config=snap.config)
    assert run is not None and [p.market_id for p in run.pinned] == [market]
    assert [r.status for r in await snap.rows(query)] == ["pinned"]
    again = await run_pending(snap.container, config=snap.config)
    assert again is not None and again.pinned == [] and again.failed == {}


async def test_the_worker_pins_pending_rows_as_soon_as_it_starts(snap: Snap) -> None:
    market = await snap.market()
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    await snap.post(market, "left pending", at(yesterday, 10))
    await snap.service(snap.stores()).prepare(yesterday)
    scheduler = build_scheduler(snap.container, snap.config)
    async with snap.container.bus.subscribe("snapshots") as events:
        scheduler.start()  # no daily firing is due: only the start-up catch-up runs
        try:
            event = await asyncio.wait_for(events.get(), 10)
        finally:
            scheduler.shutdown(wait=False)
    assert event["marketId"] == market and event["date"] == yesterday.isoformat()
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pinned"]
