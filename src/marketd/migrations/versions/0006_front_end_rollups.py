"""Front-end rollups: trade counters and hourly trade buckets per market

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 17:00:00.000000

`market_stats` (trades and unique traders of a market, all time) and `market_trade_hours`
(volume, trade count, closing, highest and lowest YES price per market and UTC hour) are kept
by the indexer in the transaction that writes the trades (`marketd.indexer.rollups`), so the
listing's 24-hour figures and the hourly and longer price charts read a handful of rows, never
the trades. Both are derived: the upgrade fills them from the trades and positions already
stored. Both are marketd's own tables: on PostgreSQL they are kept from the platform's REST API
as 0004 keeps the others (row-level security, no privileges for the API roles).

Also the activity feed's indexes: trades, vote log and markets by time, and the state-change
events by block time (a partial index).
"""

import itertools
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketd.indexer.rollups import fold_hours, hour_values
from marketd.migrations.supabase_schema import private_table_sql
from marketd.models.base import Price, UTCDateTime
from marketd.models.chain_tables import STATE_CHANGE_EVENTS

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_TABLES = ("market_stats", "market_trade_hours")


def upgrade() -> None:
    op.create_table(
        "market_stats",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("trades_count", sa.BigInteger(), nullable=False),
        sa.Column("traders_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name="fk_market_stats_market_id_markets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("market_id", name="pk_market_stats"),
    )
    op.create_table(
        "market_trade_hours",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("close_price", Price(), nullable=False),
        sa.Column("high_price", Price(), nullable=False),
        sa.Column("low_price", Price(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name="fk_market_trade_hours_market_id_markets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("market_id", "hour", name="pk_market_trade_hours"),
    )
    op.create_index("ix_market_trade_hours_hour", "market_trade_hours", ["hour"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # marketd's own tables: not for the REST API
        for table in NEW_TABLES:
            for statement in private_table_sql(bind, table):
                op.execute(statement)
    # The activity feed: each kind's newest rows by an ordered index scan.
    op.create_index("ix_trades_block_time", "trades", ["block_time"])
    op.create_index("ix_vote_log_recorded_at", "vote_log", ["recorded_at"])
    op.create_index("ix_markets_created_at", "markets", ["created_at"])
    where = sa.text(STATE_CHANGE_EVENTS)
    op.create_index(
        "ix_chain_events_state_changes",
        "chain_events",
        ["block_time"],
        postgresql_where=where,
        sqlite_where=where,
    )
    # Existing history: the counters from the positions, the hours from the trades (folded in
    # Python: hour truncation differs between the two backends).
    op.execute(
        "INSERT INTO market_stats (market_id, trades_count, traders_count) "
        "SELECT market_id, SUM(trades_count), "
        "SUM(CASE WHEN trades_count > 0 THEN 1 ELSE 0 END) FROM positions GROUP BY market_id"
    )

    trades = sa.table(
        "trades",
        sa.column("market_id", sa.String()),
        sa.column("block_time", UTCDateTime()),
        sa.column("cost", sa.BigInteger()),
        sa.column("price_after", Price()),
        sa.column("tx_signature", sa.String()),
    )
    hours = sa.table(
        "market_trade_hours",
        sa.column("market_id", sa.String()),
        sa.column("hour", UTCDateTime()),
        sa.column("volume", sa.BigInteger()),
        sa.column("trades", sa.Integer()),
        sa.column("close_price", Price()),
        sa.column("high_price", Price()),
        sa.column("low_price", Price()),
    )
    rows = bind.execute(
        sa.select(
            trades.c.market_id, trades.c.block_time, trades.c.cost, trades.c.price_after
        ).order_by(trades.c.market_id, trades.c.block_time, trades.c.tx_signature)
    )
    for market_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        folded = fold_hours((at, cost, price) for _m, at, cost, price in group)
        bind.execute(hours.insert(), hour_values(market_id, folded))


def downgrade() -> None:
    op.drop_index("ix_chain_events_state_changes", table_name="chain_events")
    op.drop_index("ix_markets_created_at", table_name="markets")
    op.drop_index("ix_vote_log_recorded_at", table_name="vote_log")
    op.drop_index("ix_trades_block_time", table_name="trades")
    op.drop_table("market_trade_hours")
    op.drop_table("market_stats")
