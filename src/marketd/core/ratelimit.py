"""Per-client request budget (DESIGN: 100/min), shared across instances through Redis.

The client is the signed-in wallet when the request carries a valid session, else the client
IP. Health and readiness probes are exempt so a load balancer never locks itself out.

Order, so that no lookup costs I/O for a client over budget: a token the process does not
remember yet is paid for by the client's address *before* it is looked up (random tokens
spend the address's budget, not database reads); once resolved, the address must not act for
more than IP_WALLETS_LIMIT wallets (free keypairs cannot multiply a budget), and the request
is counted against the wallet. Sign-in (challenge, verify) has its own budget per address
(SIGN_IN_RATE_LIMIT), apart from every other request.

The budget is `limits`' sliding-window counter, on `limits`' own storage and keys, so any
`limits` client sees the same windows. Its strategy API takes two calls per request (hit,
then window stats for the RateLimit headers), and with Redis that is two script round trips
on every request; the storages here add one call that does both (`acquire_counted`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from redis.asyncio import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketd.core.address_wallets import AddressWallets
from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
SIGN_IN_PATHS = frozenset({"/api/auth/challenge", "/api/auth/verify"})


class Caller(Protocol):
    """Who sends a request, as far as the budget needs to know."""

    def address(self, scope: Scope) -> str:
        """The client's IP (no I/O)."""
        ...

    def has_token(self, scope: Scope) -> bool: ...

    def remembered(self, scope: Scope) -> str | None:
        """The wallet of the request's token if this process remembers it (no I/O)."""
        ...

    async def resolve(self, scope: Scope) -> str | None:
        """The wallet of the request's token, looked up (I/O); None when invalid."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's verdict with what its RateLimit headers say."""

    allowed: bool
    remaining: int
    reset_in: int
    limit: int
    window: int
    slug: str = "rate-limited"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """One client's two sliding windows right after a hit (TTLs in seconds)."""

    acquired: bool
    previous_count: int
    previous_ttl: float
    current_count: int
    current_ttl: float


def remaining_and_reset(item: RateLimitItem, counts: WindowCounts) -> tuple[int, int]:
    """Requests left and whole seconds until one more is allowed (at least 1), computed as
    `limits`' `SlidingWindowCounterRateLimiter.get_window_stats` computes them."""
    expiry = item.get_expiry()
    weighted = counts.previous_count * counts.previous_ttl / expiry + counts.current_count
    remaining = max(0, item.amount - math.floor(weighted))
    reset_in = math.inf
    if counts.previous_count:
        reset_in = counts.previous_ttl % (expiry / counts.previous_count)
    if counts.current_count:
        reset_in = min(reset_in, counts.current_ttl % expiry)
    if math.isinf(reset_in):
        reset_in = 0
    return remaining, max(1, math.ceil(reset_in))


class CountingStorage(Protocol):
    async def acquire_counted(self, key: str, limit: int, expiry: int) -> WindowCounts: ...


# limits' acquire script, extended to answer with the windows it read and wrote.
ACQUIRE_COUNTED_LUA = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local current_ttl = redis.call('pttl', KEYS[2])
if current_ttl > 0 and current_ttl < expiry then
    -- the current window is over: it becomes the previous one
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end
local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = math.max(redis.call('pttl', KEYS[1]), 0)
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count
local acquired = 0
if weighted + 1 <= limit then
    acquired = 1
    if redis.call('exists', KEYS[2]) == 1 then
        current_count = redis.call('incr', KEYS[2])
    else
        redis.call('set', KEYS[2], 1, 'PX', expiry * 2)
        current_count = 1
    end
