"""What the page cache holds about markets, and the writes that keep it current.

* `market:<id>` — the `GET /api/markets/{id}` body, rewritten by the indexer after every batch
  that touched the market (so the route is served from cache), read through on a miss; kept
  until the next UTC hour at most, when its 24-hour figures move (`detail_ttl`);
* `market:<id>:votes` — the first pages of the market's votes, dropped (with `market:<id>`,
  whose detail shows the live tally) by every vote on the market (API, chain action confirmed,
  indexed on-chain vote);
* `market:<id>:discussion` — the first pages of its discussion, dropped by every post and
  delete (kept apart so that the votes on a hot market do not keep dropping its thread);
* `markets` — the listing's hot pages (one per query), dropped whenever any market changes.

Groups and their versioned compare-and-set are `marketd.core.page_cache`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from marketd.core.events import DiscussionPosted, DomainEvent, MarketCreated, VoteCast
from marketd.core.page_cache import PageCache, cached_json
from marketd.markets.repository import MarketRepository
from marketd.markets.rules import seconds_to_next_hour
from marketd.markets.schemas import MarketDetailOut

DETAIL = "detail"
LISTING_GROUP = "markets"
INDEXED_TTL_SECONDS = 3600  # written by the indexer: every event rewrites it
READ_THROUGH_TTL_SECONDS = 300  # filled by a reader: nothing should change it unannounced
ACTIVITY_TTL_SECONDS = 300
LISTING_TTL_SECONDS = 10  # "closing soon" and close times move with the clock, not by events


def detail_ttl(ttl: int, now: datetime) -> int:
    """A detail's 24-hour figures change on the hour without any event: it is kept until the
    next hour at most."""
    return min(ttl, seconds_to_next_hour(now))


def market_group(market_id: str) -> str:
    return f"market:{market_id}"


def votes_group(market_id: str) -> str:
    return f"market:{market_id}:votes"


def discussion_group(market_id: str) -> str:
    return f"market:{market_id}:discussion"


class MarketCache:
    def __init__(self, pages: PageCache) -> None:
        self.pages = pages

    async def get(self, market_id: str) -> MarketDetailOut | None:
        found = await self.pages.get(market_group(market_id), DETAIL)
        return None if found.body is None else MarketDetailOut.model_validate_json(found.body)

    async def detail(
        self, market_id: str, render: Callable[[], Awaitable[MarketDetailOut]]
    ) -> Response:
        group = market_group(market_id)
        ttl = detail_ttl(READ_THROUGH_TTL_SECONDS, datetime.now(UTC))
        return await cached_json(self.pages, group, DETAIL, ttl, render)

    async def votes(
        self, market_id: str, name: str | None, render: Callable[[], Awaitable[BaseModel]]
    ) -> Response:
        group = votes_group(market_id)
        return await cached_json(self.pages, group, name, ACTIVITY_TTL_SECONDS, render)

    async def discussion(
        self, market_id: str, name: str | None, render: Callable[[], Awaitable[BaseModel]]
    ) -> Response:
        group = discussion_group(market_id)
        return await cached_json(self.pages, group, name, ACTIVITY_TTL_SECONDS, render)

    async def listing(
        self, query: str | None, render: Callable[[], Awaitable[BaseModel]]
    ) -> Response:
        return await cached_json(self.pages, LISTING_GROUP, query, LISTING_TTL_SECONDS, render)

    async def invalidate(self, market_ids: Iterable[str]) -> None:
        await self.pages.drop(*(market_group(market_id) for market_id in market_ids))

    async def drop_votes(self, market_id: str) -> None:
        """After a vote: the votes pages, and the detail (its live tally)."""
        await self.pages.drop(votes_group(market_id), market_group(market_id))

    async def drop_discussion(self, market_id: str) -> None:
        await self.pages.drop(discussion_group(market_id))

    async def drop_listing(self) -> None:
        await self.pages.drop(LISTING_GROUP)

    async def drop_for(self, event: DomainEvent) -> None:
        """Drop the pages an API-made event makes stale (the events the indexer publishes are
        covered by its `refresh` of the markets its batch touched)."""
        if isinstance(event, VoteCast):
            await self.drop_votes(event.market_id)
        elif isinstance(event, DiscussionPosted):
            await self.drop_discussion(event.market_id)
        elif isinstance(event, MarketCreated):
            await self.drop_listing()

    async def refresh(self, session: AsyncSession, market_ids: Iterable[str]) -> int:
        """Drop every page of `market_ids` and the listing; rewrite their documents."""
        ids = sorted(set(market_ids))
        if not ids:
            return 0
        versions = await self.pages.drop(
            *(market_group(i) for i in ids), *(votes_group(i) for i in ids), LISTING_GROUP
        )
        version_of = dict(zip(ids, versions, strict=False))
        count, now = 0, datetime.now(UTC)
        ttl = detail_ttl(INDEXED_TTL_SECONDS, now)
        for row in await MarketRepository(session).details(ids, now):
            body = MarketDetailOut.of_row(row).model_dump_json().encode()
            group = market_group(row["id"])
            await self.pages.put(group, DETAIL, version_of[row["id"]], body, ttl)
            count += 1
        return count
