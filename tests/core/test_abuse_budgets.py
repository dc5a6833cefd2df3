"""Budgets that free keys and random tokens cannot get around: the address pays before a token
is looked up, sign-in has its own budget, and one address acts for a bounded set of wallets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

import marketd.auth.dependencies as dependencies
from marketd.core.address_wallets import (
    AddressWallets,
    MemoryAddressWallets,
    RedisAddressWallets,
    create_address_wallets,
)


async def test_random_tokens_over_budget_cost_no_lookup(api_factory, monkeypatch):
    api = await api_factory(rate_limit="3/minute", redis_prefix=f"ab-{uuid.uuid4().hex[:8]}:")
    lookups: list[str] = []
    real = dependencies.session_wallet

    async def counted(container: Any, token: str) -> str | None:
        lookups.append(token)
        return await real(container, token)

    monkeypatch.setattr(dependencies, "session_wallet", counted)
    statuses = []
    for _ in range(10):
        headers = {"Authorization": f"Bearer {uuid.uuid4().hex}"}
        statuses.append((await api.client.get("/api/markets", headers=headers)).status_code)
    assert statuses == [200] * 3 + [429] * 7
    assert len(lookups) == 3  # the refused seven were never looked up


async def test_sign_in_has_a_budget_of_its_own(api_factory):
    api = await api_factory(
        sign_in_rate_limit="2/minute", redis_prefix=f"ab-{uuid.uuid4().hex[:8]}:"
    )
    wallet = {"wallet": "11111111111111111111111111111111"}
    codes = [(await api.client.post("/api/auth/challenge", json=wallet)).status_code for _ in "abc"]
    assert codes == [200, 200, 429]
    refused = await api.client.post("/api/auth/challenge", json=wallet)
    assert refused.headers["ratelimit-limit"] == "2"
    assert refused.json()["type"].endswith("/rate-limited")
    assert (await api.client.get("/api/markets")).status_code == 200  # other requests unaffected


async def test_one_address_acts_for_a_bounded_set_of_wallets(api_factory):
    api = await api_factory(ip_wallets_limit=2, redis_prefix=f"ab-{uuid.uuid4().hex[:8]}:")
    sessions = [(await api.sign_in())[1] for _ in range(3)]
    first, second, third = [
        await api.client.get("/api/markets", headers=headers) for headers in sessions
    ]
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429
    problem = third.json()
    assert problem["type"].endswith("/too-many-wallets")
    assert "2 wallets" in problem["detail"]
    assert int(third.headers["retry-after"]) == 3600
    # The wallets already admitted keep working.
    assert (await api.client.get("/api/markets", headers=sessions[0])).status_code == 200


@pytest_asyncio.fixture(params=["memory", "redis"])
async def tracker_factory(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[Any]:
    now = [1_000.0]
    redis = Redis.from_url(redis_url)

    def make(limit: int, window: float) -> AddressWallets:
        if request.param == "memory":
            return MemoryAddressWallets(limit, window, clock=lambda: now[0])
        prefix = f"{redis_prefix}aw-{uuid.uuid4().hex[:8]}:"
        return RedisAddressWallets(redis, prefix, limit, window, clock=lambda: now[0])

    yield make, now
    await redis.aclose()


async def test_a_wallet_slot_frees_after_the_window(tracker_factory):
    make, now = tracker_factory
    tracker = make(2, 60.0)
    assert await tracker.admit("198.51.100.1", "A")
    assert await tracker.admit("198.51.100.1", "B")
    assert not await tracker.admit("198.51.100.1", "C")
    assert await tracker.admit("198.51.100.2", "C")  # another address has its own set
    now[0] += 30
    assert await tracker.admit("198.51.100.1", "A")  # known wallets refresh their time
    now[0] += 31  # B idle for 61 s: its slot is free, A (seen 31 s ago) keeps its own
    assert await tracker.admit("198.51.100.1", "C")
    assert not await tracker.admit("198.51.100.1", "B")


async def test_the_memory_tracker_forgets_the_oldest_addresses_past_its_capacity():
    tracker = MemoryAddressWallets(1, 60.0, capacity=2)
    for address in ("a", "b", "c"):
        assert await tracker.admit(address, "W")
    assert await tracker.admit("a", "X")  # "a" was forgotten: a new set
    assert not await tracker.admit("c", "X")


def test_without_redis_the_tracker_is_in_memory():
    assert isinstance(create_address_wallets(None, "p:", 3, 60.0), MemoryAddressWallets)
