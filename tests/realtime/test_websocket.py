"""The `/ws` protocol end to end, on real uvicorn servers (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from marketd.core.events import wire
from marketd.indexer.store import Applied
from marketd.markets.cache import LISTING_GROUP, MarketCache
from marketd.markets.schemas import MarketCreate
from marketd.markets.service import MarketService
from marketd.realtime.metrics import WS_CONNECTIONS, WS_MESSAGES_OUT, WS_SUBSCRIPTIONS

from ..markets.trading import Fill, chain_event, wallet
from ..markets.trading import trade as trade_on_chain


def trade(market_id: str, n: int) -> dict[str, Any]:
    return {
        "type": "trade",
        "marketId": market_id,
        "tradeType": "BUY",
        "outcome": "YES",
        "shares": 1_000_000_000 + n,
        "price": "0.512345678",
        "user": "wallet",
        "signature": f"sig-{n}",
    }


async def test_subscribe_sends_the_current_state_first_then_events(instance_factory):
    a = await instance_factory()
    market_id = await a.market()
    client = await a.connect()
    state = await client.subscribe(market_id)
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        rest = (await http.get(f"/api/markets/{market_id}")).json()
    assert state == {"type": "market_state", "marketId": market_id, "seq": 0, "market": rest}

    await a.publish("trades", trade(market_id, 1))
    event = await client.recv_type("trade")
    assert event == {"seq": 1} | trade(market_id, 1)
    await a.publish("markets", state_change(market_id, 2))
    assert (await client.recv_type("market_state_change"))["seq"] == 2


async def test_a_cached_state_is_followed_by_the_events_after_it(instance_factory):
    a = await instance_factory(state_cache_seconds=600)
    market_id = await a.market()
    first = await a.connect()
    assert (await first.subscribe(market_id))["seq"] == 0
    await a.publish("trades", trade(market_id, 1))
    await first.recv_type("trade")

    # The state cached at seq 0 is served again, and event 1 brings it up to date.
    late = await a.connect()
    state = await late.subscribe(market_id)
    assert (state["seq"], state["market"]["id"]) == (0, market_id)
    assert (await late.recv_type("trade")) == {"seq": 1} | trade(market_id, 1)
    await a.publish("markets", state_change(market_id, 2))
    for each in (first, late):
        change = await each.recv_type("market_state_change")
        assert (change["seq"], change["newState"]) == (2, "RESOLVING")
    await late.roundtrip()


def state_change(market_id: str, timestamp: int) -> dict[str, Any]:
    return {
        "type": "market_state_change",
        "marketId": market_id,
        "oldState": "ACTIVE",
        "newState": "RESOLVING",
        "timestamp": timestamp,
    }


async def test_events_of_other_markets_and_without_market_are_not_delivered(instance_factory):
    a = await instance_factory()
    mine, other = await a.market(), await a.market()
    client = await a.connect()
    await client.subscribe(mine)
    await a.publish("trades", trade(other, 1))
    await a.publish("discussions", {"type": "discussion", "text": "no market"})
    await a.publish("votes", {"type": "vote", "marketId": mine, "vote": "like", "likes": 1})
    vote = await client.recv_type("vote")
    assert (vote["marketId"], vote["seq"]) == (mine, 1)


async def test_unsubscribe_stops_delivery(instance_factory):
    a = await instance_factory()
    first, second = await a.market(), await a.market()
    client = await a.connect()
    await client.subscribe(first)
    await client.subscribe(second)
    await a.publish("trades", trade(first, 1))
    assert (await client.recv_type("trade"))["marketId"] == first

    await client.send({"type": "unsubscribe", "marketId": first})
    assert await client.recv_type("unsubscribed") == {"type": "unsubscribed", "marketId": first}
    before = WS_SUBSCRIPTIONS._value.get()
    # Published in this order: had `first` still been delivered, it would arrive before.
    await a.publish("trades", trade(first, 2))
    await a.publish("trades", trade(second, 3))
    received = await client.recv_type("trade")
    assert (received["marketId"], received["signature"]) == (second, "sig-3")
    await client.roundtrip()
    # Unsubscribing twice is acknowledged again and changes nothing.
    await client.send({"type": "unsubscribe", "marketId": first})
    assert (await client.recv_type("unsubscribed"))["marketId"] == first
    assert WS_SUBSCRIPTIONS._value.get() == before


async def test_resubscribe_on_the_same_connection_restarts_the_subscription(instance_factory):
    a = await instance_factory()
    market_id = await a.market()
    client = await a.connect()
    await client.subscribe(market_id)
    await a.publish("trades", trade(market_id, 1))
    await client.recv_type("trade")
    state = await client.subscribe(market_id)
    # Up to date at seq 1: either the state says so or the catch-up event follows it.
    if state["seq"] == 0:
        assert (await client.recv_type("trade"))["seq"] == 1
    else:
        assert state["seq"] == 1
    await a.publish("trades", trade(market_id, 2))
    assert (await client.recv_type("trade"))["seq"] == 2
    await client.roundtrip()


async def test_reconnect_with_since_seq_replays_exactly_the_missed_events(instance_factory):
    a = await instance_factory()
    market_id = await a.market()
    observer = await a.connect()
    await observer.subscribe(market_id)
    client = await a.connect()
    await client.subscribe(market_id)
    for n in range(1, 4):
        await a.publish("trades", trade(market_id, n))
    seen = [(await client.recv_type("trade"))["seq"] for _ in range(3)]
    assert seen == [1, 2, 3]
    await client.close()

    for n in range(4, 8):
        await a.publish("trades", trade(market_id, n))
    # The observer's receipt of the last one proves all four are sequenced and buffered.
    assert [(await observer.recv_type("trade"))["seq"] for _ in range(7)] == list(range(1, 8))

    again = await a.connect()
    await again.subscribe(market_id, since_seq=seen[-1])
    missed = [await again.recv_type("trade") for _ in range(4)]
    assert [event["seq"] for event in missed] == [4, 5, 6, 7]
    assert [event["signature"] for event in missed] == ["sig-4", "sig-5", "sig-6", "sig-7"]
    await a.publish("trades", trade(market_id, 8))
    assert (await again.recv_type("trade"))["seq"] == 8

    # Nothing missed: only the ack, then live events.
    current = await a.connect()
    await current.subscribe(market_id, since_seq=8)
    await a.publish("trades", trade(market_id, 9))
    assert (await current.recv_type("trade"))["seq"] == 9


async def test_since_seq_beyond_the_buffer_answers_resync_then_the_state(instance_factory):
    a = await instance_factory(replay_events=5)
    market_id = await a.market()
    observer = await a.connect()
    await observer.subscribe(market_id)
    # Redis trims approximately (whole stream nodes of 100 entries): publish well past that.
    total = 260
    for n in range(1, total + 1):
        await a.publish("trades", trade(market_id, n))
    for n in range(1, total + 1):
        assert (await observer.recv_type("trade"))["seq"] == n

    client = await a.connect()
    await client.subscribe(market_id, since_seq=1)
    resync = await client.recv_type("resync_required")
    assert (resync["sinceSeq"], resync["seq"]) == (1, total)
    assert resync["oldestSeq"] > 2
    state = await client.recv_type("market_state")
    assert (state["marketId"], state["seq"]) == (market_id, total)
    await a.publish("trades", trade(market_id, total + 1))
    assert (await client.recv_type("trade"))["seq"] == total + 1

    # A seq from the future (e.g. the buffer was reset) also needs a resync.
    future = await a.connect()
    await future.subscribe(market_id, since_seq=10_000)
    assert (await future.recv_type("resync_required"))["seq"] == total + 1
    covered = (await future.recv_type("market_state"))["seq"]
    assert covered in (total, total + 1)  # the state may be cached at `total`...
    if covered == total:  # ...then the event after it follows
        assert (await future.recv_type("trade"))["seq"] == total + 1
    await future.roundtrip()


async def test_bad_input_gets_errors_and_the_connection_stays_open(instance_factory):
    a = await instance_factory()
    client = await a.connect()

    async def expect_error(frame: str | bytes, code: str) -> dict[str, Any]:
        await client.ws.send(frame)
        message = await client.recv_type("error")
        assert message["code"] == code, message
        return message

    await expect_error("{not json", "invalid_json")
    await expect_error("[1, 2]", "invalid_message")
    await expect_error('{"type": "dance"}', "unknown_type")
    await expect_error('{"type": "subscribe"}', "invalid_message")
    await expect_error('{"type": "subscribe", "marketId": "m", "sinceSeq": -1}', "invalid_message")
    await expect_error('{"type": "auth"}', "invalid_message")
    await expect_error(b"\x00\x01", "invalid_message")
    await expect_error("x" * 5000, "message_too_large")
    unknown = await expect_error(
        '{"type": "subscribe", "marketId": "00000000-0000-4000-8000-000000000000"}',
        "unknown_market",
    )
    assert unknown["marketId"] == "00000000-0000-4000-8000-000000000000"
    await client.send({"type": "ping"})
    assert await client.recv_type("pong") == {"type": "pong"}
    # The failed subscription left nothing behind: a real one still works.
    market_id = await a.market()
    assert (await client.subscribe(market_id))["marketId"] == market_id


async def test_subscription_cap_per_connection(instance_factory):
    a = await instance_factory(max_subscriptions=2)
    client = await a.connect()
    markets = [await a.market() for _ in range(3)]
    await client.subscribe(markets[0])
    await client.subscribe(markets[1])
    await client.send({"type": "subscribe", "marketId": markets[2]})
    error = await client.recv_type("error")
    assert (error["code"], error["marketId"]) == ("too_many_subscriptions", markets[2])
    await client.send({"type": "unsubscribe", "marketId": markets[0]})
    await client.recv_type("unsubscribed")
    assert (await client.subscribe(markets[2]))["marketId"] == markets[2]


async def test_connection_limit_per_ip(instance_factory):
    a = await instance_factory(max_connections_per_ip=2)
    first, second = await a.connect(), await a.connect()
    await first.roundtrip()
    await second.roundtrip()
    third = await a.connect()
    with pytest.raises(ConnectionClosed) as closed:
        await third.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    # A slot frees up when a connection ends.
    await first.close()
    await first.ws.wait_closed()
    for _ in range(50):
        fourth = await a.connect()
        try:
            await fourth.roundtrip()
            break
        except ConnectionClosed:
            continue
    else:
        pytest.fail("the freed slot was never reusable")


async def test_server_heartbeat_on_idle_connections(instance_factory):
    a = await instance_factory(heartbeat_seconds=0.2)
    client = await a.connect()
    assert await client.recv(within=5) == {"type": "heartbeat"}
    assert await client.recv(within=5) == {"type": "heartbeat"}


async def test_auth_with_a_session_token(instance_factory):
    from solders.keypair import Keypair

    from marketd.auth.service import hash_token

    a = await instance_factory()
    keypair = Keypair()
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        challenge = await http.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
        message = challenge.json()["message"]
        signature = keypair.sign_message(message.encode())
        verified = await http.post(
            "/api/auth/verify", json={"message": message, "signature": str(signature)}
        )
    token = verified.json()["token"]
    client = await a.connect()
    await client.send({"type": "auth", "token": "not-a-token"})
    assert (await client.recv_type("error"))["code"] == "invalid_token"
    await client.send({"type": "auth", "token": token})
    assert await client.recv_type("authenticated") == {
        "type": "authenticated",
        "wallet": str(keypair.pubkey()),
    }
    # Resolved like an HTTP request's session (cache, then database): the token is cached
    # now, and signing out revokes it for WebSocket clients too, at once.
    assert await a.container.cache.get("session:" + hash_token(token).hex()) is not None
    async with httpx.AsyncClient(base_url=a.http_url) as http:
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await http.post("/api/auth/logout", headers=bearer)).status_code == 204
    await client.send({"type": "auth", "token": token})
    assert (await client.recv_type("error"))["code"] == "invalid_token"


async def test_metrics_count_connections_subscriptions_and_frames(instance_factory):
    a = await instance_factory(metrics=True)
    market_id = await a.market()
    connections = WS_CONNECTIONS._value.get()
    subscriptions = WS_SUBSCRIPTIONS._value.get()
    frames = WS_MESSAGES_OUT._value.get()
    client = await a.connect()
    await client.subscribe(market_id)  # ack + state
    assert WS_CONNECTIONS._value.get() == connections + 1
    assert WS_SUBSCRIPTIONS._value.get() == subscriptions + 1
    assert WS_MESSAGES_OUT._value.get() >= frames + 2
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{a.metrics_port}/metrics")).text
        assert (await http.get(f"{a.http_url}/metrics")).status_code == 404  # not on the API
    assert "marketd_ws_connections" in text
    assert "marketd_ws_messages_out_total" in text


async def test_shutdown_closes_connections_with_going_away(instance_factory):
    a = await instance_factory()
    client = await a.connect()
    await client.roundtrip()
    await a.realtime.stop()
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    # Not running: new connections are told to come back later.
    late = await a.connect()
    with pytest.raises(ConnectionClosed) as refused:
        await late.recv()
    assert refused.value.rcvd is not None
    assert refused.value.rcvd.code == 1013
    await a.realtime.start()
    await a.realtime.start()  # idempotent
    again = await a.connect()
    await again.roundtrip()


async def test_the_activity_channel_sends_the_feeds_items_of_every_kind(instance_factory):
    """Each item on the channel is the first item GET /api/activity lists after the event."""
    a = await instance_factory()
    client = await a.connect()
    await client.send({"type": "subscribe", "channel": "activity"})
    assert await client.recv_type("subscribed") == {"type": "subscribed", "channel": "activity"}
    watcher = await a.connect()
    await watcher.send({"type": "subscribe", "channel": "activity", "kinds": ["vote"]})
    await watcher.recv_type("subscribed")

    async def rest_first(kind: str) -> dict[str, Any]:
        await a.container.pages.drop(LISTING_GROUP)
        async with httpx.AsyncClient(base_url=a.http_url) as http:
            answer = await http.get("/api/activity", params={"kind": kind, "limit": 1})
        assert answer.status_code == 200, answer.text
        return answer.json()["items"][0]

    async def publish(applied: Applied) -> None:
        for event in applied.events:
            await a.publish(event.topic, wire(event))

    async with a.container.database.session() as session:
        service = MarketService(
            session, a.container.settings, a.container.bus, MarketCache(a.container.pages)
        )
        body = MarketCreate(question="Will the channel match the feed?", category="other")
        market_id = (await service.propose(wallet(), body)).id
    created = await client.recv_type("activity")
    assert created == {
        "type": "activity",
        "channel": "activity",
        "item": await rest_first("market_created"),
    }
    assert created["item"]["question"] == "Will the channel match the feed?"

    now = datetime.now(UTC).replace(microsecond=0)
    await publish(
        await chain_event(
            a.container, market_id, "ProposalVoteSubmitted", now, user=wallet(), vote=True
        )
    )
    voted = (await client.recv_type("activity"))["item"]
    assert voted == await rest_first("vote") and voted["kind"] == "vote"
    assert (await watcher.recv_type("activity"))["item"] == voted

    await publish(
        await chain_event(
            a.container,
            market_id,
            "MarketActivated",
            now + timedelta(seconds=1),
            creator=wallet(),
            initial_liquidity=0,
        )
    )
    activated = (await client.recv_type("activity"))["item"]
    assert activated == await rest_first("state_change")
    assert (activated["kind"], activated["state"]) == ("state_change", "ACTIVE")

    await publish(
        await trade_on_chain(
            a.container, market_id, Fill(wallet(), 100, "0.6", now + timedelta(seconds=2))
        )
    )
    traded = (await client.recv_type("activity"))["item"]
    assert traded == await rest_first("trade") and traded["amount"] == 100

    # Events the feed does not list, and a state change not indexed from the chain, send
    # nothing: the next item is the next vote (the items keep the events' order).
    await a.publish("discussions", {"type": "discussion", "marketId": market_id})
    await a.publish("markets", state_change(market_id, 3))
    await publish(
        await chain_event(
            a.container,
            market_id,
            "ProposalVoteSubmitted",
            now + timedelta(seconds=3),
            user=wallet(),
            vote=False,
        )
    )
    second_vote = (await client.recv_type("activity"))["item"]
    assert second_vote == await rest_first("vote") and second_vote["vote"] is False
    # The kinds filter kept the state change and the trade from the watcher.
    assert (await watcher.recv_type("activity"))["item"] == second_vote

    await client.send({"type": "subscribe", "channel": "nope"})
    assert (await client.recv_type("error"))["code"] == "unknown_channel"
    await client.send({"type": "subscribe", "channel": "activity", "kinds": ["nope"]})
    assert (await client.recv_type("error"))["code"] == "invalid_message"
    await client.send({"type": "unsubscribe", "channel": "activity"})
    assert (await client.recv_type("unsubscribed"))["channel"] == "activity"
    await publish(
        await trade_on_chain(
            a.container, market_id, Fill(wallet(), 5, "0.6", now + timedelta(seconds=3))
        )
    )
    await client.roundtrip()  # nothing was queued before the pong
