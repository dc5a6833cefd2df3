"""The per-market rollups a listing reads instead of the trades (`market_stats`,
`market_trade_hours`), kept in the indexer's transaction.

Every write recomputes what it covers from the rows it derives from, never adds to a stored
total: the counters of a market from its positions (one grouped read over the market's
positions), the hours a batch traded in from the trades of those hours. So a replay (which
applies nothing) leaves them as they are, a fork rollback (which rebuilds a market's trades and
positions, `store.rebuild_markets`) recomputes them whole, and they always equal a full
recomputation from the trades.

An hour keeps the highest and lowest YES price after its trades and the close, the price after
its last trade in (block time, signature)
order: trades of one block second have no stored chain order, the signature makes the choice
the same on every recomputation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.indexer.bulk import member_of
from marketd.markets.rules import HOUR, OPENING_PRICE, hour_of
from marketd.models import MarketStats, MarketTradeHour, Position, Trade

STATS = cast(Table, MarketStats.__table__)
HOURS = cast(Table, MarketTradeHour.__table__)
POSITIONS = cast(Table, Position.__table__)
TRADES = cast(Table, Trade.__table__)


@dataclass
class HourTotals:
    volume: int = 0
    trades: int = 0
    close_price: Decimal = OPENING_PRICE
    high_price: Decimal = OPENING_PRICE
    low_price: Decimal = OPENING_PRICE


def fold_hours(trades: Iterable[tuple[datetime, int, Decimal]]) -> dict[datetime, HourTotals]:
    """Hour buckets of (block_time, amount, price_after) given in trade order (pure)."""
    hours: dict[datetime, HourTotals] = {}
    for at, amount, price in trades:
        price = Decimal(price)
        totals = hours.get(hour_of(at))
        if totals is None:
            totals = hours[hour_of(at)] = HourTotals(high_price=price, low_price=price)
        totals.volume += int(amount)
        totals.trades += 1
        totals.close_price = price
        totals.high_price = max(totals.high_price, price)
        totals.low_price = min(totals.low_price, price)
    return hours


def hour_values(market_id: str, hours: dict[datetime, HourTotals]) -> list[dict[str, object]]:
    """`market_trade_hours` rows of folded hours."""
    return [
        {
            "market_id": market_id,
            "hour": hour,
            "volume": totals.volume,
            "trades": totals.trades,
            "close_price": totals.close_price,
            "high_price": totals.high_price,
            "low_price": totals.low_price,
        }
        for hour, totals in sorted(hours.items())
    ]


def _trades_query(market_id: str, start: datetime | None, end: datetime | None) -> Any:
    query = select(TRADES.c.block_time, TRADES.c.cost, TRADES.c.price_after).where(
        TRADES.c.market_id == market_id
    )
    if start is not None and end is not None:
        query = query.where(TRADES.c.block_time >= start, TRADES.c.block_time < end)
    return query.order_by(TRADES.c.block_time, TRADES.c.tx_signature)


async def recompute_hours(
    session: AsyncSession,
    market_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> None:
    """Rewrite the market's hours in [start, end) (both hour-aligned; None: all of them)."""
    removal = delete(HOURS).where(HOURS.c.market_id == market_id)
    if start is not None and end is not None:
        removal = removal.where(HOURS.c.hour >= start, HOURS.c.hour < end)
    await session.execute(removal)
    rows = (await session.execute(_trades_query(market_id, start, end))).all()
    hours = fold_hours((at, amount, price) for at, amount, price in rows)
    if hours:
        await session.execute(insert(HOURS), hour_values(market_id, hours))


async def recompute_stats(session: AsyncSession, market_ids: Collection[str]) -> None:
    """Rewrite the markets' counters from their positions: trades, and wallets that traded."""
    if not market_ids:
        return
    traded = case((POSITIONS.c.trades_count > 0, 1), else_=0)
    rows = await session.execute(
        select(
            POSITIONS.c.market_id,
            func.coalesce(func.sum(POSITIONS.c.trades_count), 0),
            func.coalesce(func.sum(traded), 0),
        )
        .where(member_of(session, POSITIONS.c.market_id, market_ids))
        .group_by(POSITIONS.c.market_id)
    )
    counts = {market_id: (int(trades), int(traders)) for market_id, trades, traders in rows}
    values = [
        {"market_id": market_id, "trades_count": trades, "traders_count": traders}
        for market_id in sorted(market_ids)
        for trades, traders in [counts.get(market_id, (0, 0))]
    ]
    statement = upsert_insert(session)(STATS)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["market_id"],
            set_={
                "trades_count": statement.excluded.trades_count,
                "traders_count": statement.excluded.traders_count,
            },
        ),
        values,
    )


async def after_batch(
    session: AsyncSession, trade_times: Mapping[str, Collection[datetime]]
) -> None:
    """After a batch wrote trades: the counters of the markets it traded in, and the hours
    from its first to its last trade in each (what the batch can have changed)."""
    await recompute_stats(session, trade_times.keys())
    for market_id in sorted(trade_times):
        times = trade_times[market_id]
        await recompute_hours(session, market_id, hour_of(min(times)), hour_of(max(times)) + HOUR)


async def rebuild(session: AsyncSession, market_id: str) -> None:
    """After a market's trades and positions were rebuilt (fork rollback): all of it."""
    await recompute_stats(session, [market_id])
    await recompute_hours(session, market_id)
