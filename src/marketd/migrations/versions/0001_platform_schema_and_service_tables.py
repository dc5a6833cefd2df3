"""platform schema and service tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:19:56.912108
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketd.models.base import Price, TagList, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
        "markets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("on_chain_address", sa.String(length=44), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("tags", TagList, nullable=False),
        sa.Column("creator_wallet", sa.String(length=44), nullable=False),
        sa.Column("resolver_wallet", sa.String(length=44), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("b_parameter", sa.BigInteger(), nullable=False),
        sa.Column("initial_liquidity", sa.BigInteger(), nullable=False),
        sa.Column("current_liquidity", sa.BigInteger(), nullable=False),
        sa.Column("shares_yes", sa.BigInteger(), nullable=False),
        sa.Column("shares_no", sa.BigInteger(), nullable=False),
        sa.Column("current_price_yes", Price(), nullable=False),
        sa.Column("current_price_no", Price(), nullable=False),
        sa.Column("total_volume", sa.BigInteger(), nullable=False),
        sa.Column("proposed_outcome", sa.Boolean(), nullable=True),
        sa.Column("final_outcome", sa.Boolean(), nullable=True),
        sa.Column("ipfs_evidence_hash", sa.Text(), nullable=True),
        sa.Column("proposal_likes", sa.Integer(), nullable=False),
        sa.Column("proposal_dislikes", sa.Integer(), nullable=False),
        sa.Column("dispute_agree", sa.Integer(), nullable=False),
        sa.Column("dispute_disagree", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("resolution_proposed_at", UTCDateTime(), nullable=True),
        sa.Column("finalized_at", UTCDateTime(), nullable=True),
        sa.Column("is_cancelled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_markets")),
        sa.UniqueConstraint("on_chain_address", name=op.f("uq_markets_on_chain_address")),
    )
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.create_index("ix_markets_category", ["category"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_markets_creator_wallet"), ["creator_wallet"], unique=False
        )
        batch_op.create_index("ix_markets_state_created", ["state", "created_at"], unique=False)
        batch_op.create_index("ix_markets_total_volume", ["total_volume"], unique=False)

    op.create_table(
        "users",
        sa.Column("wallet", sa.String(length=44), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("wallet", name=op.f("pk_users")),
    )
    op.create_table(
        "discussions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_discussions_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discussions")),
    )
    with op.batch_alter_table("discussions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discussions_market_created", ["market_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_discussions_user_wallet"), ["user_wallet"], unique=False
        )

    op.create_table(
        "dispute_votes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("vote", sa.Boolean(), nullable=False),
        sa.Column("voted_at", UTCDateTime(), nullable=False),
        sa.Column("tx_signature", sa.String(length=88), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_dispute_votes_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_votes")),
        sa.UniqueConstraint("market_id", "user_wallet", name=op.f("uq_dispute_votes_market_id")),
    )
    with op.batch_alter_table("dispute_votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dispute_votes_user_wallet"), ["user_wallet"], unique=False
        )

    op.create_table(
        "ipfs_anchors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("ipfs_hash", sa.String(length=128), nullable=False),
        sa.Column("discussions_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_ipfs_anchors_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ipfs_anchors")),
    )
    with op.batch_alter_table("ipfs_anchors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ipfs_anchors_market_id"), ["market_id"], unique=False)

    op.create_table(
        "market_schedules",
        sa.Column("market_id", sa.String(length=36), nullable=False),
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
        "positions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("shares_yes", sa.BigInteger(), nullable=False),
        sa.Column("shares_no", sa.BigInteger(), nullable=False),
        sa.Column("total_invested", sa.BigInteger(), nullable=False),
        sa.Column("trades_count", sa.Integer(), nullable=False),
        sa.Column("realized_pnl", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_positions_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("market_id", "user_wallet", name=op.f("uq_positions_market_id")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_positions_user_wallet"), ["user_wallet"], unique=False)

    op.create_table(
        "proposal_votes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("vote", sa.Boolean(), nullable=False),
        sa.Column("voted_at", UTCDateTime(), nullable=False),
        sa.Column("tx_signature", sa.String(length=88), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_proposal_votes_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_votes")),
        sa.UniqueConstraint("market_id", "user_wallet", name=op.f("uq_proposal_votes_market_id")),
    )
    with op.batch_alter_table("proposal_votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposal_votes_user_wallet"), ["user_wallet"], unique=False
        )

    op.create_table(
        "trade_submissions",
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
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
        "trades",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("user_wallet", sa.String(length=44), nullable=False),
        sa.Column("trade_type", sa.String(length=4), nullable=False),
        sa.Column("outcome", sa.Boolean(), nullable=False),
        sa.Column("shares", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("price_after", Price(), nullable=False),
        sa.Column("tx_signature", sa.String(length=88), nullable=False),
        sa.Column("block_time", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_trades_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
        sa.UniqueConstraint("tx_signature", name=op.f("uq_trades_tx_signature")),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trades_market_block_time", ["market_id", "block_time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_trades_user_wallet"), ["user_wallet"], unique=False)

    op.create_table(
        "vote_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
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
    with op.batch_alter_table("vote_log", schema=None) as batch_op:
        batch_op.drop_index("ix_vote_log_market")

    op.drop_table("vote_log")
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trades_user_wallet"))
        batch_op.drop_index("ix_trades_market_block_time")

    op.drop_table("trades")
    with op.batch_alter_table("trade_submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trade_submissions_user_wallet"))
        batch_op.drop_index("ix_trade_submissions_status")

    op.drop_table("trade_submissions")
    with op.batch_alter_table("proposal_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposal_votes_user_wallet"))

    op.drop_table("proposal_votes")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_positions_user_wallet"))

    op.drop_table("positions")
    with op.batch_alter_table("market_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_market_schedules_closes_at"))

    op.drop_table("market_schedules")
    with op.batch_alter_table("ipfs_anchors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ipfs_anchors_market_id"))

    op.drop_table("ipfs_anchors")
    with op.batch_alter_table("dispute_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispute_votes_user_wallet"))

    op.drop_table("dispute_votes")
    with op.batch_alter_table("discussions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discussions_user_wallet"))
        batch_op.drop_index("ix_discussions_market_created")

    op.drop_table("discussions")
    op.drop_table("users")
    with op.batch_alter_table("markets", schema=None) as batch_op:
        batch_op.drop_index("ix_markets_total_volume")
        batch_op.drop_index("ix_markets_state_created")
        batch_op.drop_index(batch_op.f("ix_markets_creator_wallet"))
        batch_op.drop_index("ix_markets_category")

    op.drop_table("markets")
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_wallet"))

    op.drop_table("auth_sessions")
    with op.batch_alter_table("auth_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_nonces_expires_at"))

    op.drop_table("auth_nonces")
