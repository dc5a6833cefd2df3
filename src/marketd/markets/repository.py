"""Queries over markets, their schedules and their price history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import RowMapping, Table, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.markets.rules import MarketState, PricePoint
from marketd.markets.schemas import LIVE_COLUMNS, MarketSort
from marketd.models import DisputeVote, Market, MarketSchedule, ProposalVote, Trade

_MARKETS = cast(Table, Market.__table__)
_SCHEDULES = cast(Table, MarketSchedule.__table__)
_WITH_SCHEDULE = select(_MARKETS, _SCHEDULES.c.closes_at).select_from(
    _MARKETS.outerjoin(_SCHEDULES, _SCHEDULES.c.market_id == _MARKETS.c.id)
)
"""Reads go through the tables, not the mapped classes: they are the hot paths, and the ORM's
per-statement and per-row work costs more than the queries.

Statements of a fixed shape are built once, with bind parameters: building a select and
computing its cache key took ~110 of the ~270 µs of client CPU a one-row read costs, and a
prebuilt statement keeps its cache key."""
_BY_ID = _WITH_SCHEDULE.where(_MARKETS.c.id == bindparam("market_id"))


def _live_count(votes: Table, name: str, *, yes_only: bool) -> Any:
    count = select(func.count()).where(
        votes.c.market_id == _MARKETS.c.id,
        # The votes that count, as /votes counts them (marketd.votes.repository.counted):
        # on-chain ones and off-chain ones with an eligibility record.
        or_(votes.c.tx_signature.is_not(None), votes.c.eligibility.is_not(None)),
    )
    if yes_only:
        count = count.where(votes.c.vote.is_(True))
    return count.scalar_subquery().label(name)


_PROPOSAL_VOTES = cast(Table, ProposalVote.__table__)
_DISPUTE_VOTES = cast(Table, DisputeVote.__table__)
_LIVE_COUNTS = [
    (_PROPOSAL_VOTES, True),
    (_PROPOSAL_VOTES, False),
    (_DISPUTE_VOTES, True),
    (_DISPUTE_VOTES, False),
]  # in the order of LIVE_COLUMNS: yes votes, then all votes, of each kind
_WITH_LIVE_VOTES = _WITH_SCHEDULE.add_columns(
    *(
        _live_count(votes, name, yes_only=yes_only)
        for (votes, yes_only), name in zip(_LIVE_COUNTS, LIVE_COLUMNS, strict=True)
    )
)
"""A market with the live tallies of its off-chain votes (the detail): four counts over the
vote tables' (market_id, user_wallet) index, in the same statement as the market."""
_DETAIL_BY_ID = _WITH_LIVE_VOTES.where(_MARKETS.c.id == bindparam("market_id"))
_EXISTS = select(_MARKETS.c.id).where(_MARKETS.c.id == bindparam("market_id"))
_STATE = select(_MARKETS.c.state).where(_MARKETS.c.id == bindparam("market_id"))


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

    async def get(self, market_id: str) -> RowMapping | None:
        """The market's columns and its closing time (`closes_at`)."""
        return (await self.session.execute(_BY_ID, {"market_id": market_id})).mappings().first()

    async def detail(self, market_id: str) -> RowMapping | None:
        """The market's columns, `closes_at` and the live tallies (`LIVE_COLUMNS`)."""
        params = {"market_id": market_id}
        return (await self.session.execute(_DETAIL_BY_ID, params)).mappings().first()

    async def details(self, market_ids: Sequence[str]) -> Sequence[RowMapping]:
        """`detail` of several markets at once."""
        query = _WITH_LIVE_VOTES.where(_MARKETS.c.id.in_(market_ids))
        return (await self.session.execute(query)).mappings().all()

    async def exists(self, market_id: str) -> bool:
        return await self.session.scalar(_EXISTS, {"market_id": market_id}) is not None

    async def id_by_address(self, address: str) -> str | None:
        """The id of the market whose account is at `address` (its address is unique)."""
        found = await self.session.scalar(
            select(Market.id).where(Market.on_chain_address == address)
        )
        return None if found is None else str(found)

    async def state(self, market_id: str) -> str | None:
        """The market's state (None: no such market)."""
        state = await self.session.scalar(_STATE, {"market_id": market_id})
        return None if state is None else str(state)

    async def state_for_share(self, market_id: str) -> str | None:
        """The market's state, the row share-locked on PostgreSQL so the state cannot change
        under a vote (None: no such market)."""
        markets = _MARKETS.c
        query = select(markets.state).where(markets.id == market_id).with_for_update(read=True)
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
    ) -> Sequence[RowMapping]:
        """A page of markets (their columns and `closes_at`)."""
        markets, closes_at = _MARKETS.c, _SCHEDULES.c.closes_at
        query = _WITH_SCHEDULE
        if filters.state is not None:
            query = query.where(markets.state == filters.state.value)
        if filters.category is not None:
            query = query.where(markets.category == filters.category)
        if filters.text:
            pattern = "%" + _escape_like(filters.text) + "%"
            query = query.where(markets.question.ilike(pattern, escape="\\"))
        if sort is MarketSort.NEWEST:
            if after is not None:
                query = query.where(
                    or_(
                        markets.created_at < after[0],
                        and_(markets.created_at == after[0], markets.id < after[1]),
                    )
                )
            query = query.order_by(markets.created_at.desc(), markets.id.desc())
        elif sort is MarketSort.VOLUME:
            if after is not None:
                query = query.where(
                    or_(
                        markets.total_volume < after[0],
                        and_(markets.total_volume == after[0], markets.id < after[1]),
                    )
                )
            query = query.order_by(markets.total_volume.desc(), markets.id.desc())
        else:
            query = query.where(closes_at > now)
            if after is not None:
                query = query.where(
                    or_(
                        closes_at > after[0],
                        and_(closes_at == after[0], markets.id > after[1]),
                    )
                )
            query = query.order_by(closes_at.asc(), markets.id.asc())
        return (await self.session.execute(query.limit(limit))).mappings().all()

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
