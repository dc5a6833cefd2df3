"""The cached read of a market's thread (`GET /api/discussions/{market_id}`): its first pages
are kept in the market's discussion group of the page cache, which every post and delete
drops."""

from __future__ import annotations

from starlette.responses import Response

from marketd.core.bus import EventBus
from marketd.core.database import Database
from marketd.core.schemas import Page
from marketd.discussions.schemas import DiscussionOut
from marketd.discussions.service import DiscussionService
from marketd.markets.cache import MarketCache
from marketd.markets.reads import CachedReads


class DiscussionReads(CachedReads):
    def __init__(self, database: Database, bus: EventBus, cache: MarketCache) -> None:
        super().__init__(database, cache)
        self.bus = bus

    async def thread(self, market_id: str, limit: int, cursor: str | None) -> Response:
        async def render() -> Page[DiscussionOut]:
            return await self.read(
                lambda session: DiscussionService(session, self.bus, self.cache).thread(
                    market_id, limit, cursor
                )
            )

        hot_page = None if cursor else f"discussions:{limit}"
        return await self.cache.discussion(market_id, hot_page, render)
