"""The fan-out loop with stand-in logs (the real ones are covered by the socket tests)."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import pytest

from marketd.core.bus import InProcessBus
from marketd.core.events import DomainEvent, TradeIndexed, VoteCast, publish, wire
from marketd.realtime.buffer import EventLog, MemoryEventLog, Replay
from marketd.realtime.fanout import Fanout
from marketd.realtime.hub import Connection, Hub


class FlakyLog(EventLog):
    """Fails on the first append, records the others."""

    def __init__(self) -> None:
        self.appended: list[dict[str, Any]] = []
        self.calls = 0
        self.failed = asyncio.Event()
        self.done = asyncio.Event()

    async def append(self, market_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
        self.calls += 1
        if self.calls == 1:
            self.failed.set()
            raise ConnectionError("redis is down")
        self.appended.append(event)
        self.done.set()
        return None

    async def head(self, market_id: str) -> int:
        return 0

    async def since(self, market_id: str, since_seq: int) -> Replay:
        return Replay(since_seq, [], True, 0)


def new_hub() -> Hub:
    return Hub(max_connections_per_ip=1, max_subscriptions=1, max_held_events=1)


@contextlib.asynccontextmanager
async def running(fanout: Fanout):
    task = asyncio.create_task(fanout.run())
    await asyncio.wait_for(fanout.ready.wait(), 5)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert not fanout.ready.is_set()


async def test_sequencing_survives_a_failure_and_skips_events_without_market():
    bus = InProcessBus()
    log = FlakyLog()
    fanout = Fanout(bus, log, new_hub())
    async with running(fanout):
        await bus.publish("votes", {"type": "vote", "marketId": "m", "n": 1})
        await asyncio.wait_for(log.failed.wait(), 5)  # lost with Redis down...
        await bus.publish("votes", {"type": "vote", "n": 2})  # no market: ignored
        await bus.publish("votes", {"type": "vote", "marketId": "m", "n": 3})
        await asyncio.wait_for(log.done.wait(), 5)  # ...and the loop goes on
    assert [event["n"] for event in log.appended] == [3]
    assert log.calls == 2


async def test_publish_stamps_a_unique_event_id_on_the_wire_form():
    bus = InProcessBus()
    trade = TradeIndexed(
        market_id="m",
        trade_type="BUY",
        outcome="YES",
        shares=5,
        price=Decimal("0.6"),
        wallet="w",
        signature="s",
    )
    async with bus.subscribe("trades") as subscription:
        first = await publish(bus, trade)
        second = await publish(bus, trade)
        received = [await subscription.get() for _ in range(2)]
    assert first.event_id != second.event_id
    assert [event["eventId"] for event in received] == [first.event_id, second.event_id]
    assert received[0] == wire(first)
    assert received[0]["marketId"] == "m"


async def test_in_process_events_reach_the_hub_with_their_seq():
    bus = InProcessBus()
    hub = new_hub()
    delivered: list[dict[str, Any]] = []
    seen = asyncio.Event()

    def record(event: dict[str, Any]) -> int:
        delivered.append(event)
        seen.set()
        return 0

    hub.broadcast = record  # type: ignore[method-assign]
    fanout = Fanout(bus, MemoryEventLog(bus), hub)
    async with running(fanout):
        await bus.publish("snapshots", {"type": "snapshot", "marketId": "m", "cid": "b"})
        await asyncio.wait_for(seen.wait(), 5)
    assert delivered == [{"seq": 1, "type": "snapshot", "marketId": "m", "cid": "b"}]


@pytest.mark.parametrize("topic", ["markets", "trades", "votes", "discussions", "snapshots"])
async def test_every_source_topic_is_sequenced(topic):
    bus = InProcessBus()
    log = MemoryEventLog(bus)
    fanout = Fanout(bus, log, new_hub())
    async with running(fanout), bus.subscribe("realtime") as sequenced:
        await bus.publish(topic, {"type": "x", "marketId": "m"})
        assert (await asyncio.wait_for(sequenced.get(), 5))["seq"] == 1


async def test_the_activity_task_sends_the_items_it_reads_and_survives_a_failure():
    """Only events a member wants are read; an unreadable item (the database down) or an event
    the feed does not list sends nothing, and the next item still goes out, in order."""
    bus = InProcessBus()
    hub = new_hub()
    sent: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    def record(item: dict[str, Any]) -> int:
        sent.append(item)
        arrived.set()
        return 1

    hub.send_activity = record  # type: ignore[method-assign]
    hub.activity[Connection(_discard, "ip", 1_000)] = frozenset({"trade", "vote"})
    read: list[int] = []

    async def read_activity(event: DomainEvent) -> dict[str, Any] | None:
        assert isinstance(event, VoteCast)  # typed, read back from the sequenced wire form
        read.append(event.likes)
        if event.likes == 1:
            raise ConnectionError("database down")
        return None if event.likes == 2 else {"kind": event.type, "id": str(event.likes)}

    def vote(n: int) -> dict[str, Any]:
        cast = VoteCast(market_id="m", kind="proposal", vote=True, wallet="w", likes=n, dislikes=0)
        return wire(cast)

    fanout = Fanout(bus, MemoryEventLog(bus), hub, read_activity)
    async with running(fanout):
        await bus.publish("votes", vote(1))
        await bus.publish("votes", vote(2))
        await bus.publish("markets", {"type": "market_created", "marketId": "m", "state": "P"})
        await bus.publish("discussions", {"type": "discussion", "marketId": "m"})
        await bus.publish("votes", {"type": "vote", "marketId": "m"})  # malformed: not read
        await bus.publish("votes", vote(5))
        await asyncio.wait_for(arrived.wait(), 5)
    assert read == [1, 2, 5]  # market_created: nobody wants it; discussion: not a feed kind
    assert sent == [{"kind": "vote", "id": "5"}]


async def _discard(text: str) -> None:
    return None
