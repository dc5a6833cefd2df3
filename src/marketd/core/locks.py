"""Leader locks: only one instance runs each periodic job (sweep, snapshot, prune, …).

A lock is a key with a TTL held under a token; the holder renews it while it works, and a
holder that dies simply stops renewing, so another instance takes over within one TTL (plus
one retry interval). A holder that stops cleanly releases its locks, so a standby takes over
within one retry interval. Redis when configured (shared by every instance), in-process
otherwise.

The token names its holder (`<host>:<pid>:<random>`), so an operator (or a test) can tell
from the lock key which process holds it; `marketd_lock_held{lock}` says the same per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable

import structlog
from prometheus_client import Gauge
from redis.asyncio import Redis

from marketd.core.waits import wait_for_stop

LOCK_HELD = Gauge("marketd_lock_held", "1 while this process holds the leader lock.", ["lock"])
log = structlog.get_logger("marketd.locks")

DEFAULT_RETRY_SECONDS = 1.0
"""Longest wait of a standby between two attempts (shorter with a short TTL: a third of it)."""

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


def new_token() -> str:
    """A unique lock token that says who holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"


class Locks(ABC):
    """`ttl`, when set, replaces the TTL every `leadership` caller asks for
    (`LOCK_TTL_SECONDS`: one fail-over time for all the always-on jobs; one-off runs under
    `hold` keep theirs); `retry_seconds` bounds a standby's polling."""

    # Class-level defaults too: a subclass that does not call `__init__` still works.
    ttl: float | None = None
    retry_seconds: float = DEFAULT_RETRY_SECONDS

    def __init__(
        self, *, ttl: float | None = None, retry_seconds: float = DEFAULT_RETRY_SECONDS
    ) -> None:
        self.ttl = ttl
        self.retry_seconds = retry_seconds

    @abstractmethod
    async def try_acquire(self, name: str, ttl: float) -> str | None:
        """The holder's token, or None when someone else holds the lock."""

    @abstractmethod
    async def renew(self, name: str, token: str, ttl: float) -> bool: ...

    @abstractmethod
    async def release(self, name: str, token: str) -> None: ...

    def effective_ttl(self, ttl: float) -> float:
        return self.ttl if self.ttl is not None else ttl

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
        """Wait until this instance holds `name` (retrying every `retry_seconds`, or a third
        of the TTL if shorter), then hold it for the block. Yields None only when `stop` is
        set before the lock is won."""
        ttl = self.effective_ttl(ttl)
        retry = min(ttl / 3, self.retry_seconds)
        stop = stop or asyncio.Event()
        while True:
            token = await self.try_acquire(name, ttl)
            if token is not None:
                break
            if await wait_for_stop(stop, retry):
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
    """A held lock; `lost` is set when a renewal is refused (another instance took over), or
    when renewals keep failing (Redis unreachable) so long that the key may expire before the
    next attempt: the holder stops before a standby can take over, never after."""

    def __init__(
        self,
        locks: Locks,
        name: str,
        token: str,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.locks, self.name, self.token, self.ttl = locks, name, token, ttl
        self.lost = asyncio.Event()
        self._monotonic = monotonic
        self._renewer: asyncio.Task[None] | None = None

    def start(self) -> None:
        LOCK_HELD.labels(self.name).set(1)
        self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        interval = self.ttl / 3
        expires = self._monotonic() + self.ttl
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await self.locks.renew(self.name, self.token, self.ttl)
            except Exception as exc:
                if self._monotonic() + interval < expires:
                    await log.awarning(
                        "lock renewal failed; retrying", lock=self.name, error=repr(exc)
                    )
                    continue
                await log.aerror("lock renewals failed; giving it up", lock=self.name)
                renewed = False
            if not renewed:
                LOCK_HELD.labels(self.name).set(0)
                self.lost.set()
                return
            expires = self._monotonic() + self.ttl

    async def stop(self) -> None:
        """Stop renewing and release the lock (best effort: an unreleased key expires)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        LOCK_HELD.labels(self.name).set(0)
        try:
            await self.locks.release(self.name, self.token)
        except Exception as exc:
            await log.awarning("lock release failed; it expires", lock=self.name, error=repr(exc))


class MemoryLocks(Locks):
    def __init__(
        self, *, ttl: float | None = None, retry_seconds: float = DEFAULT_RETRY_SECONDS
    ) -> None:
        super().__init__(ttl=ttl, retry_seconds=retry_seconds)
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
        token = new_token()
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
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl: float | None = None,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> None:
        super().__init__(ttl=ttl, retry_seconds=retry_seconds)
        self._redis = redis
        self._prefix = prefix + "lock:"

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        token = new_token()
        acquired = await self._redis.set(self._prefix + name, token, nx=True, px=int(ttl * 1000))
        return token if acquired else None

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        renewed = await self._redis.eval(_RENEW, 1, self._prefix + name, token, int(ttl * 1000))
        return bool(renewed)

    async def release(self, name: str, token: str) -> None:
        await self._redis.eval(_RELEASE, 1, self._prefix + name, token)
