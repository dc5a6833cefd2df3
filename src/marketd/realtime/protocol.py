"""The `/ws` wire protocol: parsing of client messages and the shapes the server sends.

Pure functions only (no I/O), so every rule of the protocol is testable without a socket.

Client -> server (JSON text frames):
    {"type": "subscribe", "marketId": "...", "sinceSeq": 41}   (sinceSeq optional)
    {"type": "unsubscribe", "marketId": "..."}
    {"type": "subscribe", "channel": "activity", "kinds": ["trade"]}  (kinds optional;
                                                               and unsubscribe)
    {"type": "ping", "id": <anything, echoed>}                 (id optional)
    {"type": "auth", "token": "<session token>"}

Server -> client: `subscribed` / `unsubscribed` acks, `market_state`, `resync_required`,
events (`market_state_change`, `trade`, `vote`, `discussion`, `snapshot`, ... each with the
market's `seq`), `activity` (an item of the activity feed), `pong`, `heartbeat`,
`authenticated`, `error`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from marketd.activity.rules import ActivityKind

MAX_MESSAGE_CHARS = 4096
MAX_MARKET_ID_CHARS = 64
MAX_TOKEN_CHARS = 512
MAX_SEQ = 2**53 - 1
"""The largest `sinceSeq` (JavaScript's largest safe integer): a market's seq never gets near it,
and both event logs answer anything up to it the same way (Redis stream ids refuse > 2^64)."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    market_id: str
    since_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    market_id: str


ACTIVITY_CHANNEL = "activity"
CHANNELS = frozenset({ACTIVITY_CHANNEL})
"""Channels a connection can join besides markets: `activity` carries the new trades, votes,
markets and state changes of every market (the items GET /api/activity lists), live only."""
ACTIVITY_KINDS = frozenset(kind.value for kind in ActivityKind)


@dataclass(frozen=True, slots=True)
class Join:
    channel: str
    kinds: frozenset[str] = ACTIVITY_KINDS
    """The feed kinds wanted (the `kinds` filter of GET /api/activity); all by default."""


@dataclass(frozen=True, slots=True)
class Leave:
    channel: str


@dataclass(frozen=True, slots=True)
class Ping:
    id: Any = None


@dataclass(frozen=True, slots=True)
class Auth:
    token: str


ClientMessage = Subscribe | Unsubscribe | Join | Leave | Ping | Auth


class ProtocolError(Exception):
    """A client message the server answers with an `error` frame (the socket stays open)."""

    def __init__(self, code: str, message: str, market_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.market_id = market_id

    def frame(self) -> str:
        return error(self.code, self.message, self.market_id)


def parse_client_message(text: str) -> ClientMessage:
    """Validate one text frame from a client; raise ProtocolError with a stable `code`."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError("message_too_large", f"Messages are limited to {MAX_MESSAGE_CHARS}.")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProtocolError("invalid_json", "The message is not valid JSON.") from exc
    except RecursionError as exc:  # e.g. "[[[[...]]]]" nested past the parser's depth
        raise ProtocolError("invalid_json", "The message is nested too deeply.") from exc
    if not isinstance(data, dict):
        raise ProtocolError("invalid_message", "A message is a JSON object with a `type`.")
    kind = data.get("type")
    if kind in ("subscribe", "unsubscribe") and "channel" in data:
        channel = _channel(data)
        return Join(channel, _kinds(data)) if kind == "subscribe" else Leave(channel)
    if kind == "subscribe":
        return Subscribe(_market_id(data), _since_seq(data))
    if kind == "unsubscribe":
        return Unsubscribe(_market_id(data))
    if kind == "ping":
        return Ping(data.get("id"))
    if kind == "auth":
        token = data.get("token")
        if not _is_text(token) or not token or len(token) > MAX_TOKEN_CHARS:
            raise ProtocolError("invalid_message", "`auth` needs a `token` string.")
        return Auth(token)
    raise ProtocolError("unknown_type", f"Unknown message type {str(kind)[:40]!r}.")


def _market_id(data: dict[str, Any]) -> str:
    market_id = data.get("marketId")
    if not _is_text(market_id) or not 0 < len(market_id) <= MAX_MARKET_ID_CHARS:
        raise ProtocolError("invalid_message", "`marketId` must be a non-empty string.")
    return market_id


def _channel(data: dict[str, Any]) -> str:
    channel = data.get("channel")
    if channel not in CHANNELS:
        raise ProtocolError(
            "unknown_channel", f"`channel` must be one of: {', '.join(sorted(CHANNELS))}."
        )
    return str(channel)


def _kinds(data: dict[str, Any]) -> frozenset[str]:
    kinds = data.get("kinds")
    if kinds is None:
        return ACTIVITY_KINDS
    if (
        not isinstance(kinds, list)
        or not kinds
        or not all(isinstance(k, str) and k in ACTIVITY_KINDS for k in kinds)
    ):
        raise ProtocolError(
            "invalid_message",
            f"`kinds` must be a non-empty list of: {', '.join(sorted(ACTIVITY_KINDS))}.",
        )
    return frozenset(kinds)


def _is_text(value: object) -> TypeGuard[str]:
    """A string that can leave the process: JSON may carry lone surrogates ("\\ud800"), which
    no UTF-8 encoder (Redis, PostgreSQL, the socket) accepts; NUL is refused by PostgreSQL."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _since_seq(data: dict[str, Any]) -> int | None:
    since = data.get("sinceSeq")
    if since is None:
        return None
    if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= MAX_SEQ:
        raise ProtocolError(
            "invalid_message",
            f"`sinceSeq` must be an integer from 0 to {MAX_SEQ}.",
            data.get("marketId") if _is_text(data.get("marketId")) else None,
        )
    return since


# ---------------------------------------------------------------- server -> client frames


def _frame(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), default=str)


def subscribed(market_id: str) -> str:
    return _frame({"type": "subscribed", "marketId": market_id})


def unsubscribed(market_id: str) -> str:
    return _frame({"type": "unsubscribed", "marketId": market_id})


def joined(channel: str) -> str:
    return _frame({"type": "subscribed", "channel": channel})


def left(channel: str) -> str:
    return _frame({"type": "unsubscribed", "channel": channel})


def market_state(market_id: str, seq: int, market: dict[str, Any]) -> str:
    """The market as the REST API shows it; `seq` is the last event already reflected in it."""
    return _frame({"type": "market_state", "marketId": market_id, "seq": seq, "market": market})


def resync_required(market_id: str, since_seq: int, oldest_seq: int | None, head: int) -> str:
    """The events after `since_seq` are no longer buffered: a `market_state` follows."""
    return _frame(
        {
            "type": "resync_required",
            "marketId": market_id,
            "sinceSeq": since_seq,
            "oldestSeq": oldest_seq,
            "seq": head,
        }
    )


def activity(item: dict[str, Any]) -> str:
    """An item of the activity feed, exactly as GET /api/activity lists it (JSON mode)."""
    return _frame({"type": "activity", "channel": ACTIVITY_CHANNEL, "item": item})


def pong(ping_id: Any) -> str:
    return _frame({"type": "pong"} if ping_id is None else {"type": "pong", "id": ping_id})


def heartbeat() -> str:
    return _frame({"type": "heartbeat"})


def authenticated(wallet: str) -> str:
    return _frame({"type": "authenticated", "wallet": wallet})


def error(code: str, message: str, market_id: str | None = None) -> str:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if market_id is not None:
        body["marketId"] = market_id
    return _frame(body)


def event_frame(event: dict[str, Any]) -> str:
    """One event as sent to every subscriber (serialised once per instance)."""
    return _frame(event)
