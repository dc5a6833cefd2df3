"""Everything a request or worker needs, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx
from redis.asyncio import Redis

from marketd.config import Settings
from marketd.core.address_wallets import AddressWallets, create_address_wallets
from marketd.core.bus import EventBus, InProcessBus, RedisBus
from marketd.core.cache import Cache, MemoryCache, RedisCache
from marketd.core.database import Database, create_engine
from marketd.core.locks import Locks, MemoryLocks, RedisLocks
from marketd.core.page_cache import MemoryPageCache, PageCache, RedisPageCache
from marketd.core.ratelimit import RateLimiter, create_storage

T = TypeVar("T")


@dataclass
class Container:
    settings: Settings
    database: Database
    redis: Redis | None
    cache: Cache
    bus: EventBus
    limiter: RateLimiter
    sign_in_limiter: RateLimiter
    address_wallets: AddressWallets
    locks: Locks
    pages: PageCache
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30.0))
    """One HTTP connection pool for the process's outbound calls (readiness probes, IPFS
    gateways and stores): a client per call costs a new pool and TLS context (~0.8 MB) each
    time. Callers pass their own per-request timeouts."""

    _shared: dict[Callable[[Container], Any], Any] = field(
        default_factory=dict, init=False, repr=False
    )
    _closers: list[Callable[[], Awaitable[None]]] = field(
        default_factory=list, init=False, repr=False
    )

    def shared(self, build: Callable[[Container], T]) -> T:
        """The process's one `build(self)`: made on first use, then the same object for every
        request and job. For a domain's parts that are costly to make and read-only once made
        (the chain client vote eligibility reads, the snapshot routes' stores): the domain
        writes `build` (core knows no domain), the container holds what it made. A part that
        must be closed registers its closing with `on_close` when `build` makes it."""
        if build not in self._shared:
            self._shared[build] = build(self)
        return cast(T, self._shared[build])

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run `close` when the container closes (before the connections it holds close; the
        last registered first)."""
        self._closers.append(close)

    @classmethod
    def build(cls, settings: Settings) -> Container:
        database = Database(create_engine(settings))
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        redis: Redis | None = None
        cache: Cache
        bus: EventBus
        locks: Locks
        pages: PageCache
        if redis_url is not None:
            from marketd.core.redis import create_redis

            redis = create_redis(redis_url)
            cache = RedisCache(redis, settings.redis_prefix)
            bus = RedisBus(redis, settings.redis_prefix)
            locks = RedisLocks(redis, settings.redis_prefix, ttl=settings.lock_ttl_seconds)
            pages = RedisPageCache(redis, settings.redis_prefix)
        else:
            cache, bus = MemoryCache(), InProcessBus()
            locks = MemoryLocks(ttl=settings.lock_ttl_seconds)
            pages = MemoryPageCache()
        storage = create_storage(redis, settings.redis_prefix)
        limiter = RateLimiter(storage, settings.rate_limit)
        sign_in_limiter = RateLimiter(storage, settings.sign_in_rate_limit)
        address_wallets = create_address_wallets(
            redis, settings.redis_prefix, settings.ip_wallets_limit, settings.ip_wallets_window
        )
        return cls(
            settings,
            database,
            redis,
            cache,
            bus,
            limiter,
            sign_in_limiter,
            address_wallets,
            locks,
            pages,
        )

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        await self.http.aclose()
        await self.bus.close()
        await self.database.dispose()
        if self.redis is not None:
            await self.redis.aclose()
