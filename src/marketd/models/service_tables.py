"""marketd's own tables, kept apart from the platform's schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from marketd.models.base import Base, Price, UTCDateTime, utcnow


class AuthNonce(Base):
    """A Sign-In With Solana challenge; `used_at` makes the nonce single-use."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    wallet: Mapped[str] = mapped_column(String(44))
    message: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthSession(Base):
    """A bearer session; only the token's SHA-256 is stored, so a database leak leaks no token."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    wallet: Mapped[str] = mapped_column(String(44), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MarketSchedule(Base):
    """When a market stops trading: drives the "closing soon" sort."""

    __tablename__ = "market_schedules"

    market_id: Mapped[str] = mapped_column(
        ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class TradeSubmission(Base):
    """A user-signed buy/sell transaction accepted by the relay, until the indexer settles it."""

    __tablename__ = "trade_submissions"
    __table_args__ = (Index("ix_trade_submissions_status", "status", "created_at"),)

    signature: Mapped[str] = mapped_column(String(88), primary_key=True)
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44), index=True)
    trade_type: Mapped[str] = mapped_column(String(4))
    outcome: Mapped[bool]
    amount: Mapped[int] = mapped_column(BigInteger)
    raw_transaction: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VoteLog(Base):
    """Every accepted vote, including the ones a later vote replaced: who, what and when."""

    __tablename__ = "vote_log"
    __table_args__ = (
        Index("ix_vote_log_market", "market_id", "kind", "recorded_at"),
        Index("ix_vote_log_recorded_at", "recorded_at"),  # the activity feed's votes
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(8))  # proposal | dispute
    market_id: Mapped[str] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"))
    user_wallet: Mapped[str] = mapped_column(String(44))
    vote: Mapped[bool]
    source: Mapped[str] = mapped_column(String(8))  # api | chain
    tx_signature: Mapped[str | None] = mapped_column(String(88))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketStats(Base):
    """A market's trade counters (all time), kept by the indexer after every batch that traded
    in the market, from its positions (`marketd.indexer.rollups`): a listing reads one row
    instead of counting trades."""

    __tablename__ = "market_stats"

    market_id: Mapped[str] = mapped_column(
        ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    trades_count: Mapped[int] = mapped_column(BigInteger, default=0)
    traders_count: Mapped[int] = mapped_column(Integer, default=0)


class MarketTradeHour(Base):
    """A market's trades of one UTC hour: volume, count, and the YES price after its last trade
    (close), highest and lowest after any of them. The 24-hour volume and price change of a
    listing read at most 25 of these rows; hourly and longer price charts read these, not the
    trades."""

    __tablename__ = "market_trade_hours"
    # Trending reads the window's hours of every market.
    __table_args__ = (Index("ix_market_trade_hours_hour", "hour"),)

    market_id: Mapped[str] = mapped_column(
        ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    volume: Mapped[int] = mapped_column(BigInteger, default=0)
    trades: Mapped[int] = mapped_column(Integer, default=0)
    close_price: Mapped[Decimal] = mapped_column(Price)
    high_price: Mapped[Decimal] = mapped_column(Price)
    low_price: Mapped[Decimal] = mapped_column(Price)
