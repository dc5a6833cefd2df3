"""The page cache: versioned groups on Redis and in memory, and cached JSON responses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from pydantic import BaseModel
from redis.asyncio import Redis

from marketd.core.pages import MemoryPageCache, PageCache, RedisPageCache, cached_json


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
