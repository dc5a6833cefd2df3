"""Queries over markets, their schedules and their price history."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Float,
    Numeric,
    RowMapping,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from marketd.core.database import dialect_of
from marketd.markets.rules import HourGroup, PricePoint, window_start
from marketd.markets.schemas import CARD_COLUMNS, LIVE_COLUMNS, MarketSort
from marketd.models import (
    DisputeVote,
    Market,
    MarketSchedule,
    MarketStats,
    MarketTradeHour,
    ProposalVote,
    Trade,
)
from marketd.models.base import Price, UTCDateTime
from marketd.shared.market_state import VOTING_STATES, MarketState

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
"""The live tallies of a market's off-chain votes: four counts over the vote tables'
(market_id, user_wallet) index, in the same statement as the market."""

_STATS = cast(Table, MarketStats.__table__)
_HOURS = cast(Table, MarketTradeHour.__table__)
_SINCE = bindparam("since", type_=UTCDateTime())
"""The first hour of the 24-hour window (`rules.window_start`), given with every card read."""
_CARD_VALUES = (
    select(func.coalesce(func.sum(_HOURS.c.volume), 0))
    .where(_HOURS.c.market_id == _MARKETS.c.id, _HOURS.c.hour >= _SINCE)
    .scalar_subquery(),
    select(_HOURS.c.close_price)
    .where(_HOURS.c.market_id == _MARKETS.c.id, _HOURS.c.hour < _SINCE)
    .order_by(_HOURS.c.hour.desc())
    .limit(1)
    .scalar_subquery(),
    func.coalesce(_STATS.c.trades_count, 0),
    func.coalesce(_STATS.c.traders_count, 0),
)
"""What a card shows beside the market's columns, in the order of CARD_COLUMNS: the 24-hour
volume (at most 24 hour rows over their primary key), the YES price when the window opened
(the close of the last hour before it), trades and traders (one row of market_stats)."""
_CARDS = _WITH_SCHEDULE.outerjoin(_STATS, _STATS.c.market_id == _MARKETS.c.id).add_columns(
    *(value.label(name) for value, name in zip(_CARD_VALUES, CARD_COLUMNS, strict=True))
)
_VOTING = _MARKETS.c.state.in_([state.value for state in VOTING_STATES])
_LISTED = _CARDS.add_columns(
    *(
        case((_VOTING, _live_count(votes, name, yes_only=yes_only)), else_=literal(None)).label(
            name
        )
        for (votes, yes_only), name in zip(_LIVE_COUNTS, LIVE_COLUMNS, strict=True)
    )
)
"""A listed market: its card, and the live tallies only while voting is open (PostgreSQL runs
the counts of the other markets' rows not at all)."""
_DETAILED = _CARDS.add_columns(
    *(
        _live_count(votes, name, yes_only=yes_only)
        for (votes, yes_only), name in zip(_LIVE_COUNTS, LIVE_COLUMNS, strict=True)
    )
)
_DETAIL_BY_ID = _DETAILED.where(_MARKETS.c.id == bindparam("market_id"))
_EXISTS = select(_MARKETS.c.id).where(_MARKETS.c.id == bindparam("market_id"))
_STATE = select(_MARKETS.c.state).where(_MARKETS.c.id == bindparam("market_id"))


def _bucket_prices(
    epoch_of: Callable[[Any], Any], number: Callable[[Any], Any], price: TypeEngine[Decimal]
) -> Any:
    """`rules.group_hours` of a market's hours in [:start, :end), in SQL: each hour's bucket is
    (its Unix time - :origin) // :step (both whole seconds, the hour at or after the origin, so
    the integer division is the floor), `epoch_of` the dialect's Unix time of a stored hour,
    `number` its numeric form of a stored price (what MAX and MIN compare) and `price` the
    type the prices are read as.

    Every aggregate is over a non-empty group of NOT NULL columns, and the close is the one hour
    ranked first (the latest: (market_id, hour) is the key, no ties), so no value is NULL."""
    h = _HOURS.c
    # `//`: SQLAlchemy 2's `/` is true division (a fraction: a bucket of its own per hour).
    bucket = (epoch_of(h.hour) - bindparam("origin", type_=BigInteger())) // bindparam(
        "step", type_=BigInteger()
    )
    latest = func.row_number().over(partition_by=bucket, order_by=h.hour.desc())
    hours = (
        select(
            bucket.label("bucket"),
            h.volume,
            h.trades,
            h.close_price,
            number(h.high_price).label("high"),
            number(h.low_price).label("low"),
            latest.label("latest"),
        )
        .where(
            h.market_id == bindparam("market_id"),
            h.hour >= bindparam("start", type_=UTCDateTime()),
            h.hour < bindparam("end", type_=UTCDateTime()),
        )
        .subquery()
    )
    return (
        select(
            hours.c.bucket,
            sql_cast(func.sum(hours.c.volume), BigInteger()),
            sql_cast(func.sum(hours.c.trades), BigInteger()),
            type_coerce(func.max(case((hours.c.latest == 1, hours.c.close_price))), price),
            type_coerce(func.max(hours.c.high), price),
            type_coerce(func.min(hours.c.low), price),
        )
        .group_by(hours.c.bucket)
        .order_by(hours.c.bucket)
    )


