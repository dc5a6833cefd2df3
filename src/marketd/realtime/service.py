"""`Realtime`: the WebSocket layer of one instance, started and stopped with the application.

Wiring (in `create_app`):

    realtime = Realtime(container)
    app.state.realtime = realtime
    app.include_router(marketd.realtime.endpoints.router)
    # lifespan: `await realtime.start()` after startup, `await realtime.stop()` before shutdown
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket

from marketd.activity.service import ActivityService
from marketd.auth.dependencies import session_wallet
from marketd.config import RealtimeSettings
from marketd.core.clientip import client_ip
from marketd.core.container import Container
from marketd.core.events import DomainEvent
from marketd.markets.dependencies import market_cache_of
from marketd.markets.service import MarketService
from marketd.realtime import protocol
from marketd.realtime.budget import MessageBudget
from marketd.realtime.buffer import EventLog, MemoryEventLog, RedisEventLog
from marketd.realtime.fanout import Fanout
from marketd.realtime.hub import CLIENT_GONE, GOING_AWAY, POLICY_VIOLATION, Connection, Hub
from marketd.realtime.session import ClientSession

TRY_AGAIN_LATER = 1013


class Realtime:
    def __init__(self, container: Container, settings: RealtimeSettings | None = None) -> None:
        self.container = container
        self.settings = settings or container.settings.realtime
        self.event_log: EventLog = (
            RedisEventLog(
                container.redis, container.settings.redis_prefix, self.settings.replay_events
            )
            if container.redis is not None
            else MemoryEventLog(container.bus, self.settings.replay_events)
        )
        self.hub = Hub(
            max_connections_per_ip=self.settings.max_connections_per_ip,
            max_subscriptions=self.settings.max_subscriptions,
            max_held_events=self.settings.replay_events,
        )
        self.fanout = Fanout(container.bus, self.event_log, self.hub, self._read_activity)
        self._tasks: list[asyncio.Task[None]] = []
        self._reads = asyncio.Semaphore(self.settings.subscribe_concurrency)

    async def start(self) -> None:
        """Subscribe to the bus (returns once subscribed) and start the heartbeats."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.fanout.run(), name="realtime-fanout"),
            asyncio.create_task(self._heartbeats(), name="realtime-heartbeats"),
        ]
        ready = asyncio.create_task(self.fanout.ready.wait())
        await asyncio.wait([ready, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self.stop()
            raise RuntimeError("the realtime fan-out could not subscribe to the bus")

    async def stop(self) -> None:
        """Close every connection (1001) and stop listening."""
        self.hub.close_all(GOING_AWAY, "server shutting down")
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _heartbeats(self) -> None:
        interval = self.settings.heartbeat_seconds
        while True:
            await asyncio.sleep(interval / 2)
            self.hub.heartbeat(interval)

    # ------------------------------------------------------------------ per connection

    async def serve(self, websocket: WebSocket) -> None:
        """Run one client connection until it or the server ends it."""
        ip = client_ip(websocket.scope, self.container.settings.trusted_proxy_networks)
        await websocket.accept()
        if not self._tasks:
            await websocket.close(TRY_AGAIN_LATER, "realtime layer not running")
            return
        connection = Connection(websocket.send_text, ip, self.settings.send_buffer_bytes)
        if not self.hub.register(connection):
            await websocket.close(POLICY_VIOLATION, "too many connections from this address")
            return
        session = ClientSession(
            connection,
            self.hub,
            self.event_log,
            self._read_market,
            self._read_token,
            self._reads,
            MessageBudget(self.settings.message_rate, self.settings.message_burst),
        )
        reader = asyncio.create_task(self._read_loop(websocket, session))
        try:
            await connection.closed.wait()
        finally:
            connection.close(CLIENT_GONE, "connection ended")  # no-op when already closing
            self.hub.unregister(connection)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await connection.stopped()
        if connection.close_code != CLIENT_GONE:
            # Behind a full socket the close frame waits until the client reads again.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    websocket.close(connection.close_code or GOING_AWAY, connection.close_reason),
                    self.settings.close_timeout_seconds,
                )

    @staticmethod
    async def _read_loop(websocket: WebSocket, session: ClientSession) -> None:
        connection = session.connection
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    connection.send(protocol.error("invalid_message", "Send JSON in text frames."))
                    continue
                await session.handle(text)
        finally:
            connection.close(CLIENT_GONE, "client disconnected")

    async def _read_market(self, market_id: str, fresh: bool) -> tuple[int, dict[str, Any]]:
        """(seq, the market as `GET /api/markets/{id}` shows it). The head seq is read before
        the row, so the row reflects at least every event up to it. Shared by the instances
        through the cache for `state_cache_seconds`: subscribers catch up from the buffer."""
        key = f"realtime:state:{market_id}"
        if not fresh:
            cached = await self.container.cache.get(key)
            if cached is not None:
                return int(cached["seq"]), cached["market"]
        seq = await self.event_log.head(market_id)
        async with self.container.database.session() as session:
            service = MarketService(
                session,
                self.container.settings,
                self.container.bus,
                self.container.shared(market_cache_of),
            )
            market = await service.get_market(market_id)
        body: dict[str, Any] = market.model_dump(mode="json")
        await self.container.cache.set(
            key, {"seq": seq, "market": body}, self.settings.state_cache_seconds
        )
        return seq, body

    async def _read_activity(self, event: DomainEvent) -> dict[str, Any] | None:
        """The activity feed's item for a market event, as GET /api/activity lists it."""
        async with self.container.database.session(read_only=True) as session:
            item = await ActivityService(session).live_item(event)
        return None if item is None else item.model_dump(mode="json")

    async def _read_token(self, token: str) -> str | None:
        return await session_wallet(self.container, token)
