"""Migrations and column types: the schema DESIGN.md fixes, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from marketd.core.migrate import alembic_config, upgrade
from marketd.migrations.supabase_schema import platform_tables
from marketd.models.base import Price, UTCDateTime

PLATFORM_COLUMNS = {
    "users": {"wallet", "created_at", "last_seen_at"},
    "markets": {
        "id",
        "on_chain_address",
        "question",
        "description",
        "category",
        "tags",
        "creator_wallet",
        "resolver_wallet",
        "state",
        "b_parameter",
        "initial_liquidity",
        "current_liquidity",
        "shares_yes",
        "shares_no",
        "current_price_yes",
        "current_price_no",
        "total_volume",
        "proposed_outcome",
        "final_outcome",
        "ipfs_evidence_hash",
        "proposal_likes",
        "proposal_dislikes",
        "dispute_agree",
        "dispute_disagree",
        "created_at",
        "approved_at",
        "activated_at",
        "resolution_proposed_at",
        "finalized_at",
        "is_cancelled",
        "updated_at",
    },
    "positions": {
        "market_id",
        "user_wallet",
        "shares_yes",
        "shares_no",
        "total_invested",
        "trades_count",
        "realized_pnl",
    },
    "proposal_votes": {"market_id", "user_wallet", "vote", "voted_at", "tx_signature"},
    "dispute_votes": {"market_id", "user_wallet", "vote", "voted_at", "tx_signature"},
    "discussions": {"id", "market_id", "user_wallet", "content", "created_at", "deleted_at"},
    "ipfs_anchors": {"id", "market_id", "ipfs_hash", "discussions_count", "created_at"},
    "trades": {
        "id",
        "market_id",
        "user_wallet",
        "trade_type",
        "outcome",
        "shares",
        "cost",
        "price_after",
        "tx_signature",
        "block_time",
    },
}


async def test_migrations_create_the_platform_schema_and_round_trip(postgres_url):
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {
                    table: {c["name"] for c in inspect(sync).get_columns(table)}
                    for table in PLATFORM_COLUMNS
                }
            )
            kinds = await connection.execute(
                text(
                    "SELECT column_name, data_type, numeric_precision, numeric_scale FROM"
                    " information_schema.columns WHERE table_name = 'markets' AND column_name IN"
                    " ('current_price_yes', 'tags', 'created_at')"
                )
            )
            types = {row[0]: row[1:] for row in kinds}
        for table, expected in PLATFORM_COLUMNS.items():
            assert expected <= columns[table], (table, expected - columns[table])
        assert types["current_price_yes"] == ("numeric", 18, 9)
        assert types["tags"][0] == "ARRAY"
        assert types["created_at"][0] == "timestamp with time zone"
        async with engine.connect() as connection:
            search = await connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_markets_question_trgm'")
            )
        # The `?q=` search (ILIKE '%text%') is served by a trigram index, not a table scan.
        assert "USING gin (question gin_trgm_ops)" in search

    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_upgrade_again(postgres_url):
    admin = create_async_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = "marketd_scratch_" + uuid.uuid4().hex[:10]
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    scratch = create_async_engine(postgres_url.rsplit("/", 1)[0] + "/" + name)
    try:
        await upgrade(scratch)
        async with scratch.begin() as connection:
            await connection.run_sync(_downgrade_to_base)
            remaining = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        # marketd's tables go; the platform's stay (they hold the platform's rows).
        assert sorted(remaining) == sorted(["alembic_version", *platform_tables()])
        await upgrade(scratch)  # adopts them
        async with scratch.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(PLATFORM_COLUMNS) <= set(tables)
    finally:
        await scratch.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


def _downgrade_to_base(connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


def test_alembic_needs_the_connection_marketd_provides():
    with pytest.raises(RuntimeError, match="marketd migrate"):
        command.upgrade(alembic_config("sqlite:///unused.db"), "head")


def test_column_types_keep_utc_and_exact_prices():
    moment = UTCDateTime()
    pg, lite = postgresql.dialect(), sqlite.dialect()
    aware = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert moment.process_bind_param(None, pg) is None
    assert moment.process_result_value(None, lite) is None
    assert moment.process_result_value(aware.replace(tzinfo=None), lite) == aware
    with pytest.raises(ValueError, match="naive"):
        moment.process_bind_param(datetime(2026, 1, 1), pg)

    price = Price()
    assert price.process_bind_param(None, pg) is None
    assert price.process_result_value(None, pg) is None
    assert price.process_bind_param(Decimal("0.1234567891"), lite) == "0.123456789"
    assert price.process_bind_param(Decimal("0.5"), pg) == Decimal("0.500000000")
    assert price.process_result_value("0.25", lite) == Decimal("0.250000000")
