"""Leader locks: only one instance runs each periodic job (sweep, snapshot, prune, …).

A lock is a key with a TTL held under a random token; the holder renews it while it works,
and a holder that dies simply stops renewing, so another instance takes over within one TTL.
Redis when configured (shared by every instance), in-process otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from redis.asyncio import Redis

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Locks(ABC):
    @abstractmethod
    async def try_acquire(self, name: str, ttl: float) -> str | None:
        """The holder's token, or None when someone else holds the lock."""

    @abstractmethod
    async def renew(self, name: str, token: str, ttl: float) -> bool: ...

    @abstractmethod
    async def release(self, name: str, token: str) -> None: ...

    @contextlib.asynccontextmanager
    async def hold(self, name: str, ttl: float = 30.0) -> AsyncIterator[Lease | None]:
        """Hold `name` for the block (renewed in the background), or yield None at once when
        another instance holds it."""
        token = await self.try_acquire(name, ttl)
        if token is None:
            yield None
            return
        async with self._leased(name, token, ttl) as lease:
            yield lease

    @contextlib.asynccontextmanager
    async def leadership(
        self, name: str, ttl: float = 30.0, stop: asyncio.Event | None = None
    ) -> AsyncIterator[Lease | None]:
        """Wait until this instance holds `name` (retrying every third of the TTL), then hold
        it for the block. Yields None only when `stop` is set before the lock is won."""
        stop = stop or asyncio.Event()
        while True:
            token = await self.try_acquire(name, ttl)
            if token is not None:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ttl / 3)
            if stop.is_set():
                yield None
                return
        async with self._leased(name, token, ttl) as lease:
            yield lease

    @contextlib.asynccontextmanager
    async def _leased(self, name: str, token: str, ttl: float) -> AsyncIterator[Lease]:
        lease = Lease(self, name, token, ttl)
        lease.start()
        try:
            yield lease
        finally:
            await lease.stop()


class Lease:
    """A held lock; `lost` is set when a renewal fails (another instance took over)."""

    def __init__(self, locks: Locks, name: str, token: str, ttl: float) -> None:
        self.locks, self.name, self.token, self.ttl = locks, name, token, ttl
        self.lost = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            if not await self.locks.renew(self.name, self.token, self.ttl):
                self.lost.set()
                return

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        await self.locks.release(self.name, self.token)


class MemoryLocks(Locks):
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    def _live(self, name: str) -> tuple[str, float] | None:
        held = self._held.get(name)
        if held is not None and held[1] <= time.monotonic():
            del self._held[name]
            return None
        return held

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        if self._live(name) is not None:
            return None
        token = secrets.token_hex(16)
        self._held[name] = (token, time.monotonic() + ttl)
        return token

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        held = self._live(name)
        if held is None or held[0] != token:
            return False
        self._held[name] = (token, time.monotonic() + ttl)
        return True

    async def release(self, name: str, token: str) -> None:
        held = self._live(name)
        if held is not None and held[0] == token:
            del self._held[name]


class RedisLocks(Locks):
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "lock:"

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        acquired = await self._redis.set(self._prefix + name, token, nx=True, px=int(ttl * 1000))
        return token if acquired else None

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        renewed = await self._redis.eval(_RENEW, 1, self._prefix + name, token, int(ttl * 1000))
        return bool(renewed)

    async def release(self, name: str, token: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._prefix + name, token)
