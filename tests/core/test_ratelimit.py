"""The one-call sliding window agrees with `limits`' own strategy on the same storage and keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis

from marketd.auth.dependencies import RequestCaller
from marketd.core.memo import RecentMemo
from marketd.core.ratelimit import (
    CountingMemoryStorage,
    CountingRedisStorage,
    RateLimiter,
    WindowCounts,
    create_storage,
    remaining_and_reset,
)

ITEM = parse("5/minute")


def test_an_empty_window_leaves_the_whole_budget():
    assert remaining_and_reset(ITEM, WindowCounts(True, 0, 0.0, 0, 0.0)) == (5, 1)


def test_the_previous_window_counts_by_the_share_still_inside_the_window():
    # 4 requests in the previous minute, 45 s of it still inside: 3 of them count.
    counts = WindowCounts(True, 4, 45.0, 1, 110.0)
    remaining, reset_in = remaining_and_reset(ITEM, counts)
    assert remaining == 5 - (3 + 1)
    # One previous request drops out every 15 s; the next one in 45 % 15 = 0 s -> at least 1.
    assert reset_in == 1


def test_reset_is_the_earlier_of_the_two_windows():
    counts = WindowCounts(False, 0, 0.0, 5, 100.0)
    assert remaining_and_reset(ITEM, counts) == (0, 40)  # 100 s TTL holds 40 s of this minute
    # Six previous requests, one drops out every 10 s: the next in 55 % 10 = 5 s.
    counts = WindowCounts(False, 6, 55.0, 1, 119.5)
    assert remaining_and_reset(ITEM, counts) == (0, 5)


@pytest_asyncio.fixture(params=["redis", "memory"])
async def storage(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[CountingRedisStorage | CountingMemoryStorage]:
    if request.param == "memory":
        yield CountingMemoryStorage()
        return
    redis = Redis.from_url(redis_url)
    yield CountingRedisStorage(redis, f"{redis_prefix}rl-{uuid.uuid4().hex[:8]}:")
    await redis.aclose()


async def test_one_call_hits_and_reads_what_limits_reads(storage):
    limiter = RateLimiter(storage, "5/minute")
    strategy = SlidingWindowCounterRateLimiter(storage)
    seen = []
    for _ in range(6):
        allowed, remaining, reset_in = await limiter.hit("ip:198.51.100.7")
        stats = await strategy.get_window_stats(ITEM, "ip:198.51.100.7")
        assert remaining == stats.remaining
        assert 1 <= reset_in <= 60
        seen.append((allowed, remaining))
    assert seen == [(True, 4), (True, 3), (True, 2), (True, 1), (True, 0), (False, 0)]
    # limits' own strategy counts against the same budget, and another client has its own.
    assert not await strategy.hit(ITEM, "ip:198.51.100.7")
    assert await strategy.hit(ITEM, "ip:198.51.100.8")
    assert (await limiter.hit("ip:198.51.100.8"))[:2] == (True, 3)


async def test_a_finished_window_becomes_the_previous_one(redis_url, redis_prefix):
    redis = Redis.from_url(redis_url)
    storage = CountingRedisStorage(redis, f"{redis_prefix}rl-{uuid.uuid4().hex[:8]}:")
    key = ITEM.key_for("wallet:W")
    current = storage.bridge.prefixed_key(storage._current_window_key(key))
    previous = storage.bridge.prefixed_key(storage._previous_window_key(key))
    # Four hits in a minute that ended 30 s ago (the current key lives two windows).
    await redis.set(current, 4, px=30_000)
    counts = await storage.acquire_counted(key, 5, 60)
    assert await redis.get(previous) == b"4"
    assert counts.previous_count == 4 and 0 < counts.previous_ttl <= 30
    # 4 x (<=30/60) = 2 of them still count, so this hit is allowed and starts the new window.
    assert counts.acquired and counts.current_count == 1
    assert 60 < counts.current_ttl <= 90
    await redis.aclose()


def test_without_redis_the_budget_is_in_memory():
    assert isinstance(create_storage(None, "p:"), CountingMemoryStorage)


async def test_a_signed_in_identity_is_remembered_for_the_budget_only(api):
    keypair, headers = await api.sign_in()
    memo: RecentMemo[str, str] = RecentMemo(window=60)
    caller = RequestCaller(api.container, memo)

    def scope() -> dict[str, Any]:
        raw = [(b"authorization", headers["Authorization"].encode())]
        return {"type": "http", "headers": raw, "client": ("198.51.100.9", 50000)}

    assert caller.address(scope()) == "198.51.100.9" and caller.has_token(scope())
    assert caller.remembered(scope()) is None  # nothing known before a lookup
    assert await caller.resolve(scope()) == str(keypair.pubkey())
    assert caller.remembered(scope()) == str(keypair.pubkey())
    assert (await api.client.post("/api/auth/logout", headers=headers)).status_code == 204
    # Routes refuse the revoked token at once...
    body = {"question": "Is this session still valid?"}
    assert (await api.client.post("/api/markets", json=body, headers=headers)).status_code == 401
    # ...while its requests keep counting against the wallet until the memo forgets it.
    assert caller.remembered(scope()) == str(keypair.pubkey())
    fresh = RequestCaller(api.container)
    assert fresh.remembered(scope()) is None and await fresh.resolve(scope()) is None
