"""Failure paths of a client session and of starting the layer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from marketd.core.bus import EventBus, InProcessBus, Subscription
from marketd.realtime.budget import MessageBudget
from marketd.realtime.buffer import MemoryEventLog, Replay
from marketd.realtime.hub import Connection, Hub
from marketd.realtime.service import Realtime
from marketd.realtime.session import ClientSession


class BrokenLog(MemoryEventLog):
    async def since(self, market_id: str, since_seq: int) -> Replay:
        raise ConnectionError("redis is down")


async def no_token(token: str) -> str | None:
    return None


async def test_a_storage_failure_during_subscribe_is_an_error_frame():
    async def market(market_id: str, fresh: bool) -> tuple[int, dict[str, Any]]:
        return 0, {"id": market_id}

    hub = Hub(max_connections_per_ip=1, max_subscriptions=1, max_held_events=1)
    sent: list[str] = []
    two_frames = asyncio.Event()

    async def send(text: str) -> None:
        sent.append(text)
        if len(sent) == 2:
            two_frames.set()

    connection = Connection(send, "ip", 10_000)
    hub.register(connection)
    session = ClientSession(
        connection,
        hub,
        BrokenLog(InProcessBus()),
        market,
        no_token,
        asyncio.Semaphore(1),
        MessageBudget(rate=100, burst=100),
    )
    await session.handle('{"type":"subscribe","marketId":"m"}')
    await session.handle('{"type":"ping"}')
    await asyncio.wait_for(two_frames.wait(), 5)
    error = json.loads(sent[0])
    assert (error["type"], error["code"], error["marketId"]) == ("error", "unavailable", "m")
    assert json.loads(sent[1]) == {"type": "pong"}
    assert connection.subscriptions == {}
    assert hub.markets == {}


class FailingSubscription(contextlib.AbstractAsyncContextManager[Subscription]):
    async def __aenter__(self) -> Subscription:
        raise ConnectionError("redis is down")

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class DeafBus(EventBus):
    """A bus whose subscription fails (Redis unreachable at startup)."""

    async def publish(self, topic: str, event: Any) -> None:
        raise AssertionError("not used")

    def subscribe(self, *topics: str) -> FailingSubscription:
        return FailingSubscription()


async def test_start_fails_loudly_when_the_bus_is_unreachable(make_settings):
    from marketd.core.container import Container

    container = Container.build(make_settings())
    container.bus = DeafBus()
    realtime = Realtime(container)
    with pytest.raises(RuntimeError, match="could not subscribe"):
        await realtime.start()
    # Not started: a later start is attempted afresh.
    container.bus = InProcessBus()
    realtime.fanout = type(realtime.fanout)(container.bus, realtime.event_log, realtime.hub)
    await realtime.start()
    await realtime.stop()
    await container.close()


async def test_frames_over_the_connection_budget_are_answered_with_an_error_and_ignored():
    reads: list[str] = []

    async def market(market_id: str, fresh: bool) -> tuple[int, dict[str, Any]]:
        reads.append(market_id)
        return 0, {"id": market_id}

    hub = Hub(max_connections_per_ip=1, max_subscriptions=10, max_held_events=1)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    connection = Connection(send, "ip", 100_000)
    hub.register(connection)
    now = [0.0]
    session = ClientSession(
        connection,
        hub,
        MemoryEventLog(InProcessBus()),
        market,
        no_token,
        asyncio.Semaphore(1),
        MessageBudget(rate=1, burst=3, clock=lambda: now[0]),
    )
    for n in range(5):
        await session.handle(json.dumps({"type": "subscribe", "marketId": f"m{n}"}))
    assert reads == ["m0", "m1", "m2"]  # the last two cost nothing
    now[0] = 1.0  # one more message a second later
    await session.handle(json.dumps({"type": "subscribe", "marketId": "m5"}))
    assert reads == ["m0", "m1", "m2", "m5"]
    await connection.stopped()
    errors = [json.loads(f) for f in sent if json.loads(f)["type"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited", "rate_limited"]
    assert "1 messages a second" in errors[0]["message"]
    assert connection.close_code is None  # the connection stays open
