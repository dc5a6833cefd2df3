"""Job supervision: crashes restart the job, shutdown stops every job."""

from __future__ import annotations

import asyncio

from marketd.core.jobs import Job, JobHost, supervise
from marketd.core.locks import MemoryLocks


async def test_crashing_job_is_restarted_until_stopped():
    runs: list[int] = []
    third_run = asyncio.Event()
    stop = asyncio.Event()

    async def flaky(stop_event: asyncio.Event) -> None:
        runs.append(len(runs))
        if len(runs) == 3:
            third_run.set()
            await stop_event.wait()
            return
        raise RuntimeError("boom")

    task = asyncio.create_task(supervise(Job("flaky", flaky), stop, first_backoff=0.001))
    await asyncio.wait_for(third_run.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert runs == [0, 1, 2]


async def test_job_that_returns_early_is_started_again():
    calls = 0
    done = asyncio.Event()
    stop = asyncio.Event()

    async def short(stop_event: asyncio.Event) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            stop_event.set()
            done.set()

    await asyncio.wait_for(supervise(Job("short", short), stop), 5)
    assert done.is_set() and calls == 2


async def test_host_stops_cooperative_and_stuck_jobs():
    finished: list[str] = []
    started = asyncio.Event()

    async def polite(stop_event: asyncio.Event) -> None:
        started.set()
        await stop_event.wait()
        finished.append("polite")

    async def stuck(stop_event: asyncio.Event) -> None:
        await asyncio.Event().wait()  # ignores stop: cancelled after the grace period

    host = JobHost([Job("polite", polite), Job("stuck", stuck)], grace_seconds=0.05)
    host.start()
    waiter = asyncio.create_task(host.wait())
    await asyncio.wait_for(started.wait(), 5)
    await host.stop()
    await asyncio.wait_for(waiter, 1)
    assert finished == ["polite"]
    await JobHost([]).stop()


async def test_a_job_cancelled_after_the_grace_period_still_releases_its_lock():
    locks = MemoryLocks()
    leading = asyncio.Event()

    async def stubborn(stop_event: asyncio.Event) -> None:
        async with locks.leadership("stubborn", ttl=60, stop=stop_event) as lease:
            assert lease is not None
            leading.set()
            await asyncio.Event().wait()  # never looks at stop_event

    host = JobHost([Job("stubborn", stubborn)], grace_seconds=0.05)
    host.start()
    await asyncio.wait_for(leading.wait(), 5)
    assert await locks.try_acquire("stubborn", ttl=60) is None
    await host.stop()
    assert await locks.try_acquire("stubborn", ttl=60) is not None  # released, not expired
