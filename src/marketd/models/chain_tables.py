"""marketd's tables for the chain (outbox, indexer) and IPFS snapshots."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketd.models.base import Base, UTCDateTime, utcnow


class ChainOutbox(Base):
    """One backend-signed chain action, from intent to confirmation.

    `idempotency_key` (e.g. `approve:<market>`) makes enqueueing the same intent twice a no-op;
    the signed bytes, blockhash and last valid block height let a restarted runner re-send the
    very same transaction instead of signing a second one.
    """

    __tablename__ = "chain_outbox"
    __table_args__ = (Index("ix_chain_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    intent: Mapped[str] = mapped_column(String(32))
    market_id: Mapped[str | None] = mapped_column(Text, index=True)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Evidence kept with the action, e.g. the exact list of counted votes of a tally.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    signed_transaction: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature: Mapped[str | None] = mapped_column(String(88), index=True)
    blockhash: Mapped[str | None] = mapped_column(String(44))
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IndexerCheckpoint(Base):
    """How far the indexer has processed a stream, never past a gap."""

    __tablename__ = "indexer_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_signature: Mapped[str | None] = mapped_column(String(88))
    last_slot: Mapped[int] = mapped_column(BigInteger, default=0)
    finalized_slot: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


STATE_CHANGE_EVENTS = (
    "name IN ('ProposalApproved', 'MarketActivated', 'MarketResolved', 'DisputeInitiated', "
    "'MarketFinalized', 'MarketCancelled')"
)
"""The events of `marketd.activity.rules.STATE_EVENTS` (tests check they agree)."""


class IndexedEventRow(Base):
    """The row of one indexed program event (table `chain_events`), keyed by (signature,
    index) so replays change nothing. Not the local chain's runtime notification
    (`marketd.chain.localnet.svm.ChainEvent`)."""

    __tablename__ = "chain_events"
    __table_args__ = (
        Index("ix_chain_events_slot", "slot"),
        # The activity feed's state changes: only those events, by time (partial index).
        Index(
            "ix_chain_events_state_changes",
            "block_time",
            postgresql_where=text(STATE_CHANGE_EVENTS),
            sqlite_where=text(STATE_CHANGE_EVENTS),
        ),
    )

    signature: Mapped[str] = mapped_column(String(88), primary_key=True)
    event_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    market_id: Mapped[str | None] = mapped_column(Text, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    block_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    commitment: Mapped[str] = mapped_column(String(16), default="confirmed")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SnapshotPin(Base):
    """One market's discussion snapshot of one day: its document, CID and where it is pinned."""

    __tablename__ = "snapshot_pins"
    __table_args__ = (UniqueConstraint("market_id", "snapshot_date"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    snapshot_date: Mapped[date] = mapped_column(Date)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    cid: Mapped[str] = mapped_column(String(128), index=True)
    layout_profile: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    previous_cid: Mapped[str | None] = mapped_column(String(128))
    discussions_count: Mapped[int] = mapped_column(Integer, default=0)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|pinned|pruned
    stores: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
