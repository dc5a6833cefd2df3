"""The page cache: versioned groups on Redis and in memory, and cached JSON responses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from pydantic import BaseModel
from redis.asyncio import Redis

from marketd.core.page_cache import (
    Lookup,
    MemoryPageCache,
    PageCache,
    RedisPageCache,
    cached_json,
)


@pytest_asyncio.fixture(params=["redis", "memory"])
async def pages(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[PageCache]:
    if request.param == "memory":
        yield MemoryPageCache()
        return
    client = Redis.from_url(redis_url)
    yield RedisPageCache(client, f"{redis_prefix}pages-{uuid.uuid4().hex[:6]}:")
    await client.aclose()


async def test_a_put_is_read_back_until_the_group_is_dropped(pages: PageCache) -> None:
    empty = await pages.get("market:1", "detail")
    assert (empty.body, empty.version) == (None, "")
    assert await pages.put("market:1", "detail", empty.version, b'{"a":1}', 60)
    assert (await pages.get("market:1", "detail")).body == b'{"a":1}'
    assert await pages.drop("market:1", "market:2") == ["1", "1"]
    dropped = await pages.get("market:1", "detail")
    assert (dropped.body, dropped.version) == (None, "1")
    assert await pages.drop("market:1") == ["2"]
    assert await pages.drop() == []


async def test_a_render_that_raced_with_a_drop_is_not_stored(pages: PageCache) -> None:
    seen = await pages.get("market:1", "votes")  # a reader misses, then reads the database...
    await pages.drop("market:1")  # ...while a write commits and drops the group
    assert not await pages.put("market:1", "votes", seen.version, b"old", 60)
    assert (await pages.get("market:1", "votes")).body is None
    current = await pages.get("market:1", "votes")
    assert await pages.put("market:1", "votes", current.version, b"new", 60)
    assert (await pages.get("market:1", "votes")).body == b"new"


async def test_a_body_past_its_freshness_is_a_miss(pages: PageCache) -> None:
    assert await pages.put("markets", "q", "", b"[]", -1)
    assert (await pages.get("markets", "q")).body is None
    assert await pages.put("markets", "other", "", b"[1]", 60)
    assert (await pages.get("markets", "other")).body == b"[1]"


async def test_memory_groups_are_bounded() -> None:
    pages = MemoryPageCache(max_groups=2)
    for group in ("a", "b", "c"):
        assert await pages.put(group, "x", "", group.encode(), 60)
    assert (await pages.get("a", "x")).body is None  # the oldest group made room
    assert (await pages.get("c", "x")).body == b"c"


class Doc(BaseModel):
    value: int


async def test_cached_json_renders_once_then_serves_the_stored_body(pages: PageCache) -> None:
    renders: list[int] = []

    async def render() -> Doc:
        renders.append(1)
        return Doc(value=len(renders))

    def reads(result: str) -> float:
        return REGISTRY.get_sample_value("marketd_page_cache_reads_total", {"result": result}) or 0

    hits, misses = reads("hit"), reads("miss")
    first = await cached_json(pages, "g", "doc", 60, render)
    second = await cached_json(pages, "g", "doc", 60, render)
    assert (reads("hit") - hits, reads("miss") - misses) == (1, 1)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.body == second.body == b'{"value":1}' and len(renders) == 1
    uncached = await cached_json(pages, "g", None, 60, render)
    assert uncached.body == b'{"value":2}' and "X-Cache" not in uncached.headers


async def test_cached_json_does_not_store_a_failed_render(pages: PageCache) -> None:
    async def broken() -> Doc:
        raise LookupError("no such market")

    with pytest.raises(LookupError):
        await cached_json(pages, "g", "doc", 60, broken)
    assert (await pages.get("g", "doc")).body is None


def all_looked_up(pages: PageCache, callers: int) -> asyncio.Event:
    """Set once `callers` lookups returned: each caller then joins (or starts) the render in
    the same step, before the event loop runs anything else."""
    everyone, seen = asyncio.Event(), [0]
    lookup = pages.get

    async def counted(group: str, name: str) -> Lookup:
        found = await lookup(group, name)
        seen[0] += 1
        if seen[0] == callers:
            everyone.set()
        return found

    pages.get = counted  # type: ignore[method-assign]
    return everyone


async def test_concurrent_misses_share_one_render(pages: PageCache) -> None:
    everyone = all_looked_up(pages, 5)
    renders: list[int] = []

    async def slow_render() -> Doc:
        renders.append(1)
        return Doc(value=len(renders))

    release = asyncio.Event()

    async def held_render() -> Doc:
        await release.wait()
        return await slow_render()

    callers = [
        asyncio.create_task(cached_json(pages, "g", "hot", 60, held_render)) for _ in range(5)
    ]
    await everyone.wait()
    callers[0].cancel()  # one client goes away: the render goes on for the others
    release.set()
    served = await asyncio.gather(*callers[1:])
    assert renders == [1]
    assert {response.body for response in served} == {b'{"value":1}'}
    assert (await pages.get("g", "hot")).body == b'{"value":1}'


async def test_a_failed_shared_render_fails_every_waiting_caller(pages: PageCache) -> None:
    everyone = all_looked_up(pages, 3)
    attempts: list[int] = []

    async def broken() -> Doc:
        attempts.append(1)
        await everyone.wait()
        raise LookupError("no such market")

    callers = [asyncio.create_task(cached_json(pages, "g", "gone", 60, broken)) for _ in range(3)]
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert attempts == [1] and all(isinstance(o, LookupError) for o in outcomes)


async def test_a_render_begun_before_a_drop_is_not_shared_with_later_readers(
    pages: PageCache,
) -> None:
    everyone = all_looked_up(pages, 1)
    release = asyncio.Event()
    values = iter(range(1, 10))

    async def render() -> Doc:
        value = next(values)
        if value == 1:
            await release.wait()
        return Doc(value=value)

    early = asyncio.create_task(cached_json(pages, "g", "doc", 60, render))
    await everyone.wait()  # the early reader saw the group before the write
    await pages.drop("g")  # a write lands while the first render reads the old state
    late = await cached_json(pages, "g", "doc", 60, render)
    release.set()
    assert late.body == b'{"value":2}'
    assert (await early).body == b'{"value":1}'
    assert (await pages.get("g", "doc")).body == b'{"value":2}'
