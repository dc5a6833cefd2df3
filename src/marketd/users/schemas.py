from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import ConfigDict, Field

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "market_id": "9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e",
                    "question": "Will SOL close above $300 on 2027-01-01?",
                    "state": "ACTIVE",
                    "current_price_yes": "0.550000000",
                    "current_price_no": "0.450000000",
                    "shares_yes": 2_000_000_000,
                    "shares_no": 0,
                    "total_invested": 1_000_000_000,
                    "trades_count": 2,
                    "realized_pnl": 0,
                    "current_value": 1_100_000_000,
                    "cost_basis": 1_000_000_000,
                    "unrealized_profit": 100_000_000,
                    "realized_profit": 0,
                    "roi": "0.1000",
                    "claimable": False,
                    "claimed": False,
                    "updated_at": "2026-12-06T15:42:10Z",
                }
            ]
        }
    )

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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "wallet": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
                    "positions": 3,
                    "open_positions": 2,
                    "current_value": 1_900_000_000,
                    "total_invested": 2_000_000_000,
                    "cost_basis": 1_700_000_000,
                    "unrealized_profit": 200_000_000,
                    "realized_profit": -262_000_000,
                    "roi": "-0.0310",
                    "claimable": 1,
                    "claimable_value": 400_000_000,
                }
            ]
        }
    )

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
