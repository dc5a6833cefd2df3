"""Job supervision: crashes restart the job, shutdown stops every job."""

from __future__ import annotations

import asyncio
from enum import StrEnum

from structlog.testing import capture_logs

from marketd.core.jobs import (
    BackgroundJob,
    JobHost,
    RunReport,
    leader_locked,
    run_rounds,
    supervise,
)
from marketd.core.locks import MemoryLocks
from marketd.core.waits import Backoff


class _Result(StrEnum):
    SENT = "sent"
    FAILED = "failed"


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

    task = asyncio.create_task(
        supervise(BackgroundJob("flaky", flaky), stop, backoff=Backoff(0.001, 30.0))
    )
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

    await asyncio.wait_for(supervise(BackgroundJob("short", short), stop), 5)
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

    host = JobHost(
        [BackgroundJob("polite", polite), BackgroundJob("stuck", stuck)], grace_seconds=0.05
    )
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

    host = JobHost([BackgroundJob("stubborn", stubborn)], grace_seconds=0.05)
    host.start()
    await asyncio.wait_for(leading.wait(), 5)
    assert await locks.try_acquire("stubborn", ttl=60) is None
    await host.stop()
    assert await locks.try_acquire("stubborn", ttl=60) is not None  # released, not expired


async def test_rounds_go_on_after_a_failing_round_and_start_at_once_when_woken():
    stop, wake, rounds_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    second_round = asyncio.Event()
    rounds: list[int] = []

    async def round_() -> RunReport:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("boom")  # logged; the next round still comes
        if len(rounds) == 2:
            second_round.set()
        if len(rounds) == 3:
            rounds_done.set()
            await stop.wait()
        report = RunReport()
        report.add("sent")
        return report

    async def next_round() -> float:
        return 3600.0  # after a good round: wait for a wake, not the interval

    with capture_logs() as logs:
        task = asyncio.create_task(
            run_rounds("poller", stop, round_, 0.001, wake=wake, next_round=next_round)
        )
        await asyncio.wait_for(second_round.wait(), 5)
        wake.set()  # the second round asked for an hour: the wake starts the third
        await asyncio.wait_for(rounds_done.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert rounds == [0, 1, 2]
    failed = [entry for entry in logs if entry["event"] == "job round failed"]
    assert [entry["job"] for entry in failed] == ["poller"]
    done = [entry for entry in logs if entry["event"] == "job round"]
    assert done[0]["job"] == "poller" and done[0]["sent"] == 1


def test_a_run_report_counts_results_by_name():
    report = RunReport()
    report.add(_Result.SENT)
    report.add("sent")
    report.add(_Result.FAILED)
    assert report.results == {"sent": 2, "failed": 1}
    assert report.count(_Result.SENT) == 2 and report.count("retry") == 0
    assert RunReport.tally(fixed=2, enqueued=0).results == {"fixed": 2}


async def test_a_leader_locked_job_works_only_while_it_holds_the_lock():
    locks = MemoryLocks(retry_seconds=0.001)
    stop = asyncio.Event()
    leading: list[bool] = []
    working = asyncio.Event()
    ended: list[str] = []
    lost = asyncio.Event()

    async def work(until: asyncio.Event) -> None:
        working.set()
        await until.wait()
        ended.append("lost" if not stop.is_set() else "stopped")
        lost.set()
        working.clear()

    run = leader_locked(locks, "solo", 0.3, work, leading=leading.append)
    async with locks.hold("solo", 60) as other:  # another instance leads first
        assert other is not None
        task = asyncio.create_task(run(stop))
        await asyncio.sleep(0.01)  # let the job try for the lock (and fail)
        assert not working.is_set() and leading == []
    await asyncio.wait_for(working.wait(), 5)  # released: this instance takes over
    holder = locks._held["solo"][0]
    locks._held["solo"] = ("someone-else", locks._held["solo"][1])  # the lock is taken away
    await asyncio.wait_for(lost.wait(), 5)  # the next renewal sees the loss
    assert ended == ["lost"]
    del locks._held["solo"]  # free again: the job leads again
    await asyncio.wait_for(working.wait(), 5)
    assert locks._held["solo"][0] != holder
    stop.set()
    await asyncio.wait_for(task, 5)
    assert ended == ["lost", "stopped"] and leading == [True, False, True, False]


async def test_a_leader_locked_job_stopped_while_waiting_for_the_lock_returns():
    locks = MemoryLocks(retry_seconds=0.001)
    stop = asyncio.Event()

    async def work(until: asyncio.Event) -> None:
        raise AssertionError("never leads")

    async with locks.hold("solo", 60):
        task = asyncio.create_task(leader_locked(locks, "solo", 30, work)(stop))
        stop.set()
        await asyncio.wait_for(task, 5)
