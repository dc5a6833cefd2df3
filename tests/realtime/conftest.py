"""Real servers for WebSocket tests: the app under uvicorn on 127.0.0.1, one per instance."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
import uvicorn
from solders.keypair import Keypair
from websockets.asyncio.client import ClientConnection, connect

from marketd.app import create_app
from marketd.config import RealtimeSettings, Settings
from marketd.core.bus import InProcessBus
from marketd.core.container import Container
from marketd.core.migrate import upgrade
from marketd.markets.cache import MarketCache
from marketd.markets.schemas import MarketCreate
from marketd.markets.service import MarketService
from marketd.realtime.service import Realtime

TIMEOUT = 10.0


@dataclass
class Instance:
    container: Container
    realtime: Realtime
    server: uvicorn.Server
    port: int
    metrics_port: int | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def connect(self, **kwargs: Any) -> Client:
        ws = await connect(self.ws_url, compression=None, open_timeout=TIMEOUT, **kwargs)
        return Client(ws)

    async def market(self) -> str:
        """A new market, created without publishing anything (tests control the events)."""
        async with self.container.database.session() as session:
            cache = MarketCache(self.container.pages)
            service = MarketService(session, self.container.settings, InProcessBus(), cache)
            body = MarketCreate(question="Will the websocket test pass?", category="other")
            created = await service.propose(str(Keypair().pubkey()), body)
        return created.id

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        await self.container.bus.publish(topic, event)


class Client:
    """A test client over a real WebSocket connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def recv(self, within: float = TIMEOUT) -> dict[str, Any]:
        """The next frame as JSON (fails the test when nothing arrives in time)."""
        raw = await asyncio.wait_for(self.ws.recv(), within)
        message: dict[str, Any] = json.loads(raw)
        return message

    async def recv_type(self, kind: str, within: float = TIMEOUT) -> dict[str, Any]:
        """The next frame, which must be of type `kind` (heartbeats are skipped)."""
        while True:
            message = await self.recv(within)
            if message["type"] != "heartbeat":
                assert message["type"] == kind, message
                return message

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(body))

    async def subscribe(self, market_id: str, since_seq: int | None = None) -> dict[str, Any]:
        """Subscribe; return the `market_state` (or the ack when resuming with sinceSeq)."""
        body: dict[str, Any] = {"type": "subscribe", "marketId": market_id}
        if since_seq is not None:
            body["sinceSeq"] = since_seq
        await self.send(body)
        ack = await self.recv_type("subscribed")
        assert ack == {"type": "subscribed", "marketId": market_id}
        if since_seq is not None:
            return ack
        return await self.recv_type("market_state")

    async def roundtrip(self) -> None:
        """A ping answered by its pong: everything queued before it has been received."""
        await self.send({"type": "ping", "id": "sync"})
        assert await self.recv_type("pong") == {"type": "pong", "id": "sync"}

    async def close(self) -> None:
        await self.ws.close()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


InstanceFactory = Callable[..., Any]


@pytest_asyncio.fixture
async def instance_factory(
    make_settings: Callable[..., Settings], redis_prefix: str
) -> AsyncIterator[InstanceFactory]:
    """`await instance_factory(**realtime_settings)` -> a running Instance. Instances of one
    test share the database and (with the postgres backend) Redis and its key prefix."""
    started: list[tuple[Instance, asyncio.Task[None]]] = []
    prefix = redis_prefix + "realtime:" + str(id(started)) + ":"

    async def start(*, metrics: bool = False, **ws_settings: Any) -> Instance:
        settings = make_settings(
            redis_prefix=prefix,
            metrics_port=0 if metrics else None,
            realtime=RealtimeSettings(**ws_settings),
        )
        container = Container.build(settings)
        if settings.is_embedded_database:
            await upgrade(container.database.engine)
        app = create_app(container=container)
        realtime: Realtime = app.state.realtime  # started and stopped by the app's lifespan
        sock = free_socket()
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_ping_interval=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        metrics_server = getattr(app.state, "metrics_server", None)
        instance = Instance(
            container,
            realtime,
            server,
            sock.getsockname()[1],
            metrics_server.port if metrics_server is not None else None,
        )
        started.append((instance, task))
        return instance

    yield start
    for instance, task in started:
        instance.server.should_exit = True
        await task
        await instance.container.close()
