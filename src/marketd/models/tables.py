"""The tables of the platform's (Supabase) schema that marketd reads and writes.

The database's own definition of these tables is the platform's (migration 0001 adopts or
builds it, 0004 adds marketd's few columns); these models map the columns marketd uses,
including the platform's columns marketd fills (trade and position keys, claim and trade
times, users' totals, the anchor's snapshot date). Columns only marketd needs otherwise live in
its own tables (see `service_tables.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketd.models.base import Base, Price, TagList, UTCDateTime, utcnow
from marketd.shared.market_state import DEFAULT_CATEGORY

USER = "users.wallet"  # the platform's tables reference their users by wallet


class User(Base):
    __tablename__ = "users"

    wallet: Mapped[str] = mapped_column(Text, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(Text)
    # Kept by the indexer from the user's trades (`indexer.store`).
    total_trades: Mapped[int | None] = mapped_column(Integer, default=0)
    total_volume: Mapped[int | None] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)


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

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    on_chain_address: Mapped[str] = mapped_column(Text, unique=True)
    question: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(Text, default=DEFAULT_CATEGORY)
    tags: Mapped[list[str]] = mapped_column(TagList, default=list)
    creator_wallet: Mapped[str] = mapped_column(ForeignKey(USER))
    resolver_wallet: Mapped[str | None] = mapped_column(ForeignKey(USER))
    state: Mapped[str] = mapped_column(Text, default="PROPOSED")
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
    """The database's key is (market_id, user_wallet); `id` (unique, added by 0004) is how
    marketd addresses a row."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("market_id", "user_wallet"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(ForeignKey(USER), index=True)
    # The platform's copies of the keys: the market's account address and the wallet.
    market_pubkey: Mapped[str] = mapped_column(Text)
    user_pubkey: Mapped[str] = mapped_column(Text)
    shares_yes: Mapped[int] = mapped_column(BigInteger, default=0)
    shares_no: Mapped[int] = mapped_column(BigInteger, default=0)
    total_invested: Mapped[int] = mapped_column(BigInteger, default=0)
    trades_count: Mapped[int] = mapped_column(Integer, default=0)
    realized_pnl: Mapped[int] = mapped_column(BigInteger, default=0)
    has_claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_amount: Mapped[int | None] = mapped_column(BigInteger)
    first_trade_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_trade_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class _VoteColumns:
    """The database's key is (market_id, user_wallet); `id` (unique, added by 0004) is how
    marketd addresses a row."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(ForeignKey(USER), index=True)
    vote: Mapped[bool] = mapped_column(Boolean)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the vote was cast on-chain (indexed); an on-chain vote outranks an off-chain one.
    tx_signature: Mapped[str | None] = mapped_column(Text)
    # Why an off-chain vote was eligible when cast (marketd.shared.eligibility); NULL for
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

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(ForeignKey(USER))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IpfsAnchor(Base):
    __tablename__ = "ipfs_anchors"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    ipfs_hash: Mapped[str] = mapped_column(Text)
    discussions_count: Mapped[int] = mapped_column(Integer, default=0)
    # The day the anchored snapshot covers (unique per market with market_id).
    snapshot_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Trade(Base):
    __tablename__ = "trades"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(ForeignKey(USER))
    # The platform's copies of the keys: the market's account address and the wallet.
    market_pubkey: Mapped[str] = mapped_column(Text)
    trader_pubkey: Mapped[str] = mapped_column(Text)
    trade_type: Mapped[str] = mapped_column(Text)  # buy | sell
    outcome: Mapped[bool] = mapped_column(Boolean)  # true = YES
    shares: Mapped[int] = mapped_column(BigInteger)  # > 0 (positive_shares)
    cost: Mapped[int] = mapped_column(BigInteger)  # > 0 (positive_cost)
    price_after: Mapped[Decimal] = mapped_column(Price)
    tx_signature: Mapped[str] = mapped_column(Text, unique=True)
    block_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
