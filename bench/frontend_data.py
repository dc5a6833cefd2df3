"""Trades for the front-end routes' benchmarks (issue 21): one chart market with 100,000
trades over 30 days, a long-lived one traded every hour for 340 days (its hour rollups span
the whole range of a long daily chart), and 10 trades in the last day on each of 1,000 other
active markets (the first 50 by the measuring wallet, for its portfolio); then the rollups,
positions and prices as the indexer would leave them (built in SQL: COPY is the only way to
load this many rows in seconds)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg  # type: ignore[import-untyped]

CHART_TRADES = 100_000
LONG_CHART_DAYS = 340
BUSY_MARKETS = 1_000
PER_BUSY_MARKET = 10
PORTFOLIO_MARKETS = 50

_TRADE_COLUMNS = [
    "id",
    "market_id",
    "user_wallet",
    "market_pubkey",
    "trader_pubkey",
    "trade_type",
    "outcome",
    "shares",
    "cost",
    "price_after",
    "tx_signature",
    "block_time",
]


@dataclass(frozen=True)
class Charts:
    """The ids of the chart markets: 100,000 trades over 30 days; a trade an hour for 340 days."""

    busy: str
    long: str


async def seed_trades(url: str, active: Sequence[tuple[str, str]], wallet: str) -> Charts:
    """Load the trades (`active`: (market id, address) of the active markets, `wallet`: the
    measuring client's, which signs in before measuring)."""
    rng = random.Random(21)
    now = datetime.now(UTC)
    traders = [f"bench-trader-{n}" for n in range(500)]
    chart, chart_address = active[0]
    rows = []
    span = timedelta(days=30).total_seconds()
    for k in range(CHART_TRADES):
        at = now - timedelta(seconds=span * (CHART_TRADES - k) / CHART_TRADES)
        price = Decimal(rng.randint(200_000_000, 800_000_000)) / 10**9
        rows.append(
            (
                uuid.uuid4(),
                chart,
                traders[k % len(traders)],
                chart_address,
                traders[k % len(traders)],
                "buy",
                k % 2 == 0,
                10**9,
                10**7,
                price,
                f"chart-{k}",
                at,
            )
        )
    for m, (market_id, address) in enumerate(active[1 : 1 + BUSY_MARKETS]):
        for k in range(PER_BUSY_MARKET):
            who = wallet if m < PORTFOLIO_MARKETS else traders[(m + k) % len(traders)]
            price = Decimal(rng.randint(200_000_000, 800_000_000)) / 10**9
            rows.append(
                (
                    uuid.uuid4(),
                    market_id,
                    who,
                    address,
                    who,
                    "sell" if k % 3 == 2 else "buy",
                    k % 2 == 0,
                    10**9,
                    rng.randint(10**6, 10**9),
                    price,
                    f"busy-{m}-{k}",
                    now - timedelta(minutes=rng.randint(1, 23 * 60)),
                )
            )
    long_chart, long_address = active[1 + BUSY_MARKETS]
    for k in range(LONG_CHART_DAYS * 24):
        price = Decimal(rng.randint(200_000_000, 800_000_000)) / 10**9
        trader = traders[k % len(traders)]
        at = now - timedelta(hours=LONG_CHART_DAYS * 24 - k, minutes=rng.randint(0, 59))
        rows.append(
            (
                uuid.uuid4(),
                long_chart,
                trader,
                long_address,
                trader,
                "buy",
                k % 2 == 0,
                10**9,
                10**7,
                price,
                f"long-{k}",
                at,
            )
        )
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table(  # the platform's trades reference users
            "users",
            records=[(w, now) for w in [*traders, wallet]],
            columns=["wallet", "created_at"],
        )
        await connection.copy_records_to_table("trades", records=rows, columns=_TRADE_COLUMNS)
        await connection.execute(
            """
            INSERT INTO market_trade_hours
                (market_id, hour, volume, trades, close_price, high_price, low_price)
            SELECT market_id, date_trunc('hour', block_time), sum(cost), count(*),
                   (array_agg(price_after ORDER BY block_time DESC, tx_signature DESC))[1],
                   max(price_after), min(price_after)
            FROM trades GROUP BY 1, 2;
            INSERT INTO positions (id, market_id, user_wallet, market_pubkey, user_pubkey,
                                   shares_yes, shares_no, total_invested, trades_count,
                                   realized_pnl, created_at, updated_at)
            SELECT gen_random_uuid(), market_id, user_wallet, min(market_pubkey), user_wallet,
                   sum(CASE WHEN outcome THEN (CASE WHEN trade_type = 'buy' THEN shares
                       ELSE -shares END) ELSE 0 END),
                   sum(CASE WHEN NOT outcome THEN (CASE WHEN trade_type = 'buy' THEN shares
                       ELSE -shares END) ELSE 0 END),
                   sum(CASE WHEN trade_type = 'buy' THEN cost ELSE 0 END), count(*),
                   sum(CASE WHEN trade_type = 'sell' THEN cost ELSE 0 END), now(), now()
            FROM trades GROUP BY market_id, user_wallet;
            INSERT INTO market_stats (market_id, trades_count, traders_count)
            SELECT market_id, sum(trades_count), count(*) FROM positions GROUP BY market_id;
            UPDATE markets SET current_price_yes = last.price, current_price_no = 1 - last.price
            FROM (SELECT DISTINCT ON (market_id) market_id, price_after AS price FROM trades
                  ORDER BY market_id, block_time DESC, tx_signature DESC) AS last
            WHERE markets.id = last.market_id;
            """
        )
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    return Charts(chart, long_chart)
