"""The cached read of a market's votes (`GET /api/markets/{id}/votes`): its first pages are
kept in the market's votes group of the page cache, which every vote drops."""

from __future__ import annotations

from starlette.responses import Response

from marketd.core.bus import EventBus
from marketd.core.database import Database
from marketd.markets.cache import MarketCache
from marketd.markets.reads import CachedReads
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import MarketVotesOut
from marketd.votes.service import VoteService


class VoteReads(CachedReads):
    def __init__(self, database: Database, bus: EventBus, cache: MarketCache) -> None:
        super().__init__(database, cache)
        self.bus = bus

    async def market_votes(
        self, kind: VoteKind, market_id: str, limit: int, cursor: str | None
    ) -> Response:
        async def render() -> MarketVotesOut:
            return await self.read(
                lambda session: VoteService(session, self.bus, self.cache).market_votes(
                    kind, market_id, limit, cursor
                )
            )

        hot_page = None if cursor else f"votes:{kind.value}:{limit}"
        return await self.cache.votes(market_id, hot_page, render)
