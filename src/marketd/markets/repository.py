"""Queries over markets, their schedules and their price history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.markets.rules import MarketState, PricePoint
from marketd.markets.schemas import MarketSort
from marketd.models import Market, MarketSchedule, Trade

_MARKETS = cast(Table, Market.__table__)
"""Single-column reads on hot paths go through the table, not the mapped class: the ORM's
per-statement work costs more than the query."""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class MarketFilter:
    state: MarketState | None = None
    category: str | None = None
    text: str | None = None


class MarketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _with_schedule(self) -> Any:
        return select(Market, MarketSchedule.closes_at).outerjoin(
            MarketSchedule, MarketSchedule.market_id == Market.id
        )

    async def get(self, market_id: str) -> tuple[Market, datetime | None] | None:
        """The market and its closing time."""
        query = self._with_schedule().where(Market.id == market_id)
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1])

    async def exists(self, market_id: str) -> bool:
        markets = _MARKETS
        query = select(markets.c.id).where(markets.c.id == market_id)
        return await self.session.scalar(query) is not None

    async def state_for_share(self, market_id: str) -> str | None:
        """The market's state, the row share-locked on PostgreSQL so the state cannot change
        under a vote (None: no such market)."""
        markets = _MARKETS
        query = select(markets.c.state).where(markets.c.id == market_id).with_for_update(read=True)
        state = await self.session.scalar(query)
        return None if state is None else str(state)

    async def add(self, market: Market, closes_at: datetime | None) -> None:
        self.session.add(market)
        await self.session.flush()  # the schedule row references the market
        self.session.add(MarketSchedule(market_id=market.id, closes_at=closes_at))

    async def page(
        self,
        filters: MarketFilter,
        sort: MarketSort,
        limit: int,
        after: Sequence[Any] | None,
        now: datetime,
    ) -> list[tuple[Market, datetime | None]]:
        query = self._with_schedule()
        if filters.state is not None:
            query = query.where(Market.state == filters.state.value)
        if filters.category is not None:
            query = query.where(Market.category == filters.category)
        if filters.text:
            pattern = "%" + _escape_like(filters.text) + "%"
            query = query.where(Market.question.ilike(pattern, escape="\\"))
        if sort is MarketSort.NEWEST:
            if after is not None:
                query = query.where(
                    or_(
                        Market.created_at < after[0],
                        and_(Market.created_at == after[0], Market.id < after[1]),
                    )
                )
            query = query.order_by(Market.created_at.desc(), Market.id.desc())
        elif sort is MarketSort.VOLUME:
            if after is not None:
                query = query.where(
                    or_(
                        Market.total_volume < after[0],
                        and_(Market.total_volume == after[0], Market.id < after[1]),
                    )
                )
            query = query.order_by(Market.total_volume.desc(), Market.id.desc())
        else:
            query = query.where(MarketSchedule.closes_at > now)
            if after is not None:
                query = query.where(
                    or_(
                        MarketSchedule.closes_at > after[0],
                        and_(MarketSchedule.closes_at == after[0], Market.id > after[1]),
                    )
                )
            query = query.order_by(MarketSchedule.closes_at.asc(), Market.id.asc())
        rows = (await self.session.execute(query.limit(limit))).all()
        return [(row[0], row[1]) for row in rows]

    async def price_points(
        self, market_id: str, start: datetime, end: datetime
    ) -> list[PricePoint]:
        rows = await self.session.execute(
            select(Trade.block_time, Trade.price_after, Trade.cost)
            .where(Trade.market_id == market_id, Trade.block_time >= start, Trade.block_time < end)
            .order_by(Trade.block_time, Trade.id)
        )
        return [PricePoint(at, price, cost) for at, price, cost in rows]

    async def price_before(self, market_id: str, moment: datetime) -> Any:
        return await self.session.scalar(
            select(Trade.price_after)
            .where(Trade.market_id == market_id, Trade.block_time < moment)
            .order_by(Trade.block_time.desc(), Trade.id.desc())
            .limit(1)
        )
