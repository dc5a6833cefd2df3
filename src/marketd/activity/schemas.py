from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from marketd.activity.rules import ActivityKind
from marketd.core.schemas import Price, Schema
from marketd.shared.market_state import MarketState


class ActivityOut(Schema):
    """One thing that happened on the platform. `kind` says which fields are set: a trade has
    the trade fields, a vote the vote fields, a state change `state`."""

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
