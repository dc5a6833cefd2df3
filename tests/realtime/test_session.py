"""Failure paths of a client session and of starting the layer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from marketd.core.bus import EventBus, InProcessBus, Subscription
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
        connection, hub, BrokenLog(InProcessBus()), market, no_token, asyncio.Semaphore(1)
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
