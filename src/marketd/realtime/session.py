"""One client's conversation: read frames, answer them, drive its subscriptions.

Subscribe, in order: the subscription is registered first (it holds live events from then
on). Then the market's state is read with the seq it reflects - from the short-lived state
cache when fresh, so a burst of subscribers costs one database read - and the buffered events
after that seq are read (they bring the state up to date). The client gets `subscribed`, then

- with `sinceSeq`, when the buffer still has everything after it: exactly those events;
- otherwise (`resync_required` first when `sinceSeq` was too old): `market_state` and the
  events after the state's seq;

then the held live events newer than what was sent. So no event is missing, duplicated or out
of order. An event right after the state's seq may already be reflected in the state (events
are published after their database commit, so at least every event up to the seq is); their
fields are absolute values, so applying one twice is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from marketd.core.errors import NotFound
from marketd.realtime import protocol
from marketd.realtime.budget import MessageBudget
from marketd.realtime.buffer import EventLog, Replay
from marketd.realtime.hub import Connection, Hub
from marketd.realtime.protocol import (
    Auth,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
)

MarketReader = Callable[[str, bool], Awaitable[tuple[int, dict[str, Any]]]]
"""(market id, fresh) -> (seq, the market as the REST API shows it), the state reflecting at
least every event up to seq; `fresh` bypasses caches. Raises NotFound."""
TokenReader = Callable[[str], Awaitable[str | None]]
"""session token -> wallet, or None when invalid/expired."""

log = structlog.get_logger("marketd.realtime")


@dataclass(frozen=True)
class _Plan:
    frames: list[str]
    covered_seq: int


class ClientSession:
    """`reads` bounds the subscribes reading Redis and the database at once across all
    connections, so a burst of subscribers waits instead of exhausting the connection pools."""

    def __init__(
        self,
        connection: Connection,
        hub: Hub,
        event_log: EventLog,
        read_market: MarketReader,
        read_token: TokenReader,
        reads: asyncio.Semaphore,
        budget: MessageBudget,
    ) -> None:
        self.connection = connection
        self._hub = hub
        self._log = event_log
        self._read_market = read_market
        self._read_token = read_token
        self._reads = reads
        self._budget = budget

    async def handle(self, text: str) -> None:
        """Answer one text frame; every failure becomes an `error` frame."""
        if not self._budget.take():
            self.connection.send(
                protocol.error(
                    "rate_limited",
                    f"At most {self._budget.rate:g} messages a second "
                    f"(bursts of {self._budget.burst}); this one was ignored.",
                )
            )
            return
        try:
            message = protocol.parse_client_message(text)
            if isinstance(message, Subscribe):
                await self._subscribe(message)
            elif isinstance(message, Unsubscribe):
                self._hub.unsubscribe(self.connection, message.market_id)
                self.connection.send(protocol.unsubscribed(message.market_id))
            elif isinstance(message, Join):
                self._hub.join(self.connection, message.channel, message.kinds)
                self.connection.send(protocol.joined(message.channel))
            elif isinstance(message, Leave):
                self._hub.leave(self.connection, message.channel)
                self.connection.send(protocol.left(message.channel))
            elif isinstance(message, Ping):
                self.connection.send(protocol.pong(message.id))
            else:
                await self._auth(message)
        except ProtocolError as exc:
            self.connection.send(exc.frame())

    async def _subscribe(self, message: Subscribe) -> None:
        market_id, connection = message.market_id, self.connection
        subscription = self._hub.subscribe(connection, market_id)
        if subscription is None:
            raise ProtocolError(
                "too_many_subscriptions",
                f"At most {len(connection.subscriptions)} markets per connection.",
                market_id,
            )
        try:
            async with self._reads:
                plan = await self._plan(market_id, message.since_seq)
        except NotFound as exc:
            self._hub.unsubscribe(connection, market_id)
            raise ProtocolError(
                "unknown_market", f"No market with id {market_id}.", market_id
            ) from exc
        except Exception as exc:
            self._hub.unsubscribe(connection, market_id)
            await log.aexception("subscribe failed", market_id=market_id)
            raise ProtocolError("unavailable", "Try again shortly.", market_id) from exc
        connection.send(protocol.subscribed(market_id))
        for frame in plan.frames:
            connection.send(frame)
        subscription.go_live(plan.covered_seq)

    async def _plan(self, market_id: str, since_seq: int | None) -> _Plan:
        """What a subscriber is sent after the ack, and the last seq that covers."""
        seq, state = await self._read_market(market_id, False)
        frames: list[str] = []
        if since_seq is not None:
            missed = await self._log.since(market_id, since_seq)
            if missed.complete:
                return _Plan([protocol.event_frame(e) for e in missed.events], missed.head)
            frames.append(
                protocol.resync_required(market_id, since_seq, missed.oldest, missed.head)
            )
        catch_up = await self._log.since(market_id, seq)
        if not catch_up.complete:
            # The (cached) state is older than the buffer: read it afresh.
            seq, state = await self._read_market(market_id, True)
            catch_up = Replay(seq, [], True, seq)
        frames.append(protocol.market_state(market_id, seq, state))
        frames.extend(protocol.event_frame(event) for event in catch_up.events)
        return _Plan(frames, catch_up.head)

    async def _auth(self, message: Auth) -> None:
        wallet = await self._read_token(message.token)
        if wallet is None:
            raise ProtocolError("invalid_token", "The session token is invalid or expired.")
        self.connection.wallet = wallet
        self.connection.send(protocol.authenticated(wallet))
