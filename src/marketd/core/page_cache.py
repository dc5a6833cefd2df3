"""Rendered JSON bodies of hot reads, grouped so that one write drops every page it changes.

A group (say, everything shown about one market) is one Redis hash `pages:<group>`: the field
`_v` holds the group's version and every other field one rendered body, prefixed with the
moment it stops being fresh. A write that changes what a group shows calls `drop(group)`,
which replaces the hash by one holding only `_v + 1`.

A reader that misses renders from the database and stores the body only if `_v` is still the
version it saw *before* reading (a compare-and-set in one Lua script). So a render that raced
with a write can never put the older state back over the newer one: invalidation is by event,
and the freshness deadline only bounds what no event announces (time passing).

The embedded default keeps the same structure in process memory.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter
from pydantic import BaseModel
from redis.asyncio import Redis
from starlette.responses import Response

PAGE_READS = Counter(
    "marketd_page_cache_reads_total",
    "Cached page reads by result (hit: served from the page cache; miss: rendered).",
    ["result"],
)
VERSION_FIELD = "_v"
GROUP_LIFETIME_SECONDS = 86_400  # memory backstop for groups nobody writes to any more

_PUT_IF_CURRENT = """
local current = redis.call('HGET', KEYS[1], '_v') or ''
if current ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return 1
"""

_DROP = """
local versions = {}
for i, key in ipairs(KEYS) do
  local next_version = tonumber(redis.call('HGET', key, '_v') or '0') + 1
  redis.call('DEL', key)
  redis.call('HSET', key, '_v', next_version)
  redis.call('EXPIRE', key, ARGV[1])
  versions[i] = tostring(next_version)
end
return versions
"""


@dataclass(frozen=True)
class Lookup:
    """A fresh body, or None with the group version a later `put` must present."""

    body: bytes | None
    version: str


def _stamp(body: bytes, ttl_seconds: float) -> bytes:
    return b"%d:" % int((time.time() + ttl_seconds) * 1000) + body


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _fresh(stored: bytes | None) -> bytes | None:
    if stored is None:
        return None
    deadline, _, body = stored.partition(b":")
    return body if int(deadline) > time.time() * 1000 else None


class SingleFlight:
    """Concurrent misses of one page share one render.

    Without it, a page that expires (or is dropped) while it is hot is rendered by every
    request that arrives before the first render is stored: under load that herd costs more
    than the traffic it serves. The render runs as its own task, so a caller that goes away
    (client disconnect) does not cancel it for the others. Keys carry the group version the
    caller saw, so a render that started before a drop is never handed to a caller that
    read after it.
    """

    def __init__(self) -> None:
        self._running: dict[tuple[str, str, str], asyncio.Task[bytes]] = {}

    async def run(self, key: tuple[str, str, str], work: Callable[[], Awaitable[bytes]]) -> bytes:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: tuple[str, str, str], task: asyncio.Task[bytes]) -> None:
        del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone away


class PageCache(ABC):
    def __init__(self) -> None:
        self.flights = SingleFlight()

    @abstractmethod
    async def get(self, group: str, name: str) -> Lookup: ...

    @abstractmethod
    async def put(
        self, group: str, name: str, version: str, body: bytes, ttl_seconds: float
    ) -> bool:
        """Store `body` unless the group was dropped since `version` was read."""

    @abstractmethod
    async def drop(self, *groups: str) -> list[str]:
        """Forget every page of `groups`; returns their new versions, in order."""


class RedisPageCache(PageCache):
    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix + "pages:"
        self._put = redis.register_script(_PUT_IF_CURRENT)
        self._drop = redis.register_script(_DROP)

    async def get(self, group: str, name: str) -> Lookup:
        stored, version = await self._redis.hmget(self._prefix + group, [name, VERSION_FIELD])
        return Lookup(_fresh(_as_bytes(stored)), (_as_bytes(version) or b"").decode())

    async def put(
        self, group: str, name: str, version: str, body: bytes, ttl_seconds: float
    ) -> bool:
        keys = [self._prefix + group]
        stamped = _stamp(body, ttl_seconds)
        return bool(await self._put(keys, [version, name, stamped, GROUP_LIFETIME_SECONDS]))

    async def drop(self, *groups: str) -> list[str]:
        if not groups:
            return []
        keys = [self._prefix + group for group in groups]
        versions = await self._drop(keys, [GROUP_LIFETIME_SECONDS])
        return [v.decode() if isinstance(v, bytes) else str(v) for v in versions]


@dataclass
class _Group:
    version: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)


class MemoryPageCache(PageCache):
    def __init__(self, max_groups: int = 20_000) -> None:
        super().__init__()
        self._groups: dict[str, _Group] = {}
        self._max_groups = max_groups

    async def get(self, group: str, name: str) -> Lookup:
        found = self._groups.get(group)
        if found is None:
            return Lookup(None, "")
        return Lookup(_fresh(found.bodies.get(name)), found.version)

    async def put(
        self, group: str, name: str, version: str, body: bytes, ttl_seconds: float
    ) -> bool:
        found = self._groups.get(group)
        if (found.version if found else "") != version:
            return False
        if found is None:
            if len(self._groups) >= self._max_groups:
                self._groups.pop(next(iter(self._groups)))
            found = self._groups[group] = _Group()
        found.bodies[name] = _stamp(body, ttl_seconds)
        return True

    async def drop(self, *groups: str) -> list[str]:
        versions = []
        for group in groups:
            previous = self._groups.pop(group, None)
            version = str(int(previous.version or "0") + 1 if previous else 1)
            self._groups[group] = _Group(version)
            versions.append(version)
        return versions


async def _json_of(render: Callable[[], Awaitable[BaseModel]]) -> bytes:
    return (await render()).model_dump_json().encode()


async def cached_json(
    pages: PageCache,
    group: str,
    name: str | None,
    ttl_seconds: float,
    render: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """The body of `render()` as a JSON response, from the page cache when it is there.

    The `X-Cache` header says which (`hit` or `miss`); errors raised by `render` are not cached.
    A `name` of None renders without the cache (pages that are not hot, such as later pages).
    """
    if name is None:
        return Response(await _json_of(render), media_type="application/json")
    found = await pages.get(group, name)
    if found.body is not None:
        PAGE_READS.labels("hit").inc()
        return Response(found.body, media_type="application/json", headers={"X-Cache": "hit"})
    PAGE_READS.labels("miss").inc()

    async def render_and_store() -> bytes:
        body = await _json_of(render)
        await pages.put(group, name, found.version, body, ttl_seconds)
        return body

    body = await pages.flights.run((group, name, found.version), render_and_store)
    return Response(body, media_type="application/json", headers={"X-Cache": "miss"})
