"""The rollups (`market_stats`, `market_trade_hours`) equal a full recomputation from the trades
after batches, replays and a fork rollback, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select

from marketd.chain.addresses import new_market_id
from marketd.core.container import Container
from marketd.indexer.rollups import fold_hours
from marketd.indexer.store import rebuild_markets
from marketd.markets import rules
from marketd.models import IndexedEventRow, MarketStats, MarketTradeHour, Trade

from ..helpers.indexer import FEES, PROGRAM_ID, T0, Tape, index
from .test_store_writes import created


def trade(
    tape: Tape, market_id: str, user: str, amount: int, price: int, *, sell: bool = False
) -> tuple[str, dict[str, Any]]:
    data = {
        "market_id": tape.mid(market_id),
        "user": user,
        "outcome": True,
        "shares": amount * 2,
        ("proceeds" if sell else "cost"): amount,
        "new_price_yes": price,
    }
    return ("SharesSold" if sell else "SharesBought", data)


async def stored(container: Container) -> dict[str, Any]:
    async with container.database.session() as session:
        stats = {
            row.market_id: (row.trades_count, row.traders_count)
            for row in (await session.scalars(select(MarketStats))).all()
        }
        hours = sorted(
            (
                row.market_id,
                row.hour,
                row.volume,
                row.trades,
                row.close_price,
                row.high_price,
                row.low_price,
            )
            for row in (await session.scalars(select(MarketTradeHour))).all()
        )
    return {"stats": stats, "hours": hours}


async def recomputed(container: Container) -> dict[str, Any]:
    """What the rollups must hold, from the trades alone."""
    async with container.database.session() as session:
        trades = (
            await session.scalars(select(Trade).order_by(Trade.block_time, Trade.tx_signature))
        ).all()
    stats: dict[str, tuple[int, int]] = {}
    hours: list[Any] = []
    for market_id in sorted({t.market_id for t in trades}):
        mine = [t for t in trades if t.market_id == market_id]
        stats[market_id] = (len(mine), len({t.user_wallet for t in mine}))
        folded = fold_hours((t.block_time, t.cost, t.price_after) for t in mine)
        hours += [
            (market_id, h, v.volume, v.trades, v.close_price, v.high_price, v.low_price)
            for h, v in folded.items()
        ]
    return {"stats": stats, "hours": sorted(hours)}


async def test_rollups_equal_a_recomputation_after_replays_and_a_fork_rollback(api, tape):
    creator, alice, bob, carol = (str(tape.wallet()) for _ in range(4))
    other = new_market_id()
    slots = iter(range(100, 100_000, 1_700))  # trades ~28 minutes apart: several hours
    history = [
        tape.tx(created(tape, tape.market_id, creator, state=2), slot=next(slots)),
        tape.tx(created(tape, other, creator, state=2), slot=next(slots)),
        tape.tx(trade(tape, tape.market_id, alice, 100, 600_000_000), slot=next(slots)),
        tape.tx(trade(tape, tape.market_id, bob, 50, 550_000_000), slot=next(slots)),
        tape.tx(  # one transaction trading in both markets
            trade(tape, tape.market_id, alice, 30, 560_000_000),
            trade(tape, other, carol, 70, 700_000_000),
            slot=next(slots),
        ),
        tape.tx(trade(tape, tape.market_id, alice, 40, 520_000_000, sell=True), slot=next(slots)),
        tape.tx(trade(tape, other, bob, 10, 710_000_000), slot=next(slots)),
    ]
    late = [
        tape.tx(trade(tape, tape.market_id, carol, 80, 650_000_000), slot=next(slots)),
        tape.tx(trade(tape, other, alice, 20, 720_000_000), slot=next(slots)),
    ]
    for start in range(0, len(history), 3):  # batches as the indexer would take them
        await index(api.container, history[start : start + 3])
    await index(api.container, late)
    first = await stored(api.container)
    assert first == await recomputed(api.container)
    assert first["stats"] == {tape.market_id: (5, 3), other: (3, 3)}
    assert len({hour for _m, hour, *_ in first["hours"]}) > 2  # it did span hours

    # Replays (all of it, twice, and an overlapping range) change nothing.
    await index(api.container, [*history, *late])
    await index(api.container, [*history, *late])
    await index(api.container, history[4:])
    assert await stored(api.container) == first

    # A fork drops the late transactions: both markets are rebuilt from the kept events.
    async with api.container.database.session() as session, session.begin():
        dropped = [tx.signature for tx in late]
        await session.execute(delete(IndexedEventRow).where(IndexedEventRow.signature.in_(dropped)))
        await rebuild_markets(session, [tape.market_id, other], PROGRAM_ID, FEES)
    rolled_back = await stored(api.container)
    assert rolled_back == await recomputed(api.container)
    assert rolled_back["stats"] == {tape.market_id: (4, 2), other: (2, 2)}
    assert rolled_back != first

    # The dropped transactions come back on the new fork: as if never dropped.
    await index(api.container, late)
    assert await stored(api.container) == first


def test_hours_fold_volume_count_and_the_last_price():
    at = datetime.fromtimestamp(T0, UTC).replace(minute=0, second=0)
    folded = fold_hours(
        [
            (at + timedelta(minutes=5), 10, Decimal("0.6")),
            (at + timedelta(minutes=59), 5, Decimal("0.55")),
            (at + timedelta(minutes=60), 7, Decimal("0.7")),
        ]
    )
    assert [
        (h - at, v.volume, v.trades, v.close_price, v.high_price, v.low_price)
        for h, v in folded.items()
    ] == [
        (timedelta(0), 15, 2, Decimal("0.55"), Decimal("0.6"), Decimal("0.55")),
        (timedelta(hours=1), 7, 1, Decimal("0.7"), Decimal("0.7"), Decimal("0.7")),
    ]


def test_the_window_is_the_current_hour_and_the_23_before():
    now = datetime(2026, 12, 6, 17, 42, 30, tzinfo=UTC)
    assert rules.window_start(now) == datetime(2026, 12, 5, 18, tzinfo=UTC)
    assert rules.seconds_to_next_hour(now) == 17 * 60 + 30 + 1
    assert rules.seconds_to_next_hour(datetime(2026, 12, 6, 17, 59, 59, 999999, tzinfo=UTC)) == 1
    assert rules.price_change(Decimal("0.65"), Decimal("0.6")) == Decimal("0.05")
    assert rules.price_change(Decimal("0.4"), None) == Decimal("-0.1")
