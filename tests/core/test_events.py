"""Domain events: the one wire form WebSocket clients see, read back into the same event."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from marketd.core.bus import InProcessBus
from marketd.core.events import (
    EVENT_TYPES,
    TOPICS,
    DiscussionPosted,
    DomainEvent,
    MarketCreated,
    MarketStateChanged,
    SnapshotPinned,
    TradeIndexed,
    VoteCast,
    from_wire,
    publish,
    wire,
)

AT = datetime(2026, 3, 14, 12, 30, tzinfo=UTC)

EXAMPLES: list[tuple[DomainEvent, dict[str, Any]]] = [
    (
        MarketCreated(market_id="m", state="PROPOSED"),
        {"type": "market_created", "marketId": "m", "state": "PROPOSED"},
    ),
    (
        MarketStateChanged(market_id="m", old_state="ACTIVE", new_state="RESOLVING", at=AT),
        {
            "type": "market_state_change",
            "marketId": "m",
            "oldState": "ACTIVE",
            "newState": "RESOLVING",
            "timestamp": "2026-03-14T12:30:00+00:00",
        },
    ),
    (
        VoteCast(market_id="m", kind="dispute", vote=False, wallet="w", likes=3, dislikes=4),
        {
            "type": "vote",
            "marketId": "m",
            "voteType": "dispute",
            "vote": False,
            "user": "w",
            "likes": 3,
            "dislikes": 4,
        },
    ),
    (
        TradeIndexed(
            market_id="m",
            trade_type="SELL",
            outcome="NO",
            shares=7,
            price=Decimal("0.525000000"),
            wallet="w",
            signature="sig",
        ),
        {
            "type": "trade",
            "marketId": "m",
            "tradeType": "SELL",
            "outcome": "NO",
            "shares": 7,
            "price": "0.525000000",
            "user": "w",
            "signature": "sig",
        },
    ),
    (
        DiscussionPosted(market_id="m", post_id="p", wallet="w", content="hi", created_at=AT),
        {
            "type": "discussion",
            "marketId": "m",
            "id": "p",
            "user": "w",
            "content": "hi",
            "createdAt": "2026-03-14T12:30:00+00:00",
        },
    ),
    (
        SnapshotPinned(market_id="m", cid="bafy", day=date(2026, 3, 14), discussions_count=2),
        {
            "type": "snapshot",
            "marketId": "m",
            "cid": "bafy",
            "date": "2026-03-14",
            "discussionsCount": 2,
        },
    ),
]


def test_every_event_type_has_an_example() -> None:
    assert {type(event) for event, _ in EXAMPLES} == set(EVENT_TYPES.values())
    assert TOPICS == ("markets", "votes", "trades", "discussions", "snapshots")


@pytest.mark.parametrize(("event", "expected"), EXAMPLES, ids=lambda v: getattr(v, "type", ""))
def test_the_wire_form_is_the_documented_one_and_reads_back(
    event: DomainEvent, expected: dict[str, Any]
) -> None:
    assert wire(event) == expected
    assert from_wire(expected) == event
    # A sequenced event carries its seq besides: ignored.
    assert from_wire({"seq": 4, **expected, "eventId": "e"}) == replace(event, event_id="e")


@pytest.mark.parametrize(
    "message",
    [
        {"type": "vote"},  # no market
        {"type": "poll", "marketId": "m"},  # not a domain event
        {"type": "vote", "marketId": "m", "voteType": "proposal"},  # fields missing
        {
            "type": "trade",
            "marketId": "m",
            **dict.fromkeys(["tradeType", "outcome", "user"], "x"),
            "shares": "many",
            "price": "0.5",
            "signature": "s",
        },  # malformed number
        {
            "type": "trade",
            "marketId": "m",
            **dict.fromkeys(["tradeType", "outcome", "user"], "x"),
            "shares": 1,
            "price": "cheap",
            "signature": "s",
        },  # malformed decimal
    ],
)
def test_what_is_no_domain_event_reads_as_none(message: dict[str, Any]) -> None:
    assert from_wire(message) is None


async def test_publish_sends_the_wire_form_on_the_topic_with_a_fresh_id() -> None:
    bus = InProcessBus()
    event = EXAMPLES[1][0]
    async with bus.subscribe("markets") as markets:
        sent = await publish(bus, event)
        again = await publish(bus, event)
        received = [await markets.get(), await markets.get()]
    assert sent.event_id and again.event_id and sent.event_id != again.event_id
    assert received == [wire(sent), wire(again)]
    assert from_wire(received[0]) == sent
