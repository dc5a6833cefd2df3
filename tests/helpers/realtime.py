"""WebSocket test helpers: an app instance served by uvicorn on 127.0.0.1 (`Instance`) and a
WebSocket client speaking the protocol (`Client`). tests/realtime/conftest.py starts instances
with the `instance_factory` fixture."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from solders.keypair import Keypair
from websockets.asyncio.client import ClientConnection, connect

from marketd.core.bus import InProcessBus
from marketd.core.container import Container
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
