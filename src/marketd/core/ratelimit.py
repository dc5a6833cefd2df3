"""Per-client request budget (DESIGN: 100/min), shared across instances through Redis.

The client is the signed-in wallet when the request carries a valid session, else the client
IP. Health, readiness and metrics probes are exempt so a load balancer never locks itself out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

Identify = Callable[[Scope], Awaitable[str]]


def create_storage(redis: Redis | None, prefix: str) -> Storage:
    """Redis storage on the process's shared client pool (one bounded, blocking pool for
    everything: `limits` would otherwise open a second pool that fails at once when a burst
    exhausts it), in-memory without Redis."""
    if redis is None:
        return MemoryStorage()
    shared: dict[str, Any] = {"connection_pool": redis.connection_pool}
    return RedisStorage(
        "async+redis://", implementation="redispy", key_prefix=prefix + "ratelimit", **shared
    )


class RateLimiter:
    def __init__(self, storage: Storage, limit: str) -> None:
        self.storage = storage
        self.item: RateLimitItem = parse(limit)
        self._strategy = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, identity: str) -> tuple[bool, int, int]:
        """Consume one request; returns (allowed, remaining, seconds until a slot frees)."""
        allowed = await self._strategy.hit(self.item, identity)
        stats = await self._strategy.get_window_stats(self.item, identity)
        reset_in = max(1, math.ceil(stats.reset_time - time.time()))
        return allowed, stats.remaining, reset_in


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, identify: Identify) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        identity = await self.identify(scope)
        allowed, remaining, reset_in = await self.limiter.hit(identity)
        limit = self.limiter.item.amount
        window = self.limiter.item.get_expiry()
        headers = [
            (b"ratelimit-limit", str(limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset_in).encode()),
            (b"ratelimit-policy", f"{limit};w={window}".encode()),
        ]
        if not allowed:
            await _reject(scope, send, headers, reset_in)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _reject(scope: Scope, send: Send, headers: list[tuple[bytes, bytes]], retry: int) -> None:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + "rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": f"Request budget exhausted; retry in {retry} s.",
        "instance": scope["path"],
    }
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"retry-after", str(retry).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