end
current_ttl = math.max(redis.call('pttl', KEYS[2]), 0)
return {acquired, previous_count, previous_ttl, current_count, current_ttl}
"""


class CountingRedisStorage(RedisStorage):
    """`limits`' Redis storage, with the hit and its window read in one script run."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        # The process's shared, bounded, blocking pool: `limits` would otherwise open a second
        # pool that fails at once when a burst exhausts it.
        shared: dict[str, Any] = {"connection_pool": redis.connection_pool}
        super().__init__(
            "async+redis://", implementation="redispy", key_prefix=prefix + "ratelimit", **shared
        )
        self._acquire_counted = redis.register_script(ACQUIRE_COUNTED_LUA)

    async def acquire_counted(self, key: str, limit: int, expiry: int) -> WindowCounts:
        keys = [
            self.bridge.prefixed_key(self._previous_window_key(key)),
            self.bridge.prefixed_key(self._current_window_key(key)),
        ]
        acquired, previous, previous_ms, current, current_ms = await self._acquire_counted(
            keys, [limit, expiry]
        )
        return WindowCounts(
            bool(acquired), int(previous), previous_ms / 1000, int(current), current_ms / 1000
        )


class CountingMemoryStorage(MemoryStorage):
    """The embedded default: one process's budget, read after the hit (no round trip)."""

    async def acquire_counted(self, key: str, limit: int, expiry: int) -> WindowCounts:
        acquired = await self.acquire_sliding_window_entry(key, limit, expiry)
        return WindowCounts(acquired, *await self.get_sliding_window(key, expiry))


def create_storage(redis: Redis | None, prefix: str) -> CountingStorage:
    """Redis storage on the process's client pool, in-memory without Redis."""
    if redis is None:
        return CountingMemoryStorage()
    return CountingRedisStorage(redis, prefix)


class RateLimiter:
    def __init__(self, storage: CountingStorage, limit: str) -> None:
        self.storage = storage
        self.item: RateLimitItem = parse(limit)

    async def hit(self, identity: str) -> tuple[bool, int, int]:
        """Consume one request; returns (allowed, remaining, seconds until a slot frees)."""
        counts = await self.storage.acquire_counted(
            self.item.key_for(identity), self.item.amount, self.item.get_expiry()
        )
        return (counts.acquired, *remaining_and_reset(self.item, counts))

    async def decide(self, identity: str) -> Decision:
        allowed, remaining, reset_in = await self.hit(identity)
        detail = "" if allowed else f"Request budget exhausted; retry in {reset_in} s."
        return Decision(
            allowed, remaining, reset_in, self.item.amount, self.item.get_expiry(), detail=detail
        )


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        sign_in: RateLimiter,
        caller: Caller,
        wallets: AddressWallets,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.sign_in = sign_in
        self.caller = caller
        self.wallets = wallets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        address = self.caller.address(scope)
        if scope["path"] in SIGN_IN_PATHS:
            decision = await self.sign_in.decide(f"signin:{address}")
        else:
            decision = await self._decide(scope, address)
        headers = [
            (b"ratelimit-limit", str(decision.limit).encode()),
            (b"ratelimit-remaining", str(decision.remaining).encode()),
            (b"ratelimit-reset", str(decision.reset_in).encode()),
            (b"ratelimit-policy", f"{decision.limit};w={decision.window}".encode()),
        ]
        if not decision.allowed:
            await _reject(scope, send, headers, decision)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _decide(self, scope: Scope, address: str) -> Decision:
        wallet = self.caller.remembered(scope)
        if wallet is None and self.caller.has_token(scope):
            # A token this process does not know yet: its address pays before the lookup.
            gate = await self.limiter.decide(f"ip:{address}")
            if not gate.allowed:
                return gate
            wallet = await self.caller.resolve(scope)
            if wallet is None:
                return gate  # an invalid token: the route answers 401, counted once
            if not await self.wallets.admit(address, wallet):
                return self._too_many_wallets(gate)
        if wallet is None:
            return await self.limiter.decide(f"ip:{address}")
        return await self.limiter.decide(f"wallet:{wallet}")

    def _too_many_wallets(self, gate: Decision) -> Decision:
        window = math.ceil(self.wallets.window)
        return Decision(
            False,
            gate.remaining,
            window,
            gate.limit,
            gate.window,
            slug="too-many-wallets",
            detail=(
                f"This address already acts for {self.wallets.limit} wallets within "
                f"{window} s; a new one is not taken until one of them has been idle that long."
            ),
        )


async def _reject(
    scope: Scope, send: Send, headers: list[tuple[bytes, bytes]], decision: Decision
) -> None:
    retry = decision.reset_in
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + decision.slug,
        "title": "Too many requests",
        "status": 429,
        "detail": decision.detail,
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
