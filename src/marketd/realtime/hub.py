"""Local subscribers of one instance: connections, their send queues and market subscriptions.

Broadcasting never awaits a socket: `Hub.broadcast` hands the (once-serialised) frame to each
subscriber, which writes it at once when its socket accepts it and otherwise queues it for its
writer task. A client that does not keep up lets its queue grow; past `send_buffer_bytes` it is
closed with `SLOW_CLIENT`, so it can never delay the others.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from marketd.activity.rules import LIVE_EVENT_KINDS
from marketd.realtime import protocol
from marketd.realtime.metrics import (
    WS_CONNECTIONS,
    WS_DROPS,
    WS_EVENTS,
    WS_MESSAGES_OUT,
    WS_SUBSCRIPTIONS,
)

SLOW_CLIENT = 4008
"""Close code for a client whose send buffer overflowed (application range; 1008-like)."""
POLICY_VIOLATION = 1008
GOING_AWAY = 1001
CLIENT_GONE = 1006
"""Internal: the client went away; no close frame is sent."""

SendText = Callable[[str], Coroutine[Any, Any, None]]


class _Resume:
    """Await a coroutine that was already started and is suspended on `first` (what it
    yielded) - the rest of `yield from`, so a Task can finish what `Connection.send` began."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self._coro, self._first = coro, first

    def __await__(self) -> Generator[Any, Any, None]:
        value = self._first
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # cancellation: hand it to the coroutine
                try:
                    value = self._coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = self._coro.send(sent)
                except StopIteration:
                    return


class Connection:
    """One client socket and its bounded queue of frames.

    A frame is written at once, in the caller, while nothing is queued and the socket accepts
    it without waiting (the usual case): a broadcast costs no task switch per subscriber. When
    the socket cannot take a frame, a writer task finishes it and drains the frames queued
    behind it, then ends. A connection whose queue outgrows `send_buffer_bytes` is closed.
    """

    def __init__(self, send: SendText, ip: str, send_buffer_bytes: int) -> None:
        self.ip = ip
        self.wallet: str | None = None
        self.subscriptions: dict[str, MarketSubscription] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()
        self.last_sent = time.monotonic()
        self._send = send
        self._limit = send_buffer_bytes
        self._queue: collections.deque[str] = collections.deque()
        self._buffered = 0
        self._writer: asyncio.Task[None] | None = None

    @property
    def buffered_bytes(self) -> int:
        return self._buffered

    @property
    def writing(self) -> bool:
        """Whether a writer task is waiting for the socket."""
        return self._writer is not None

    def send(self, text: str) -> bool:
        """Write or queue a frame; False when the connection is closing (or was just closed
        because its queue overflowed)."""
        if self.close_code is not None:
            return False
        if self._writer is None:
            self._send_now(text)
            return self.close_code is None
        if self._queue and self._buffered + len(text) > self._limit:
            WS_DROPS.labels("slow_client").inc()
            self.close(SLOW_CLIENT, "send buffer full: the client reads too slowly")
            return False
        self._queue.append(text)
        self._buffered += len(text)
        return True

    def _send_now(self, text: str) -> None:
        coro = self._send(text)
        try:
            first = coro.send(None)
        except StopIteration:
            self._sent()
            return
        except Exception:
            self.close(CLIENT_GONE, "send failed")
            return
        # The socket is full: a task finishes this frame, then whatever queues behind it.
        self._writer = asyncio.create_task(self._drain(_Resume(coro, first)))

    async def _drain(self, in_flight: _Resume) -> None:
        try:
            await in_flight
            self._sent()
            while self._queue:
                text = self._queue.popleft()
                self._buffered -= len(text)
                await self._send(text)
                self._sent()
        except Exception:
            # The socket is gone (client disconnected mid-send): end like a disconnect.
            self.close(CLIENT_GONE, "send failed")
        finally:
            self._writer = None

    def _sent(self) -> None:
        self.last_sent = time.monotonic()
        WS_MESSAGES_OUT.inc()

    def close(self, code: int, reason: str = "") -> None:
        """Ask for the connection to end (the endpoint sends the close frame); frees the queue
        and stops a writer stuck behind a full socket."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self._queue.clear()
            self._buffered = 0
            if self._writer is not None and self._writer is not asyncio.current_task():
                self._writer.cancel()
            self.closed.set()

    async def stopped(self) -> None:
        """Wait for a cancelled writer to be gone (after `close`)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None  # also when it was cancelled before it started


