"""The cached reads of the market routes: which page of the page cache each request is kept
under, and how a miss is rendered.

A hit answers the stored body without a database session; a miss opens a read-only session of
its own, renders through the use case, and stores the result (`MarketCache`). The other
domains' cached reads (votes, discussions, activity) are built the same way on `CachedReads`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from marketd.chain.addresses import looks_like_address
from marketd.config import Settings
from marketd.core.bus import EventBus
from marketd.core.database import Database
from marketd.core.schemas import Page
from marketd.markets.cache import MarketCache
from marketd.markets.repository import MarketFilter
from marketd.markets.schemas import CategoriesOut, MarketDetailOut, MarketOut, MarketSort
from marketd.markets.service import MarketService

T = TypeVar("T")


class CachedReads:
    """A domain's reads served from the page cache; `read` renders a miss."""

    def __init__(self, database: Database, cache: MarketCache) -> None:
        self.database = database
        self.cache = cache

    async def read(self, use_case: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`use_case` in a read-only session opened for it (only a miss gets here)."""
        async with self.database.session(read_only=True) as session:
            return await use_case(session)


class MarketReads(CachedReads):
    def __init__(
        self, database: Database, settings: Settings, bus: EventBus, cache: MarketCache
    ) -> None:
        super().__init__(database, cache)
        self.settings = settings
        self.bus = bus

    def _markets(self, session: AsyncSession) -> MarketService:
        return MarketService(session, self.settings, self.bus, self.cache)

    async def listing(
        self, filters: MarketFilter, sort: MarketSort, limit: int, cursor: str | None
    ) -> Response:
        """First pages of browsing are cached (a few filter/sort combinations draw most
        requests). Not text searches: each query string is a page of its own that rarely
        repeats within the listing's freshness (measured: 2-3% hits under the load test), so
        caching cost a Redis read and write per search, and the trigram index answers it in
        well under 1 ms."""

        async def render() -> Page[MarketOut]:
            return await self.read(
                lambda session: self._markets(session).list_markets(filters, sort, limit, cursor)
            )

        state = filters.state
        hot_page = (
            None
            if cursor or filters.text
            else f"{state and state.value}|{filters.category}|{sort.value}|{limit}"
        )
        return await self.cache.listing(hot_page, render)

    async def categories(self) -> Response:
        async def render() -> CategoriesOut:
            return await self.read(lambda session: self._markets(session).categories())

        return await self.cache.listing("categories", render)

    async def trending(self, limit: int) -> Response:
        async def render() -> Page[MarketOut]:
            return await self.read(lambda session: self._markets(session).trending(limit))

        return await self.cache.listing(f"trending|{limit}", render)

    async def related(self, market_id: str, limit: int) -> Response:
        async def render() -> Page[MarketOut]:
            return await self.read(lambda session: self._markets(session).related(market_id, limit))

        return await self.cache.listing(f"related|{market_id}|{limit}", render)

    async def detail(self, market_id: str) -> Response:
        """The market named by its id or by its account's address (looked up, then served
        exactly as under its id)."""
        if looks_like_address(market_id):
            market_id = await self.read(lambda session: self._markets(session).resolve(market_id))

        async def render() -> MarketDetailOut:
            return await self.read(lambda session: self._markets(session).get_market(market_id))

        return await self.cache.detail(market_id, render)
