"""Send queues, subscriptions and limits of one instance, without sockets."""

from __future__ import annotations

import asyncio
import json

from marketd.realtime.hub import CLIENT_GONE, SLOW_CLIENT, Connection, Hub
from marketd.realtime.metrics import WS_CONNECTIONS, WS_DROPS, WS_SUBSCRIPTIONS


class Sink:
    """A socket stand-in: records frames; `gate` blocks sending like a full TCP buffer."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.arrived = asyncio.Event()

    async def send(self, text: str) -> None:
        await self.gate.wait()
        self.frames.append(text)
        self.arrived.set()


def hub(**limits: int) -> Hub:
    values = {"max_connections_per_ip": 10, "max_subscriptions": 10, "max_held_events": 100}
    return Hub(**(values | limits))


def event(market_id: str, seq: int) -> dict[str, object]:
    return {"seq": seq, "type": "trade", "marketId": market_id}


async def drained(sink: Sink, count: int) -> list[dict[str, object]]:
    while len(sink.frames) < count:
        sink.arrived.clear()
        await asyncio.wait_for(sink.arrived.wait(), 5)
    return [json.loads(frame) for frame in sink.frames]


async def test_frames_to_a_writable_socket_are_written_at_once():
    sink = Sink()
    connection = Connection(sink.send, "1.2.3.4", 1024)
    for n in range(3):
        assert connection.send(json.dumps({"n": n}))
    # Written synchronously: no task was needed.
    assert [json.loads(frame)["n"] for frame in sink.frames] == [0, 1, 2]
    assert not connection.writing


async def test_a_full_socket_queues_frames_behind_a_writer_task_in_order():
    sink = Sink()
    sink.gate.clear()  # the socket cannot take anything now
    connection = Connection(sink.send, "1.2.3.4", 1024)
    for n in range(5):
        assert connection.send(json.dumps({"n": n}))
    assert connection.writing
    assert sink.frames == []
    assert connection.buffered_bytes == 4 * len('{"n": 0}')
    sink.gate.set()
    assert [frame["n"] for frame in await drained(sink, 5)] == [0, 1, 2, 3, 4]
    await connection.stopped()
    assert not connection.writing
    assert connection.buffered_bytes == 0
    # Idle again: the next frame goes out directly.
    connection.send(json.dumps({"n": 5}))
    assert json.loads(sink.frames[-1]) == {"n": 5}


async def test_a_client_that_does_not_drain_its_buffer_is_closed_as_slow():
    sink = Sink()
    sink.gate.clear()
    connection = Connection(sink.send, "1.2.3.4", 100)
    drops = WS_DROPS.labels("slow_client")._value.get()
    # One frame larger than the limit still goes out (it waits for the socket).
    assert connection.send("x" * 150)
    assert connection.send("a" * 60)
    assert not connection.send("b" * 60)
    assert (connection.close_code, connection.closed.is_set()) == (SLOW_CLIENT, True)
    assert connection.buffered_bytes == 0
    assert WS_DROPS.labels("slow_client")._value.get() == drops + 1
    assert not connection.send("c")
    # The writer stuck behind the full socket was cancelled.
    await connection.stopped()
    assert not connection.writing
    assert sink.frames == []


async def test_a_failing_socket_ends_the_connection():
    async def broken(text: str) -> None:
        raise OSError("reset by peer")

    connection = Connection(broken, "1.2.3.4", 100)
    assert not connection.send("hello")
    assert connection.close_code == CLIENT_GONE
    # The first close wins.
    connection.close(SLOW_CLIENT)
    assert connection.close_code == CLIENT_GONE


async def test_a_socket_failing_after_a_wait_ends_the_connection():
    gate = asyncio.Event()

    async def breaks_later(text: str) -> None:
        await gate.wait()
        raise OSError("reset by peer")

    connection = Connection(breaks_later, "1.2.3.4", 100)
    assert connection.send("hello")
    assert connection.send("queued")
    gate.set()
    await asyncio.wait_for(connection.closed.wait(), 5)
    assert connection.close_code == CLIENT_GONE
    await connection.stopped()
    assert not connection.writing


async def test_held_events_are_released_after_the_state_without_duplicates():
    sink = Sink()
    the_hub = hub()
    connection = Connection(sink.send, "ip", 10_000)
    assert the_hub.register(connection)
    subscription = the_hub.subscribe(connection, "m")
    assert subscription is not None and not subscription.live
    for seq in (3, 4, 5):
        assert the_hub.broadcast(event("m", seq)) == 1
    assert connection.buffered_bytes == 0  # held, not queued
    connection.send(json.dumps({"type": "market_state", "seq": 4}))
    subscription.go_live(4)
    assert subscription.live
    the_hub.broadcast(event("m", 5))  # a duplicate (e.g. seen on replay and live)
    the_hub.broadcast(event("m", 6))
    frames = await drained(sink, 3)
    assert [frame["seq"] for frame in frames] == [4, 5, 6]
    assert frames[0]["type"] == "market_state"


async def test_too_many_held_events_close_the_connection():
    the_hub = hub(max_held_events=2)
    connection = Connection(Sink().send, "ip", 10_000)
    the_hub.register(connection)
    the_hub.subscribe(connection, "m")
    for seq in (1, 2, 3):
        the_hub.broadcast(event("m", seq))
    assert connection.close_code == SLOW_CLIENT


async def test_broadcast_needs_a_market_and_a_seq_and_subscribers():
    the_hub = hub()
    connection = Connection(Sink().send, "ip", 10_000)
    the_hub.register(connection)
    the_hub.subscribe(connection, "m")
    assert the_hub.broadcast({"type": "trade", "marketId": "m"}) == 0
    assert the_hub.broadcast({"seq": 1, "type": "trade"}) == 0
    assert the_hub.broadcast(event("other", 1)) == 0
    assert the_hub.broadcast(event("m", 1)) == 1


async def test_limits_per_ip_and_per_connection():
    the_hub = hub(max_connections_per_ip=2, max_subscriptions=1)
    first, second, third = (Connection(Sink().send, "ip", 100) for _ in range(3))
    elsewhere = Connection(Sink().send, "other-ip", 100)
    assert the_hub.register(first) and the_hub.register(second)
    assert not the_hub.register(third)
    assert the_hub.register(elsewhere)
    the_hub.unregister(first)
    the_hub.unregister(first)  # twice is harmless
    assert the_hub.register(third)

    assert the_hub.subscribe(second, "a") is not None
    assert the_hub.subscribe(second, "b") is None
    assert the_hub.subscribe(second, "a") is not None  # replacing is not a new one
    assert not the_hub.unsubscribe(second, "b")
    connections, subscriptions = WS_CONNECTIONS._value.get(), WS_SUBSCRIPTIONS._value.get()
    the_hub.unregister(second)
    assert the_hub.markets == {}
    assert WS_CONNECTIONS._value.get() == connections - 1
    assert WS_SUBSCRIPTIONS._value.get() == subscriptions - 1


async def test_heartbeat_only_on_idle_connections():
    the_hub = hub()
    idle_sink, busy_sink = Sink(), Sink()
    idle, busy = Connection(idle_sink.send, "ip", 1000), Connection(busy_sink.send, "ip", 1000)
    the_hub.register(idle)
    the_hub.register(busy)
    idle.last_sent -= 60
    assert the_hub.heartbeat(30) == 1
    assert idle_sink.frames == ['{"type":"heartbeat"}']
    assert busy_sink.frames == []
    assert the_hub.heartbeat(30) == 0  # just sent one


async def test_close_all():
    the_hub = hub()
    connections = [Connection(Sink().send, "ip", 100) for _ in range(3)]
    for connection in connections:
        the_hub.register(connection)
    the_hub.close_all(1001, "bye")
    assert {(c.close_code, c.close_reason) for c in connections} == {(1001, "bye")}


async def test_resume_finishes_a_started_coroutine_in_a_task():
    from marketd.realtime.hub import _Resume

    gate = asyncio.Event()
    steps: list[str] = []

    async def job() -> None:
        steps.append("started")
        try:
            await gate.wait()
            steps.append("resumed")
        except asyncio.CancelledError:
            steps.append("cancelled")  # swallowed: the awaiting task then ends normally

    first = job()
    entered = asyncio.Event()
    task = asyncio.create_task(_wrap(_Resume(first, first.send(None)), entered))
    await entered.wait()  # the task is now suspended inside the resumed coroutine
    assert steps == ["started"]
    task.cancel()
    await task
    assert steps == ["started", "cancelled"]
    assert not task.cancelled()

    second = job()
    task = asyncio.create_task(_wrap(_Resume(second, second.send(None)), asyncio.Event()))
    gate.set()
    await task
    assert steps[-1] == "resumed"


async def _wrap(awaitable, entered: asyncio.Event) -> None:
    entered.set()
    await awaitable


async def test_the_activity_channel_gets_the_items_of_the_kinds_each_member_chose():
    the_hub = hub()
    sink, voter_sink, other_sink = Sink(), Sink(), Sink()
    member = Connection(sink.send, "ip", 10_000)
    voter = Connection(voter_sink.send, "ip", 10_000)
    outsider = Connection(other_sink.send, "ip", 10_000)
    for connection in (member, voter, outsider):
        the_hub.register(connection)
    assert not the_hub.wants_activity(event("m", 1))  # no member: nothing is read
    the_hub.join(member, "activity", frozenset({"trade", "vote", "state_change"}))
    the_hub.join(voter, "activity", frozenset({"vote"}))
    assert the_hub.broadcast(event("m", 1)) == 0  # the channel gets items, not events
    assert the_hub.wants_activity({"type": "trade"})
    assert the_hub.wants_activity({"type": "market_state_change"})
    assert not the_hub.wants_activity({"type": "market_created"})  # nobody chose it
    assert not the_hub.wants_activity({"type": "discussion"})  # not a feed kind
    assert the_hub.send_activity({"kind": "trade", "id": "t"}) == 1
    assert the_hub.send_activity({"kind": "vote", "id": "v"}) == 2
    assert the_hub.send_activity({"kind": "market_created", "id": "m"}) == 0
    item = {"type": "activity", "channel": "activity"}
    assert await drained(sink, 2) == [
        item | {"item": {"kind": "trade", "id": "t"}},
        item | {"item": {"kind": "vote", "id": "v"}},
    ]
    assert await drained(voter_sink, 1) == [item | {"item": {"kind": "vote", "id": "v"}}]
    assert other_sink.frames == []
    the_hub.leave(member, "activity")
    the_hub.send_activity({"kind": "trade", "id": "t2"})
    the_hub.join(member, "activity", frozenset({"vote"}))
    the_hub.unregister(member)
    the_hub.leave(voter, "activity")
    assert the_hub.activity == {}
    assert len(sink.frames) == 2
