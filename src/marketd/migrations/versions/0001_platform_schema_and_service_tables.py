"""platform schema (adopted or built) and service tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:19:56.912108

On PostgreSQL the platform's own tables (`supabase_schema.platform_tables`) are adopted when
the database already has them (the platform's Supabase database: every row stays) and otherwise
built exactly as the platform's migrations build them, from their catalog description, so both
paths reach one schema; marketd's additions to them come in 0004, on both paths. Row-level
security policies are built only where Supabase's roles and `auth.jwt()` exist.

SQLite (the embedded single-process default, never shared with the platform) gets the platform
tables marketd uses, in the form they have after 0004.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketd.migrations.supabase_schema import (
    load_description,
    original_schema_sql,
    platform_tables,
    supabase_roles_present,
)
from marketd.models.base import Price, TagList, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERVICE_TABLES = (
    "vote_log",
    "trade_submissions",
    "market_schedules",
    "auth_sessions",
    "auth_nonces",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _adopt_or_build(bind)
    else:
        _create_embedded_platform_tables()
    _create_service_tables()


def _adopt_or_build(bind: sa.Connection) -> None:
    description = load_description()
    wanted = platform_tables(description)
    present = set(sa.inspect(bind).get_table_names(schema="public")) & set(wanted)
    if present == set(wanted):
        return  # the platform's database: adopt its tables as they are
    if present:
        raise RuntimeError(
            "the database has some of the platform's tables but not all "
            f"(missing: {', '.join(sorted(set(wanted) - present))}); refusing to guess"
        )
    for statement in original_schema_sql(description, policies=supabase_roles_present(bind)):
        op.execute(statement)


def _create_embedded_platform_tables() -> None:
    op.create_table(
        "users",
        sa.Column("wallet", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("total_trades", sa.Integer(), server_default="0", nullable=True),
        sa.Column("total_volume", sa.BigInteger(), server_default="0", nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("wallet", name="users_pkey"),
    )
    op.create_table(
        "markets",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("on_chain_address", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("tags", TagList, nullable=True),
        sa.Column("creator_wallet", sa.Text(), nullable=False),
        sa.Column("resolver_wallet", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), server_default="PROPOSED", nullable=False),
        sa.Column("b_parameter", sa.BigInteger(), nullable=False),
        sa.Column("initial_liquidity", sa.BigInteger(), nullable=False),
        sa.Column("current_liquidity", sa.BigInteger(), nullable=True),
        sa.Column("shares_yes", sa.BigInteger(), nullable=True),
        sa.Column("shares_no", sa.BigInteger(), nullable=True),
        sa.Column("current_price_yes", Price(), nullable=True),
        sa.Column("current_price_no", Price(), nullable=True),
        sa.Column("total_volume", sa.BigInteger(), nullable=True),
        sa.Column("proposed_outcome", sa.Boolean(), nullable=True),
        sa.Column("final_outcome", sa.Boolean(), nullable=True),
        sa.Column("ipfs_evidence_hash", sa.Text(), nullable=True),
        sa.Column("proposal_likes", sa.Integer(), nullable=True),
        sa.Column("proposal_dislikes", sa.Integer(), nullable=True),
        sa.Column("dispute_agree", sa.Integer(), nullable=True),
        sa.Column("dispute_disagree", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("resolution_proposed_at", UTCDateTime(), nullable=True),
        sa.Column("finalized_at", UTCDateTime(), nullable=True),
        sa.Column("is_cancelled", sa.Boolean(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="markets_pkey"),
        sa.UniqueConstraint("on_chain_address", name="markets_on_chain_address_key"),
    )
    op.create_index("markets_category_idx", "markets", ["category"])
    op.create_index("markets_creator_idx", "markets", ["creator_wallet"])
    op.create_index("ix_markets_state_created", "markets", ["state", "created_at"])
    op.create_index("markets_volume_idx", "markets", ["total_volume"])
    op.create_table(
        "discussions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("user_wallet", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.id"], name="discussions_market_id_fkey", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="discussions_pkey"),
    )
    op.create_index("ix_discussions_market_created", "discussions", ["market_id", "created_at"])
    op.create_index("discussions_user_idx", "discussions", ["user_wallet", "created_at"])
    for name in ("proposal_votes", "dispute_votes"):
        op.create_table(
            name,
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("market_id", sa.Text(), nullable=False),
            sa.Column("user_wallet", sa.Text(), nullable=False),
            sa.Column("vote", sa.Boolean(), nullable=False),
            sa.Column("voted_at", UTCDateTime(), nullable=True),
            sa.Column("tx_signature", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(
                ["market_id"], ["markets.id"], name=f"{name}_market_id_fkey", ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("market_id", "user_wallet", name=f"{name}_pkey"),
            sa.UniqueConstraint("id", name=f"{name}_id_key"),
        )
        op.create_index(f"{name}_user_idx", name, ["user_wallet"])
    op.create_table(
        "ipfs_anchors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("ipfs_hash", sa.Text(), nullable=False),
        sa.Column("discussions_count", sa.Integer(), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.id"], name="ipfs_anchors_market_id_fkey", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="ipfs_anchors_pkey"),
        sa.UniqueConstraint(
            "market_id", "snapshot_date", name="ipfs_anchors_market_id_snapshot_date_key"
        ),
    )
    op.create_table(
        "positions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("user_wallet", sa.Text(), nullable=False),
        sa.Column("market_pubkey", sa.Text(), nullable=False),
        sa.Column("user_pubkey", sa.Text(), nullable=False),
        sa.Column("shares_yes", sa.BigInteger(), nullable=False),
        sa.Column("shares_no", sa.BigInteger(), nullable=False),
        sa.Column("total_invested", sa.BigInteger(), nullable=False),
        sa.Column("trades_count", sa.Integer(), nullable=True),
        sa.Column("realized_pnl", sa.BigInteger(), nullable=True),
        sa.Column("has_claimed", sa.Boolean(), nullable=True),
        sa.Column("claimed_amount", sa.BigInteger(), nullable=True),
        sa.Column("first_trade_at", UTCDateTime(), nullable=True),
        sa.Column("last_trade_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.id"], name="positions_market_id_fkey", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("market_id", "user_wallet", name="positions_pkey"),
        sa.UniqueConstraint("id", name="positions_id_key"),
    )
    op.create_index("positions_user_idx", "positions", ["user_wallet"])
    op.create_table(
        "trades",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("user_wallet", sa.Text(), nullable=False),
        sa.Column("market_pubkey", sa.Text(), server_default="", nullable=False),
        sa.Column("trader_pubkey", sa.Text(), server_default="", nullable=False),
        sa.Column("trade_type", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Boolean(), nullable=False),
        sa.Column("shares", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("price_after", Price(), nullable=True),
        sa.Column("tx_signature", sa.Text(), nullable=False),
        sa.Column("block_time", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"], ["markets.id"], name="trades_market_id_fkey", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="trades_pkey"),
        sa.UniqueConstraint("tx_signature", name="trades_tx_signature_key"),
    )
    op.create_index("trades_market_idx", "trades", ["market_id", "block_time"])
    op.create_index("trades_user_idx", "trades", ["user_wallet", "block_time"])


def _create_service_tables() -> None:
    op.create_table(
        "auth_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("wallet", sa.String(length=44), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_auth_nonces")),
    )
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_nonces_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("wallet", sa.String(length=44), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_sessions_token_hash")),
    )
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_sessions_wallet"), ["wallet"], unique=False)

    op.create_table(
        "market_schedules",
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("closes_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_market_schedules_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("market_id", name=op.f("pk_market_schedules")),
    )
    with op.batch_alter_table("market_schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_market_schedules_closes_at"), ["closes_at"], unique=False
        )

    op.create_table(
        "trade_submissions",
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("trade_type", sa.String(length=4), nullable=False),
        sa.Column("outcome", sa.Boolean(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("raw_transaction", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_trade_submissions_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_trade_submissions")),
    )
    with op.batch_alter_table("trade_submissions", schema=None) as batch_op:
        batch_op.create_index("ix_trade_submissions_status", ["status", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_trade_submissions_user_wallet"), ["user_wallet"], unique=False
        )

    op.create_table(
        "vote_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("market_id", sa.Text(), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("vote", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("tx_signature", sa.String(length=88), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_vote_log_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vote_log")),
    )
    with op.batch_alter_table("vote_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vote_log_market", ["market_id", "kind", "recorded_at"], unique=False
        )


def downgrade() -> None:
    """marketd's own tables go; the platform's tables stay on PostgreSQL (they hold the
    platform's rows, whoever built them); the embedded database's are marketd's alone."""
    for name in SERVICE_TABLES:
        op.drop_table(name)
    if op.get_bind().dialect.name != "postgresql":
        for name in (
            "trades",
            "positions",
            "ipfs_anchors",
            "dispute_votes",
            "proposal_votes",
            "discussions",
            "markets",
            "users",
        ):
            op.drop_table(name)