class MarketSubscription:
    """A connection's subscription to one market.

    Until `go_live`, events are held: the endpoint is still sending the market's state (or the
    replay) and must decide which seq it already covers. After it, events are delivered once,
    in seq order (anything at or below the last delivered seq is a duplicate and skipped).
    """

    def __init__(self, connection: Connection, market_id: str, max_held: int) -> None:
        self.connection = connection
        self.market_id = market_id
        self.last_seq = 0
        self._held: list[tuple[int, str]] | None = []
        self._max_held = max_held

    @property
    def live(self) -> bool:
        return self._held is None

    def deliver(self, seq: int, text: str) -> None:
        if self._held is not None:
            if len(self._held) >= self._max_held:
                WS_DROPS.labels("slow_client").inc()
                self.connection.close(SLOW_CLIENT, "too many events while subscribing")
                return
            self._held.append((seq, text))
            return
        if seq > self.last_seq:
            self.last_seq = seq
            self.connection.send(text)

    def go_live(self, covered_seq: int) -> None:
        """Events up to `covered_seq` were sent (or are in the state sent); release the rest."""
        held, self._held = self._held or [], None
        self.last_seq = max(self.last_seq, covered_seq)
        for seq, text in held:
            self.deliver(seq, text)


class Hub:
    """Connections and market subscriptions of this instance, with their limits."""

    def __init__(
        self,
        *,
        max_connections_per_ip: int,
        max_subscriptions: int,
        max_held_events: int,
    ) -> None:
        self.connections: set[Connection] = set()
        self.markets: dict[str, dict[Connection, MarketSubscription]] = {}
        self.activity: dict[Connection, frozenset[str]] = {}  # `activity` members: their kinds
        self._per_ip: collections.Counter[str] = collections.Counter()
        self._max_per_ip = max_connections_per_ip
        self._max_subscriptions = max_subscriptions
        self._max_held = max_held_events

    def register(self, connection: Connection) -> bool:
        """Admit a connection; False when its address already has the maximum."""
        if self._per_ip[connection.ip] >= self._max_per_ip:
            WS_DROPS.labels("ip_limit").inc()
            return False
        self._per_ip[connection.ip] += 1
        self.connections.add(connection)
        WS_CONNECTIONS.inc()
        return True

    def unregister(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        for market_id in list(connection.subscriptions):
            self.unsubscribe(connection, market_id)
        self.activity.pop(connection, None)
        self.connections.discard(connection)
        self._per_ip[connection.ip] -= 1
        if self._per_ip[connection.ip] <= 0:
            del self._per_ip[connection.ip]
        WS_CONNECTIONS.dec()

    def subscribe(self, connection: Connection, market_id: str) -> MarketSubscription | None:
        """A new (held) subscription; None at the per-connection cap. Re-subscribing replaces
        the previous subscription to the market."""
        self.unsubscribe(connection, market_id)
        if len(connection.subscriptions) >= self._max_subscriptions:
            return None
        subscription = MarketSubscription(connection, market_id, self._max_held)
        connection.subscriptions[market_id] = subscription
        self.markets.setdefault(market_id, {})[connection] = subscription
        WS_SUBSCRIPTIONS.inc()
        return subscription

    def unsubscribe(self, connection: Connection, market_id: str) -> bool:
        if connection.subscriptions.pop(market_id, None) is None:
            return False
        subscribers = self.markets[market_id]
        del subscribers[connection]
        if not subscribers:
            del self.markets[market_id]
        WS_SUBSCRIPTIONS.dec()
        return True

    def join(self, connection: Connection, channel: str, kinds: frozenset[str]) -> None:
        """Add the connection to a channel (`protocol.CHANNELS`: only `activity` today) for
        the feed `kinds`; joining again replaces the kinds."""
        self.activity[connection] = kinds

    def leave(self, connection: Connection, channel: str) -> None:
        self.activity.pop(connection, None)

    def wants_activity(self, event: dict[str, Any]) -> bool:
        """Whether a member of the `activity` channel wants the feed item this event
        announces (so that it is read at all)."""
        kind = LIVE_EVENT_KINDS.get(str(event.get("type")))
        return kind is not None and any(kind in kinds for kinds in self.activity.values())

    def send_activity(self, item: dict[str, Any]) -> int:
        """Send a feed item (as GET /api/activity lists it) to the members that want its
        kind; how many got it."""
        frame, kind = protocol.activity(item), item.get("kind")
        members = [c for c, kinds in self.activity.items() if kind in kinds]
        for connection in members:
            connection.send(frame)
        return len(members)

    def broadcast(self, event: dict[str, Any]) -> int:
        """Fan a sequenced event out to the market's local subscribers; how many got it (the
        `activity` channel gets the feed's item instead: `Fanout`, `send_activity`)."""
        market_id, seq = event.get("marketId"), event.get("seq")
        if not isinstance(market_id, str) or not isinstance(seq, int):
            return 0
        subscribers = self.markets.get(market_id)
        if not subscribers:
            return 0
        WS_EVENTS.inc()
        text = protocol.event_frame(event)
        for subscription in list(subscribers.values()):
            subscription.deliver(seq, text)
        return len(subscribers)

    def heartbeat(self, idle_seconds: float) -> int:
        """Queue a heartbeat on every connection that sent nothing for `idle_seconds`."""
        deadline = time.monotonic() - idle_seconds
        frame = protocol.heartbeat()
        idle = [c for c in self.connections if c.last_sent <= deadline]
        for connection in idle:
            connection.send(frame)
            connection.last_sent = time.monotonic()
        return len(idle)

    def close_all(self, code: int, reason: str) -> None:
        for connection in list(self.connections):
            connection.close(code, reason)