_BUCKETS = {
    # timestamptz: its epoch is exact (numeric) for whole seconds; prices are numeric(18, 9),
    # which asyncpg reads as Decimals of 9 places already (no `Price` processing per value).
    "postgresql": _bucket_prices(
        lambda hour: sql_cast(func.extract("epoch", hour), BigInteger()),
        lambda price: price,
        Numeric(18, 9, asdecimal=True),
    ),
    # SQLite keeps the hour as SQLAlchemy's text ('2026-01-01 05:00:00.000000', UTC), which
    # strftime('%s') reads exactly (julianday's REAL is off by one second for a third of
    # hours); prices are text ('0.500000000', but '1.00E-7' below a millionth): MAX over the
    # text would compare characters, so MAX and MIN compare them as REAL (exact to 9 places).
    "sqlite": _bucket_prices(
        lambda hour: sql_cast(func.strftime("%s", hour), BigInteger()),
        lambda price: sql_cast(price, Float()),
        Price(),
    ),
}
"""Built once per dialect: an hourly or longer chart reads one row per bucket."""


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

    async def detail(self, market_id: str, now: datetime) -> RowMapping | None:
        """The market's columns, `closes_at`, its card (`CARD_COLUMNS`) and the live tallies
        (`LIVE_COLUMNS`)."""
        params = {"market_id": market_id, "since": window_start(now)}
        return (await self.session.execute(_DETAIL_BY_ID, params)).mappings().first()

    async def details(self, market_ids: Sequence[str], now: datetime) -> Sequence[RowMapping]:
        """`detail` of several markets at once."""
        query = _DETAILED.where(_MARKETS.c.id.in_(market_ids))
        params = {"since": window_start(now)}
        return (await self.session.execute(query, params)).mappings().all()

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
        """A page of markets: their columns, `closes_at`, cards and live tallies (`_LISTED`)."""
        markets, closes_at = _MARKETS.c, _SCHEDULES.c.closes_at
        query = _LISTED
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
        params = {"since": window_start(now)}
        return (await self.session.execute(query.limit(limit), params)).mappings().all()

    async def cards(self, market_ids: Collection[str], now: datetime) -> Sequence[RowMapping]:
        """The listed form (`page`) of the markets with these ids, in no order."""
        if not market_ids:
            return []
        query = _LISTED.where(_MARKETS.c.id.in_(list(market_ids)))
        return (await self.session.execute(query, {"since": window_start(now)})).mappings().all()

    async def category_counts(self) -> list[tuple[str | None, str, int]]:
        """(category, state, markets) of every category and state that has markets."""
        markets = _MARKETS.c
        rows = await self.session.execute(
            select(markets.category, markets.state, func.count()).group_by(
                markets.category, markets.state
            )
        )
        return [(category, str(state), int(count)) for category, state, count in rows.all()]

    async def trending_candidates(self, now: datetime) -> list[tuple[str, Decimal, int, Any]]:
        """(id, YES price, 24-hour volume, YES price when the window opened) of every ACTIVE
        market that traded in the window: the hours of the window over their hour index."""
        since = window_start(now)
        window = (
            select(_HOURS.c.market_id, func.sum(_HOURS.c.volume).label("volume"))
            .where(_HOURS.c.hour >= since)
            .group_by(_HOURS.c.market_id)
            .subquery()
        )
        opening = (
            select(_HOURS.c.close_price)
            .where(_HOURS.c.market_id == _MARKETS.c.id, _HOURS.c.hour < since)
            .order_by(_HOURS.c.hour.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = await self.session.execute(
            select(_MARKETS.c.id, _MARKETS.c.current_price_yes, window.c.volume, opening)
            .join(window, window.c.market_id == _MARKETS.c.id)
            .where(_MARKETS.c.state == MarketState.ACTIVE.value)
        )
        return [(market_id, price, int(volume), start) for market_id, price, volume, start in rows]

    async def most_traded_active(
        self, exclude: Collection[str], limit: int, now: datetime
    ) -> Sequence[RowMapping]:
        """ACTIVE markets not in `exclude`, by all-time volume (to fill the trending list)."""
        markets = _MARKETS.c
        query = _LISTED.where(markets.state == MarketState.ACTIVE.value)
        if exclude:
            query = query.where(markets.id.not_in(list(exclude)))
        query = query.order_by(markets.total_volume.desc(), markets.id.desc()).limit(limit)
        return (await self.session.execute(query, {"since": window_start(now)})).mappings().all()

    async def related_candidates(
        self, market_id: str, category: str | None, tags: Sequence[str], limit: int
    ) -> list[tuple[str, str, str | None, list[str], int]]:
        """(id, state, category, tags, total_volume) of up to `limit` other markets of the same
        category or sharing a tag, active and same-category ones first, then by volume."""
        markets = _MARKETS.c
        alike = []
        if category is not None:
            alike.append(markets.category == category)
        if tags:
            if dialect_of(self.session) == "postgresql":  # text[]: its overlap operator
                as_array = type_coerce(markets.tags, postgresql.ARRAY(Text()))
                alike.append(as_array.overlap(list(tags)))
            else:  # a JSON array of strings: each tag as it is written in it
                alike += [
                    markets.tags.cast(String).like(
                        "%" + _escape_like(json.dumps(tag)) + "%", escape="\\"
                    )
                    for tag in tags
                ]
        if not alike:
            return []
        active = case((markets.state == MarketState.ACTIVE.value, 0), else_=1)
        same = case((markets.category == category, 0), else_=1) if category else literal(1)
        rows = await self.session.execute(
            select(markets.id, markets.state, markets.category, markets.tags, markets.total_volume)
            .where(markets.id != market_id, or_(*alike))
            .order_by(active, same, markets.total_volume.desc(), markets.id)
            .limit(limit)
        )
        return [
            (other, str(state), other_category, list(other_tags or []), int(volume))
            for other, state, other_category, other_tags, volume in rows.all()
        ]

    async def price_points(
        self, market_id: str, start: datetime, end: datetime
    ) -> list[PricePoint]:
        rows = await self.session.execute(
            select(Trade.block_time, Trade.price_after, Trade.cost)
            .where(Trade.market_id == market_id, Trade.block_time >= start, Trade.block_time < end)
            .order_by(Trade.block_time, Trade.id)
        )
        return [PricePoint(at, price, cost) for at, price, cost in rows]

    async def bucket_prices(
        self, market_id: str, start: datetime, end: datetime, interval: timedelta
    ) -> list[HourGroup]:
        """The market's hour rollups in [start, end) grouped into the buckets of `interval`
        counted from `start` (`rules.group_hours`, in SQL): one row per bucket that has hours,
        whatever the number of hours."""
        params = {
            "market_id": market_id,
            "start": start,
            "end": end,
            "origin": int(start.timestamp()),
            "step": int(interval.total_seconds()),
        }
        rows = await self.session.execute(_BUCKETS[dialect_of(self.session)], params)
        return [HourGroup(*row) for row in rows.all()]

    async def hour_close_before(self, market_id: str, moment: datetime) -> Any:
        """The YES price after the last trade before `moment` (on an hour), from the rollups."""
        h = _HOURS.c
        return await self.session.scalar(
            select(h.close_price)
            .where(h.market_id == market_id, h.hour < moment)
            .order_by(h.hour.desc())
            .limit(1)
        )

    async def price_before(self, market_id: str, moment: datetime) -> Any:
        return await self.session.scalar(
            select(Trade.price_after)
            .where(Trade.market_id == market_id, Trade.block_time < moment)
            .order_by(Trade.block_time.desc(), Trade.id.desc())
            .limit(1)
        )
