"""The tables of the platform's (Supabase) schema, names and columns as DESIGN.md fixes them.

Columns the platform's schema does not have live in marketd's own tables
(see `service_tables.py`), so the shared schema stays exactly compatible.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketd.models.base import Base, Price, TagList, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    wallet: Mapped[str] = mapped_column(String(44), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


MARKET_START: Mapping[str, Any] = MappingProxyType(
    {
        "initial_liquidity": 0,
        "current_liquidity": 0,
        "shares_yes": 0,
        "shares_no": 0,
        "current_price_yes": Decimal("0.5"),
        "current_price_no": Decimal("0.5"),
        "total_volume": 0,
        "proposal_likes": 0,
        "proposal_dislikes": 0,
        "dispute_agree": 0,
        "dispute_disagree": 0,
        "is_cancelled": False,
    }
)
"""The counters, prices and flags of a market as it starts, wherever one is created (the API's
`Market.new`, the indexer's `MarketRow.new`)."""


class Market(Base):
    __tablename__ = "markets"
    __table_args__ = (
        Index("ix_markets_state_created", "state", "created_at"),
        Index("ix_markets_category", "category"),
        Index("ix_markets_total_volume", "total_volume"),
        Index("ix_markets_created_at", "created_at"),  # the activity feed's new markets
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    on_chain_address: Mapped[str] = mapped_column(String(44), unique=True)
    question: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(TagList, default=list)
    creator_wallet: Mapped[str] = mapped_column(String(44), index=True)
    resolver_wallet: Mapped[str | None] = mapped_column(String(44))
    state: Mapped[str] = mapped_column(String(16), default="PROPOSED")
    b_parameter: Mapped[int] = mapped_column(BigInteger, default=0)
    initial_liquidity: Mapped[int] = mapped_column(BigInteger, default=0)
    current_liquidity: Mapped[int] = mapped_column(BigInteger, default=0)
    shares_yes: Mapped[int] = mapped_column(BigInteger, default=0)
    shares_no: Mapped[int] = mapped_column(BigInteger, default=0)
    current_price_yes: Mapped[Decimal] = mapped_column(Price, default=Decimal("0.5"))
    current_price_no: Mapped[Decimal] = mapped_column(Price, default=Decimal("0.5"))
    total_volume: Mapped[int] = mapped_column(BigInteger, default=0)
    proposed_outcome: Mapped[bool | None] = mapped_column(Boolean)
    final_outcome: Mapped[bool | None] = mapped_column(Boolean)
    ipfs_evidence_hash: Mapped[str | None] = mapped_column(Text)
    proposal_likes: Mapped[int] = mapped_column(Integer, default=0)
    proposal_dislikes: Mapped[int] = mapped_column(Integer, default=0)
    dispute_agree: Mapped[int] = mapped_column(Integer, default=0)
    dispute_disagree: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @classmethod
    def new(cls, **fields: Any) -> Market:
        """A market as it starts: no shares, no volume, no votes, both prices at 0.5.

        Column defaults apply only at INSERT; a new row is also read (API response, cache)
        before it is flushed, so its starting values are set here, once."""
        return cls(**({"tags": [], **MARKET_START} | fields))


class Position(Base):
    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("market_id", "user_wallet"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44), index=True)
    shares_yes: Mapped[int] = mapped_column(BigInteger, default=0)
    shares_no: Mapped[int] = mapped_column(BigInteger, default=0)
    total_invested: Mapped[int] = mapped_column(BigInteger, default=0)
    trades_count: Mapped[int] = mapped_column(Integer, default=0)
    realized_pnl: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class _VoteColumns:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44), index=True)
    vote: Mapped[bool] = mapped_column(Boolean)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the vote was cast on-chain (indexed); an on-chain vote outranks an off-chain one.
    tx_signature: Mapped[str | None] = mapped_column(String(88))
    # Why an off-chain vote was eligible when cast (marketd.votes.eligibility); NULL for
    # on-chain votes (always counted) and for off-chain votes cast before it was recorded
    # (never counted).
    eligibility: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class ProposalVote(_VoteColumns, Base):
    __tablename__ = "proposal_votes"
    __table_args__ = (UniqueConstraint("market_id", "user_wallet"),)


class DisputeVote(_VoteColumns, Base):
    __tablename__ = "dispute_votes"
    __table_args__ = (UniqueConstraint("market_id", "user_wallet"),)


class Discussion(Base):
    __tablename__ = "discussions"
    __table_args__ = (Index("ix_discussions_market_created", "market_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44), index=True)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IpfsAnchor(Base):
    __tablename__ = "ipfs_anchors"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"), index=True)
    ipfs_hash: Mapped[str] = mapped_column(String(128))
    discussions_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Trade(Base):
    __tablename__ = "trades"
    __table_args__ = (
        Index("ix_trades_market_block_time", "market_id", "block_time"),
        Index("ix_trades_block_time", "block_time"),  # the activity feed's trades
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44), index=True)
    trade_type: Mapped[str] = mapped_column(String(4))  # buy | sell
    outcome: Mapped[bool] = mapped_column(Boolean)  # true = YES
    shares: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[int] = mapped_column(BigInteger)
    price_after: Mapped[Decimal] = mapped_column(Price)
    tx_signature: Mapped[str] = mapped_column(String(88), unique=True)
    block_time: Mapped[datetime] = mapped_column(UTCDateTime)
