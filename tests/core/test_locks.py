"""Leader locks, in-process and in Redis: one holder, renewal, take-over after the TTL."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from redis.asyncio import Redis

from marketd.core.locks import LOCK_HELD, Lease, Locks, MemoryLocks, RedisLocks


@pytest.fixture(params=["memory", "redis"])
async def locks(request, redis_url, redis_prefix):
    if request.param == "memory":
        yield MemoryLocks()
        return
    client = Redis.from_url(redis_url)
    yield RedisLocks(client, f"{redis_prefix}{uuid.uuid4().hex[:6]}:")
    await client.aclose()


async def test_one_holder_at_a_time(locks: Locks):
    async with locks.hold("sweep", ttl=5) as first:
        assert first is not None
        async with locks.hold("sweep", ttl=5) as second:
            assert second is None
        async with locks.hold("other", ttl=5) as other:
            assert other is not None
    async with locks.hold("sweep", ttl=5) as again:
        assert again is not None  # released on exit


async def test_expired_holder_is_replaced_and_notices(locks: Locks):
    token = await locks.try_acquire("job", ttl=0.05)
    assert token is not None
    # Poll until the TTL of the silent holder runs out (only time changes this).
    while await locks.try_acquire("job", ttl=0.05) is None:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    assert not await locks.renew("job", token, 5)
    await locks.release("job", token)  # a stale release must not free the new holder's lock
    assert await locks.try_acquire("job", ttl=5) is None


async def test_renewal_keeps_the_lock_and_loss_is_reported(locks: Locks):
    async with locks.hold("renewed", ttl=0.5) as lease:
        assert lease is not None
        for _ in range(3):  # longer than the TTL passes; the renewer keeps the lock
            await asyncio.sleep(0.3)
            assert await locks.try_acquire("renewed", ttl=1) is None
        await locks.release("renewed", lease.token)  # simulate losing it
        await asyncio.wait_for(lease.lost.wait(), 2)


async def test_leadership_waits_for_the_holder_and_can_be_stopped(locks: Locks):
    holder = await locks.try_acquire("leader", ttl=0.1)
    assert holder is not None
    async with locks.leadership("leader", ttl=0.1) as lease:
        assert lease is not None  # won once the first holder's TTL ran out

    stop = asyncio.Event()
    async with locks.hold("busy", ttl=5) as held:
        assert held is not None
        stop.set()
        async with locks.leadership("busy", ttl=0.3, stop=stop) as lease:
            assert lease is None


class FlakyLocks(MemoryLocks):
    """In-process locks whose Redis "goes away" on demand; renewals are observable."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.failed = asyncio.Event()
        self.renewed = asyncio.Event()

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        if self.down:
            self.failed.set()
            raise ConnectionError("Redis is unreachable")
        renewed = await super().renew(name, token, ttl)
        self.renewed.set()
        return renewed

    async def release(self, name: str, token: str) -> None:
        if self.down:
            raise ConnectionError("Redis is unreachable")
        await super().release(name, token)


async def test_the_token_names_the_holder(locks: Locks):
    token = await locks.try_acquire("named", ttl=5)
    assert token is not None
    host, pid, _random = token.split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert await locks.try_acquire("named", ttl=5) is None
    await locks.release("named", token)


async def test_the_held_gauge_follows_the_lease(locks: Locks):
    async with locks.hold("gauged", ttl=5) as lease:
        assert lease is not None
        assert LOCK_HELD.labels("gauged")._value.get() == 1
    assert LOCK_HELD.labels("gauged")._value.get() == 0


async def test_failing_renewals_give_the_lock_up_before_it_can_expire():
    locks = FlakyLocks()
    async with locks.hold("flaky", ttl=1.5) as lease:
        assert lease is not None
        locks.down = True
        await asyncio.wait_for(lease.lost.wait(), 5)
        # Given up at the second failed renewal (2/3 of the TTL): the key is still ours, so
        # no standby can have taken the job over yet.
        assert locks._live("flaky") is not None
        assert LOCK_HELD.labels("flaky")._value.get() == 0
    # Releasing while Redis is down is logged, not raised (the key expires by itself).


async def test_a_transient_renewal_failure_keeps_the_lock():
    locks = FlakyLocks()
    async with locks.hold("blip", ttl=0.6) as lease:
        assert lease is not None
        locks.down = True
        await asyncio.wait_for(locks.failed.wait(), 5)
        locks.down = False
        locks.renewed.clear()
        await asyncio.wait_for(locks.renewed.wait(), 5)
        assert not lease.lost.is_set()
        assert await locks.try_acquire("blip", ttl=1) is None


async def test_the_configured_ttl_replaces_the_leaders_ttl_but_not_one_off_runs():
    locks = MemoryLocks(ttl=0.2, retry_seconds=0.05)
    async with locks.leadership("leader", ttl=300) as lease:
        assert lease is not None and lease.ttl == 0.2
    async with locks.hold("snapshot", ttl=300) as lease:
        assert lease is not None and lease.ttl == 300
    assert Locks.effective_ttl(MemoryLocks(), 30) == 30


async def test_a_lease_never_started_still_releases(locks: Locks):
    token = await locks.try_acquire("unstarted", ttl=5)
    assert token is not None
    await Lease(locks, "unstarted", token, 5).stop()
    assert await locks.try_acquire("unstarted", ttl=5) is not None


async def test_a_released_lock_is_taken_within_the_retry_interval_not_the_ttl():
    locks = MemoryLocks(retry_seconds=0.05)
    holder = await locks.try_acquire("handover", ttl=60)
    assert holder is not None
    stop = asyncio.Event()
    won = asyncio.Event()

    async def standby() -> None:
        async with locks.leadership("handover", ttl=60, stop=stop) as lease:
            assert lease is not None
            won.set()

    task = asyncio.create_task(standby())
    await locks.release("handover", holder)
    await asyncio.wait_for(won.wait(), 5)  # a 60 s TTL: only the release explains this
    await task
