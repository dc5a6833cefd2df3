"""chain outbox, indexer and snapshot tables

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:40:01.280550
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketd.models.base import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chain_events",
        sa.Column("signature", sa.String(length=88), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("block_time", UTCDateTime(), nullable=True),
        sa.Column("commitment", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("signature", "event_index", name=op.f("pk_chain_events")),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_events_market_id"), ["market_id"], unique=False)
        batch_op.create_index("ix_chain_events_slot", ["slot"], unique=False)

    op.create_table(
        "chain_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=True),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signed_transaction", sa.LargeBinary(), nullable=True),
        sa.Column("signature", sa.String(length=88), nullable=True),
        sa.Column("blockhash", sa.String(length=44), nullable=True),
        sa.Column("last_valid_block_height", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_chain_outbox_idempotency_key")),
    )
    with op.batch_alter_table("chain_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_outbox_market_id"), ["market_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_outbox_signature"), ["signature"], unique=False)
        batch_op.create_index(
            "ix_chain_outbox_status_next", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "indexer_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_signature", sa.String(length=88), nullable=True),
        sa.Column("last_slot", sa.BigInteger(), nullable=False),
        sa.Column("finalized_slot", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_checkpoints")),
    )
    op.create_table(
        "snapshot_pins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("market_id", sa.String(length=36), nullable=False),
        sa.Column("snapshot_date", sa.Date(), nullable=False),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("cid", sa.String(length=128), nullable=False),
        sa.Column("layout_profile", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("previous_cid", sa.String(length=128), nullable=True),
        sa.Column("discussions_count", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stores", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("pinned_at", UTCDateTime(), nullable=True),
        sa.Column("pruned_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["market_id"],
            ["markets.id"],
            name=op.f("fk_snapshot_pins_market_id_markets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_pins")),
        sa.UniqueConstraint("market_id", "snapshot_date", name=op.f("uq_snapshot_pins_market_id")),
    )
    with op.batch_alter_table("snapshot_pins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshot_pins_cid"), ["cid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("snapshot_pins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snapshot_pins_cid"))

    op.drop_table("snapshot_pins")
    op.drop_table("indexer_checkpoints")
    with op.batch_alter_table("chain_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_outbox_status_next")
        batch_op.drop_index(batch_op.f("ix_chain_outbox_signature"))
        batch_op.drop_index(batch_op.f("ix_chain_outbox_market_id"))

    op.drop_table("chain_outbox")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_events_slot")
        batch_op.drop_index(batch_op.f("ix_chain_events_market_id"))

    op.drop_table("chain_events")
