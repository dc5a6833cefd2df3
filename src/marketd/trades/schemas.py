from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Row

from marketd.core.schemas import MarketId, Price, Schema, Text, length_limits
from marketd.models import Trade
from marketd.trades.rules import MAX_TRANSACTION_BASE64, MAX_TRANSACTION_BYTES
from marketd.trades.status import SubmissionStatus


class TradeSubmit(Schema):
    market_id: MarketId
    transaction: Text = Field(
        description=f"base64 of the wallet-signed transaction (at most {MAX_TRANSACTION_BYTES:,} "
        "bytes: Solana's packet limit)",
        json_schema_extra=length_limits(1, MAX_TRANSACTION_BASE64),
    )


class TradeAccepted(Schema):
    signature: str
    status: SubmissionStatus
    market_id: str
    trade_type: str
    outcome: Literal["YES", "NO"]
    amount: int
    error: str | None = Field(
        default=None,
        description="Why it failed, or why a pending trade waits (e.g. ProtocolPaused: the "
        "program is paused; it is sent again while its blockhash lives)",
    )


class TradeOut(Schema):
    id: uuid.UUID
    market_id: str
    user_wallet: str
    trade_type: str
    outcome: Literal["YES", "NO"]
    shares: int
    cost: int
    price_after: Price = Field(description="YES price after the trade, decimal string")
    tx_signature: str
    block_time: datetime

    @classmethod
    def of(cls, trade: Trade | Row[Any]) -> TradeOut:
        """From an ORM trade or a Core row of the trades table (same attribute names)."""
        return cls(
            id=trade.id,
            market_id=trade.market_id,
            user_wallet=trade.user_wallet,
            trade_type=trade.trade_type,
            outcome="YES" if trade.outcome else "NO",
            shares=trade.shares,
            cost=trade.cost,
            price_after=trade.price_after,
            tx_signature=trade.tx_signature,
            block_time=trade.block_time,
        )
