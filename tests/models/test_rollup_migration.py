"""Migration 0006 fills the rollups from the history already stored (PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from marketd.chain.addresses import new_market_id
from marketd.core.migrate import upgrade

MARKET = new_market_id()


async def test_0006_fills_the_rollups_from_stored_trades_and_positions(postgres_url):
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = "marketd_scratch_" + uuid.uuid4().hex[:10]
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = create_async_engine(postgres_url.rsplit("/", 1)[0] + "/" + name)
    try:
        await upgrade(scratch, "0005")
        async with scratch.begin() as connection:
            for user in ("c", "w1", "w2", "w3"):
                await connection.execute(
                    text("INSERT INTO users (wallet, created_at) VALUES (:w, now())"), {"w": user}
                )
            await connection.execute(
                text(
                    "INSERT INTO markets (id, on_chain_address, question, creator_wallet, state,"
                    " b_parameter, initial_liquidity, current_liquidity, shares_yes, shares_no,"
                    " current_price_yes, current_price_no, total_volume, proposal_likes,"
                    " proposal_dislikes, dispute_agree, dispute_disagree, is_cancelled,"
                    " created_at, updated_at, tags, category) VALUES (:id, 'addr',"
                    " 'Will the rollups be filled?', 'c', 'ACTIVE',"
                    " 1, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, false, now(), now(), '{}', 'other')"
                ),
                {"id": MARKET},
            )
            for wallet, count in (("w1", 2), ("w2", 1), ("w3", 0)):
                await connection.execute(
                    text(
                        "INSERT INTO positions (market_id, user_wallet, market_pubkey,"
                        " user_pubkey, shares_yes, shares_no, total_invested, trades_count,"
                        " realized_pnl, updated_at) VALUES (:id, :wallet, 'addr', :wallet, 0,"
                        " 0, 0, :count, 0, now())"
                    ),
                    {"id": MARKET, "wallet": wallet, "count": count},
                )
            for signature, at, cost, price in (
                ("s1", "2026-12-01T10:05:00Z", 10, "0.6"),
                ("s2", "2026-12-01T10:50:00Z", 20, "0.55"),
                ("s3", "2026-12-01T12:00:00Z", 5, "0.7"),
            ):
                await connection.execute(
                    text(
                        "INSERT INTO trades (id, market_id, user_wallet, market_pubkey,"
                        " trader_pubkey, trade_type, outcome, shares, cost, price_after,"
                        " tx_signature, block_time) VALUES (:tid, :id, 'w1', 'addr', 'w1',"
                        " 'buy', true, 1, :cost, :price, :sig, :at)"
                    ),
                    {
                        "tid": uuid.uuid4(),
                        "id": MARKET,
                        "cost": cost,
                        "price": Decimal(price),
                        "sig": signature,
                        "at": datetime.fromisoformat(at),
                    },
                )
        await upgrade(scratch)
        async with scratch.connect() as connection:
            stats = (await connection.execute(text("SELECT * FROM market_stats"))).all()
            hours = (
                await connection.execute(
                    text(
                        "SELECT extract(hour from hour at time zone 'UTC'), volume, trades,"
                        " close_price, high_price, low_price FROM market_trade_hours ORDER BY hour"
                    )
                )
            ).all()
        assert [tuple(row) for row in stats] == [(MARKET, 3, 2)]
        assert [(int(h), *rest) for h, *rest in hours] == [
            (10, 30, 2, Decimal("0.550000000"), Decimal("0.600000000"), Decimal("0.550000000")),
            (12, 5, 1, Decimal("0.700000000"), Decimal("0.700000000"), Decimal("0.700000000")),
        ]
    finally:
        await scratch.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()
