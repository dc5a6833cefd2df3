from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from marketd.activity.rules import ActivityKind
from marketd.core.schemas import Price, Schema
from marketd.shared.market_state import MarketState


class ActivityOut(Schema):
    """One thing that happened on the platform. `kind` says which fields are set: a trade has
    the trade fields, a vote the vote fields, a state change `state`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "trade",
                    "id": "3b0f6c1e-8a4d-4c2e-9f57-1d2a6e8b7c90",
                    "at": "2026-12-06T15:42:10Z",
                    "market_id": "9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e",
                    "question": "Will SOL close above $300 on 2027-01-01?",
                    "wallet": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
                    "trade_type": "buy",
                    "outcome": "YES",
                    "shares": 2_000_000_000,
                    "amount": 1_100_000_000,
                    "price_yes": "0.550000000",
                    "vote_kind": None,
                    "vote": None,
                    "state": None,
                    "tx_signature": "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp"
                    "8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW",
                },
                {
                    "kind": "state_change",
                    "id": "2xL4bq9mVqSHTcDyHnF2Hq7Q4CkVuKsr1D7jHh5ZpUVi"
                    "ZmbQ7TfBkvYbYQ9ZzAq5VxoQ6NAFvWkqXzQCXA3tY8Pa:0",
                    "at": "2026-12-06T12:00:04Z",
                    "market_id": "9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e",
                    "question": "Will SOL close above $300 on 2027-01-01?",
                    "wallet": None,
                    "trade_type": None,
                    "outcome": None,
                    "shares": None,
                    "amount": None,
                    "price_yes": None,
                    "vote_kind": None,
                    "vote": None,
                    "state": "ACTIVE",
                    "tx_signature": "2xL4bq9mVqSHTcDyHnF2Hq7Q4CkVuKsr1D7jHh5ZpUVi"
                    "ZmbQ7TfBkvYbYQ9ZzAq5VxoQ6NAFvWkqXzQCXA3tY8Pa",
                },
            ]
        }
    )

    kind: ActivityKind
    id: str = Field(
        description="Unique within its kind (a trade's, vote's or market's id; "
        "a state change's transaction signature and event index)"
    )
    at: datetime = Field(description="Block time (trades, state changes) or when recorded")
    market_id: str
    question: str
    wallet: str | None = Field(
        default=None, description="The trader, the voter or the market's creator"
    )
    trade_type: Literal["buy", "sell"] | None = None
    outcome: Literal["YES", "NO"] | None = None
    shares: int | None = None
    amount: int | None = Field(default=None, description="Lamports paid (buy) or received (sell)")
    price_yes: Price | None = Field(default=None, description="The YES price after the trade")
    vote_kind: Literal["proposal", "dispute"] | None = None
    vote: bool | None = None
    state: MarketState | None = Field(
        default=None,
        description="The market's state after a state change; PROPOSED for a new market",
    )
    tx_signature: str | None = None
