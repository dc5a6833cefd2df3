"""The Redis bus listener survives losing its connection (real Redis, real `CLIENT KILL`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from marketd.core.bus import BUS_RECONNECTS, RedisBus, Subscription, _Listener
from marketd.core.redis import create_redis
from marketd.core.waits import Backoff

DEADLINE = 15.0


@pytest_asyncio.fixture
async def named_redis(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    """The production client, with a connection name unique to this test: the test kills only
    its own connections (other test runs share the Redis server)."""
    name = f"marketd-bus-test-{uuid.uuid4().hex[:8]}"
    client = create_redis(redis_url)
    client.connection_pool.connection_kwargs["client_name"] = name
    yield client, name
    await client.aclose()


async def kill_pubsub_connections(redis_url: str, name: str) -> int:
    """`CLIENT KILL` every pub/sub connection named `name`; how many were killed."""
    admin = Redis.from_url(redis_url)
    try:
        clients = await admin.client_list(_type="pubsub")
        ids = [str(client["id"]) for client in clients if client.get("name") == name]
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        return len(ids)
    finally:
        await admin.aclose()


async def next_event(subscription: Subscription) -> dict[str, Any]:
    return await asyncio.wait_for(subscription.get(), DEADLINE)


async def reconnected(subscription: Subscription, times: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while subscription.reconnects < times:
        assert time.monotonic() < deadline, "the listener did not resubscribe"
        await asyncio.sleep(0.02)


def reconnect_count() -> float:
    return BUS_RECONNECTS._value.get()


async def test_listener_resubscribes_after_its_connection_is_killed(
    named_redis: tuple[Redis, str], redis_url: str, redis_prefix: str
) -> None:
    client, name = named_redis
    prefix = f"{redis_prefix}bus-{uuid.uuid4().hex[:6]}:"
    bus = RedisBus(client, prefix, backoff=Backoff(initial=0.01, maximum=5.0))
    before = reconnect_count()
    async with bus.subscribe("votes") as votes:
        await bus.publish("votes", {"n": 1})
        assert await next_event(votes) == {"n": 1}

        assert await kill_pubsub_connections(redis_url, name) == 1
        await reconnected(votes, 1)
        await bus.publish("votes", {"n": 2})
        assert await next_event(votes) == {"n": 2}

        # And again: each loss is survived, not only the first.
        assert await kill_pubsub_connections(redis_url, name) == 1
        await reconnected(votes, 2)
        await bus.publish("votes", {"n": 3})
        assert await next_event(votes) == {"n": 3}
    assert reconnect_count() == before + 2
    assert await kill_pubsub_connections(redis_url, name) == 0  # closed on exit


async def test_resubscribing_backs_off_while_redis_is_unreachable(
    named_redis: tuple[Redis, str],
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, name = named_redis
    bus = RedisBus(
        client,
        f"{redis_prefix}bus-{uuid.uuid4().hex[:6]}:",
        backoff=Backoff(initial=0.01, maximum=5.0),
    )
    real_subscribed = bus.subscribed
    refusals = 0

    async def refused_twice(channels: list[str]) -> Any:
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            raise RedisConnectionError("Redis is down")
        return await real_subscribed(channels)

    async with bus.subscribe("markets") as markets:
        monkeypatch.setattr(bus, "subscribed", refused_twice)
        assert await kill_pubsub_connections(redis_url, name) == 1
        await reconnected(markets, 1)
        assert refusals == 2
        await bus.publish("markets", {"type": "market_state_change"})
        assert await next_event(markets) == {"type": "market_state_change"}


async def test_a_message_that_is_not_json_is_dropped(
    named_redis: tuple[Redis, str], redis_prefix: str
) -> None:
    client, _ = named_redis
    prefix = f"{redis_prefix}bus-{uuid.uuid4().hex[:6]}:"
    bus = RedisBus(client, prefix)
    async with bus.subscribe("trades") as trades:
        await client.publish(prefix + "bus:trades", b"\xff not json")
        await bus.publish("trades", {"ok": True})
        assert await next_event(trades) == {"ok": True}
        assert trades.reconnects == 0


async def test_the_first_subscription_fails_at_once_when_redis_is_down() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RedisConnectionError):
            async with RedisBus(unreachable, "nowhere:").subscribe("votes"):
                pass
    finally:
        await unreachable.aclose()


class EndingPubSub:
    """A pub/sub whose message stream ends (as redis-py's does when nothing is subscribed)."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.closed = False

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        for message in self.messages:
            yield message

    async def aclose(self) -> None:
        self.closed = True


async def test_a_stream_that_ends_is_treated_as_a_lost_connection(
    named_redis: tuple[Redis, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = named_redis
    bus = RedisBus(client, "unused:", backoff=Backoff(initial=0.001, maximum=5.0))
    ended = EndingPubSub([{"data": b'{"n": 1}', "channel": b"c"}])
    replacement = EndingPubSub([{"data": b'{"n": 2}', "channel": b"c"}])
    replacements = iter([replacement])

    async def subscribed(channels: list[str]) -> Any:
        return next(replacements, EndingPubSub([]))

    monkeypatch.setattr(bus, "subscribed", subscribed)
    subscription = Subscription()
    listener = _Listener(bus, ["c"], subscription, ended)  # type: ignore[arg-type]
    task = asyncio.create_task(listener.run())
    try:
        assert [await next_event(subscription), await next_event(subscription)] == [
            {"n": 1},
            {"n": 2},
        ]
        await reconnected(subscription, 2)
        assert ended.closed and replacement.closed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
