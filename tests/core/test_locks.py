"""Leader locks, in-process and in Redis: one holder, renewal, take-over after the TTL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from marketd.core.locks import Locks, MemoryLocks, RedisLocks


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
