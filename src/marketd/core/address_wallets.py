"""How many wallets one client address uses: at most `limit` distinct ones per `window`.

Sign-in needs only a keypair, so one machine can hold sessions for thousands of free wallets
and spend a request budget for each. Counting the wallets an address acts for bounds that: a
wallet already seen from the address within the window is always admitted (and its time
refreshed); a new one only while fewer than `limit` are active. Checked when a session token
is resolved (not on every request: the rate limiter remembers who a token is for a while).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])))
  return 1
end
return 0
"""


class AddressWallets(Protocol):
    limit: int
    window: float

    async def admit(self, address: str, wallet: str) -> bool:
        """Record that `address` acts for `wallet`; False when that would exceed the limit."""
        ...


class RedisAddressWallets:
    """Shared by every instance: a sorted set per address (wallet -> last seen)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window = window
        self._prefix = prefix + "address-wallets:"
        self._clock = clock
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, address: str, wallet: str) -> bool:
        keys = [self._prefix + address]
        args: list[str | float] = [wallet, self._clock(), self.window, self.limit]
        return bool(await self._admit(keys=keys, args=args))


class MemoryAddressWallets:
    """The embedded default (one process). Addresses past `capacity` are forgotten oldest
    first, so a flood of addresses cannot grow it without bound."""

    def __init__(
        self,
        limit: int,
        window: float,
        capacity: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()

    async def admit(self, address: str, wallet: str) -> bool:
        now = self._clock()
        wallets = self._seen.pop(address, {})
        for known, seen_at in list(wallets.items()):
            if seen_at <= now - self.window:
                del wallets[known]
        admitted = wallet in wallets or len(wallets) < self.limit
        if admitted:
            wallets[wallet] = now
        if wallets:
            self._seen[address] = wallets
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        return admitted


def create_address_wallets(
    redis: Redis | None, prefix: str, limit: int, window: float
) -> AddressWallets:
    if redis is None:
        return MemoryAddressWallets(limit, window)
    return RedisAddressWallets(redis, prefix, limit, window)
