"""The one backoff schedule and the one wait for stop or timeout."""

from __future__ import annotations

import asyncio

from marketd.core.waits import Backoff, FailureStreak, wait_for_stop


def test_backoff_grows_from_the_first_failure_and_is_capped() -> None:
    backoff = Backoff(initial=2.0, maximum=30.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.delay(0) == 2.0  # no failure yet counts as the first
    assert [Backoff(0.5, 4.0, factor=3).delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.0, 4.0]


def test_a_failure_streak_grows_until_a_success_resets_it() -> None:
    streak = FailureStreak(Backoff(initial=0.1, maximum=0.3))
    assert [streak.failed() for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
    streak.succeeded()
    assert streak.failed() == 0.1


async def test_wait_for_stop_ends_on_stop_on_wake_or_on_time() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    assert await wait_for_stop(stop, 0.01) is False  # the time passed
    assert await wait_for_stop(stop, 0.01, wake=wake) is False
    wake.set()
    assert await wait_for_stop(stop, 60, wake=wake) is False  # woken, long before a minute
    stop.set()
    assert await wait_for_stop(stop, 60) is True
    assert await wait_for_stop(stop, 60, wake=asyncio.Event()) is True
