"""Several API instances sharing Redis; slow clients."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from marketd.core.events import VoteCast, publish
from marketd.realtime.metrics import WS_DROPS


def vote(market_id: str, likes: int) -> dict[str, Any]:
    return {
        "type": "vote",
        "marketId": market_id,
        "voteType": "proposal",
        "vote": "like",
        "user": f"wallet-{likes}",
        "likes": likes,
        "dislikes": 0,
    }


@pytest.fixture
def backend() -> str:
    """Instances only share events through Redis: these tests need the postgres backend."""
    return "postgres"


async def test_event_published_on_b_reaches_100_clients_on_a_in_order(instance_factory):
    a = await instance_factory()
    b = await instance_factory()
    market_id = await a.market()
    clients = [await a.connect() for _ in range(100)]
    states = await asyncio.gather(*(client.subscribe(market_id) for client in clients))
    assert {state["seq"] for state in states} == {0}
    on_b = await b.connect()
    await on_b.subscribe(market_id)

    for likes in range(1, 6):
        await b.publish("votes", vote(market_id, likes))

    async def five(client: Any) -> list[dict[str, Any]]:
        return [await client.recv_type("vote") for _ in range(5)]

    received = await asyncio.gather(*(five(client) for client in [*clients, on_b]))
    expected = [{"seq": n} | vote(market_id, n) for n in range(1, 6)]
    for events in received:
        # Same seq for the same event on every instance, each event exactly once, in order.
        assert events == expected
    await asyncio.gather(*(client.roundtrip() for client in clients))
    assert await a.realtime.event_log.head(market_id) == 5


async def test_identical_events_collapse_unless_they_carry_an_event_id(instance_factory):
    a = await instance_factory()
    b = await instance_factory()
    market_id = await a.market()
    client = await a.connect()
    await client.subscribe(market_id)
    # Both instances see both copies: the sequencer claims by content, so one is delivered.
    await b.publish("votes", vote(market_id, 7))
    await b.publish("votes", vote(market_id, 7))
    again = VoteCast(
        market_id=market_id, kind="proposal", vote=True, wallet="wallet-8", likes=8, dislikes=0
    )
    await publish(b.container.bus, again)
    await publish(b.container.bus, again)
    events = [await client.recv_type("vote") for _ in range(3)]
    assert [(event["seq"], event["likes"]) for event in events] == [(1, 7), (2, 8), (3, 8)]
    assert events[1]["eventId"] != events[2]["eventId"]
    await client.roundtrip()


async def test_resume_on_another_instance(instance_factory):
    a = await instance_factory()
    b = await instance_factory()
    market_id = await a.market()
    client = await a.connect()
    await client.subscribe(market_id)
    await a.publish("votes", vote(market_id, 1))
    assert (await client.recv_type("vote"))["seq"] == 1
    await client.close()
    observer = await a.connect()
    await observer.subscribe(market_id, since_seq=1)
    for likes in (2, 3):
        await a.publish("votes", vote(market_id, likes))
    assert [(await observer.recv_type("vote"))["seq"] for _ in range(2)] == [2, 3]

    resumed = await b.connect()
    await resumed.subscribe(market_id, since_seq=1)
    assert [(await resumed.recv_type("vote"))["likes"] for _ in range(2)] == [2, 3]


async def _slow_connection(url: str) -> Any:
    """A client that stops reading: tiny receive buffer and a 1-frame client queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return await connect(url, sock=sock, compression=None, max_queue=1)


@pytest.mark.parametrize("backend", ["postgres", "embedded"], indirect=False)
async def test_slow_client_is_dropped_while_the_others_keep_their_latency(
    instance_factory, backend
):
    a = await instance_factory(send_buffer_bytes=64 * 1024, close_timeout_seconds=30)
    market_id = await a.market()
    slow = await _slow_connection(a.ws_url)
    await slow.send(f'{{"type":"subscribe","marketId":"{market_id}"}}')
    fast = [await a.connect() for _ in range(5)]
    for client in fast:
        await client.subscribe(market_id)
    drops = WS_DROPS.labels("slow_client")._value.get()
    padding = "x" * 16 * 1024
    latencies: list[float] = []
    for n in range(1, 400):
        started = time.monotonic()
        await a.publish(
            "discussions", {"type": "discussion", "marketId": market_id, "n": n, "text": padding}
        )
        for client in fast:
            event = await client.recv_type("discussion", within=2)
            assert event["n"] == n
        latencies.append(time.monotonic() - started)
        if WS_DROPS.labels("slow_client")._value.get() > drops:
            break
    else:
        pytest.fail("the slow client was never dropped")
    dropped_at = n
    # The others keep receiving, promptly, after the drop.
    for n in range(dropped_at + 1, dropped_at + 11):
        started = time.monotonic()
        await a.publish("discussions", {"type": "discussion", "marketId": market_id, "n": n})
        for client in fast:
            assert (await client.recv_type("discussion", within=2))["n"] == n
        latencies.append(time.monotonic() - started)
    assert max(latencies) < 1.0, max(latencies)
    assert len(a.realtime.hub.connections) == 5

    # When the slow client reads again it finds what was sent, then the close frame.
    frames = 0
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(slow.recv(), 10)
            frames += 1
    assert frames < dropped_at + 2
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4008
