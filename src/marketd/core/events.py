"""The domain events marketd publishes, one frozen type each, and their one wire form.

Every event concerns one market and goes out on its type's bus `topic`. `publish` is the one
way to send one: it stamps a unique `event_id` and publishes the event's wire form, which is
also what WebSocket clients receive (src/marketd/realtime/websocket.md documents it: `type`,
`marketId`, camelCase fields, `eventId`). `wire` builds that form and `from_wire` reads it
back, so producers build typed events and consumers (the vote aggregator, the real-time
fan-out, the activity channel) receive typed events; nobody else spells a field name.

Why the bus carries the wire form rather than a private encoding: the real-time layer sequences
and replays exactly what it received (its Redis script hashes the payload to de-duplicate), so
publishing the wire form once means no instance has to re-encode an event.

This module is in `core` and imports no domain package: every domain may import it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeVar

from marketd.core.bus import EventBus

_E = TypeVar("_E", bound="DomainEvent")


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """What every event has: its market and, once published, its unique id."""

    topic: ClassVar[str]
    type: ClassVar[str]
    market_id: str
    event_id: str | None = None
    """Unique per publication: two otherwise identical events (yes -> no -> yes by one
    wallet) are never merged by the real-time sequencer's de-duplication."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketCreated(DomainEvent):
    """A market was proposed through the API."""

    topic: ClassVar[str] = "markets"
    type: ClassVar[str] = "market_created"
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketStateChanged(DomainEvent):
    """A market moved to another state (built by `marketd.markets.lifecycle` only)."""

    topic: ClassVar[str] = "markets"
    type: ClassVar[str] = "market_state_change"
    old_state: str
    new_state: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteCast(DomainEvent):
    """A vote was taken (API) or indexed (chain); `likes`/`dislikes`: the tally after it."""

    topic: ClassVar[str] = "votes"
    type: ClassVar[str] = "vote"
    kind: str
    vote: bool
    wallet: str
    likes: int
    dislikes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeIndexed(DomainEvent):
    """A trade was indexed from the chain. `signature` is the trade row's key
    (`trades.tx_signature`): the transaction's signature, or for a second trade in one
    transaction `<signature[:80]>#<event index>`."""

    topic: ClassVar[str] = "trades"
    type: ClassVar[str] = "trade"
    trade_type: str
    outcome: str
    shares: int
    price: Decimal
    wallet: str
    signature: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscussionPosted(DomainEvent):
    topic: ClassVar[str] = "discussions"
    type: ClassVar[str] = "discussion"
    post_id: str
    wallet: str
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotPinned(DomainEvent):
    """A day of a market's discussion was archived to IPFS."""

    topic: ClassVar[str] = "snapshots"
    type: ClassVar[str] = "snapshot"
    cid: str
    day: date
    discussions_count: int


# ------------------------------------------------------------------------------ wire form
def _iso(moment: datetime | date) -> str:
    return moment.isoformat()


_Codec = tuple[str, Callable[[Any], Any], Callable[[Any], Any]]
"""(wire name, to wire, from wire) of one field."""


def _same(value: Any) -> Any:
    return value


_STR: tuple[Callable[[Any], Any], Callable[[Any], Any]] = (_same, str)
_INT: tuple[Callable[[Any], Any], Callable[[Any], Any]] = (_same, int)
_MOMENT: tuple[Callable[[Any], Any], Callable[[Any], Any]] = (_iso, datetime.fromisoformat)

WIRE_FIELDS: dict[type[DomainEvent], dict[str, _Codec]] = {
    MarketCreated: {"state": ("state", *_STR)},
    MarketStateChanged: {
        "old_state": ("oldState", *_STR),
        "new_state": ("newState", *_STR),
        "at": ("timestamp", *_MOMENT),
    },
    VoteCast: {
        "kind": ("voteType", *_STR),
        "vote": ("vote", _same, bool),
        "wallet": ("user", *_STR),
        "likes": ("likes", *_INT),
        "dislikes": ("dislikes", *_INT),
    },
    TradeIndexed: {
        "trade_type": ("tradeType", *_STR),
        "outcome": ("outcome", *_STR),
        "shares": ("shares", *_INT),
        "price": ("price", str, Decimal),
        "wallet": ("user", *_STR),
        "signature": ("signature", *_STR),
    },
    DiscussionPosted: {
        "post_id": ("id", *_STR),
        "wallet": ("user", *_STR),
        "content": ("content", *_STR),
        "created_at": ("createdAt", *_MOMENT),
    },
    SnapshotPinned: {
        "cid": ("cid", *_STR),
        "day": ("date", _iso, date.fromisoformat),
        "discussions_count": ("discussionsCount", *_INT),
    },
}
"""Each event's fields as WebSocket clients see them (besides `type`, `marketId`, `eventId`)."""

EVENT_TYPES: dict[str, type[DomainEvent]] = {kind.type: kind for kind in WIRE_FIELDS}
TOPICS: tuple[str, ...] = tuple(dict.fromkeys(kind.topic for kind in WIRE_FIELDS))
"""The bus topics domain events go out on."""


def wire(event: DomainEvent) -> dict[str, Any]:
    """The event as WebSocket clients receive it (JSON-ready)."""
    out: dict[str, Any] = {"type": event.type, "marketId": event.market_id}
    for name, (key, encode, _decode) in WIRE_FIELDS[type(event)].items():
        out[key] = encode(getattr(event, name))
    if event.event_id is not None:
        out["eventId"] = event.event_id
    return out


def from_wire(message: Mapping[str, Any]) -> DomainEvent | None:
    """The event a wire form (a bus message, a sequenced event) carries; None when it is no
    domain event (another `type`, a field missing or malformed). Extra keys (`seq`) are
    ignored."""
    kind = EVENT_TYPES.get(str(message.get("type")))
    market_id, event_id = message.get("marketId"), message.get("eventId")
    if kind is None or not isinstance(market_id, str):
        return None
    values: dict[str, Any] = {
        "market_id": market_id,
        "event_id": event_id if isinstance(event_id, str) else None,
    }
    try:
        for name, (key, _encode, decode) in WIRE_FIELDS[kind].items():
            values[name] = decode(message[key])
        return kind(**values)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


# ------------------------------------------------------------------------------ publishing
class Publisher(Protocol):
    async def publish(self, topic: str, event: Mapping[str, Any]) -> None: ...


async def publish(bus: EventBus | Publisher, event: _E) -> _E:
    """Publish `event` on its topic with a fresh `event_id`; returns the event as sent."""
    stamped = replace(event, event_id=str(uuid.uuid4()))
    await bus.publish(stamped.topic, wire(stamped))
    return stamped
