"""Market state and prices in the cache (Redis when configured, in-process otherwise).

One JSON document per market (`market:<id>`, the `GET /api/markets/{id}` body) and the hot
listing pages under a generation number (`markets:page:<generation>:<query>`). The indexer
rewrites a market's document after every batch that touched it and bumps the generation, so
every cached page is dropped at once: invalidation is by event; the TTLs are only a backstop.

Read-through fills (on a miss) use a short TTL: a fill that read the database just before an
indexer commit can then hold a stale document for seconds at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.cache import Cache
from marketd.markets.schemas import MarketOut
from marketd.models import Market, MarketSchedule

WRITE_TTL_SECONDS = 3600
READ_THROUGH_TTL_SECONDS = 30
GENERATION_KEY = "markets:generation"


def market_key(market_id: str) -> str:
    return f"market:{market_id}"


class MarketCache:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def get(self, market_id: str) -> MarketOut | None:
        raw = await self.cache.get(market_key(market_id))
        return None if raw is None else MarketOut.model_validate(raw)

    async def put(self, market: MarketOut, ttl: int = WRITE_TTL_SECONDS) -> None:
        await self.cache.set(market_key(market.id), market.model_dump(mode="json"), ttl)

    async def invalidate(self, market_ids: Iterable[str]) -> None:
        await self.cache.delete(*(market_key(market_id) for market_id in market_ids))

    # -- listing pages
    async def generation(self) -> int:
        value = await self.cache.get(GENERATION_KEY)
        return int(value) if value is not None else 0

    async def bump_listing(self) -> None:
        await self.cache.set(GENERATION_KEY, await self.generation() + 1, WRITE_TTL_SECONDS * 24)

    async def listing(self, query: str) -> Any | None:
        return await self.cache.get(f"markets:page:{await self.generation()}:{query}")

    async def put_listing(self, query: str, page: Any) -> None:
        key = f"markets:page:{await self.generation()}:{query}"
        await self.cache.set(key, page, READ_THROUGH_TTL_SECONDS)

    async def refresh(self, session: AsyncSession, market_ids: Iterable[str]) -> int:
        """Rewrite the documents of `market_ids` from the database; drop the listing pages."""
        ids = sorted(set(market_ids))
        if not ids:
            return 0
        rows = await session.execute(
            select(Market, MarketSchedule.closes_at)
            .outerjoin(MarketSchedule, MarketSchedule.market_id == Market.id)
            .where(Market.id.in_(ids))
        )
        count = 0
        for market, closes_at in rows.all():
            out = MarketOut.model_validate(market)
            out.closes_at = closes_at
            await self.put(out)
            count += 1
        await self.bump_listing()
        return count
