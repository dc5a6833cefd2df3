from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from marketd.core.schemas import Price, Schema
from marketd.shared.market_state import MarketState


class UserStats(Schema):
    trades_count: int
    trade_volume: int
    markets_created: int
    votes_count: int


class UserOut(Schema):
    wallet: str
    display_name: str | None
    avatar_url: str | None
    bio: str | None
    created_at: datetime
    last_seen_at: datetime | None
    stats: UserStats


class UserVoteOut(Schema):
    kind: Literal["proposal", "dispute"]
    market_id: str
    vote: bool
    voted_at: datetime
    tx_signature: str | None


class PositionOut(Schema):
    """A position with its market and what it is worth (lamports; `marketd.users.portfolio`
    says how each figure is counted)."""

    market_id: str
    question: str
    state: MarketState
    current_price_yes: Price
    current_price_no: Price
    shares_yes: int
    shares_no: int
    total_invested: int = Field(description="Lamports paid for buys, fees included")
    trades_count: int
    realized_pnl: int = Field(description="Lamports received: sale proceeds and winnings")
    current_value: int = Field(
        description="The held shares at the current prices; after finalization the winning "
        "shares at 1 SOL each (0 once claimed)"
    )
    cost_basis: int = Field(description="Average cost of the shares still held")
    unrealized_profit: int = Field(description="current_value - cost_basis")
    realized_profit: int = Field(
        description="Sale proceeds minus the average cost of the shares sold, plus claimed "
        "winnings minus the cost of what was held when claiming"
    )
    roi: Decimal = Field(
        description="(realized + unrealized profit) / the buys' cost, 4 places",
        examples=["0.1250"],
    )
    claimable: bool = Field(description="The market is finalized and winnings await a claim")
    claimed: bool
    updated_at: datetime


class PortfolioOut(Schema):
    """A wallet's totals over all its positions (lamports)."""

    wallet: str
    positions: int
    open_positions: int = Field(description="Positions holding shares with a value")
    current_value: int
    total_invested: int
    cost_basis: int
    unrealized_profit: int
    realized_profit: int
    roi: Decimal = Field(
        description="(realized + unrealized profit) / total_invested (fees included), 4 places",
        examples=["-0.0310"],
    )
    claimable: int = Field(description="Positions whose winnings await a claim")
    claimable_value: int = Field(description="Lamports those claims would pay")
