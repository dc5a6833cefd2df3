from __future__ import annotations

from datetime import datetime
from typing import Literal

from marketd.core.schemas import Schema


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
    market_id: str
    shares_yes: int
    shares_no: int
    total_invested: int
    trades_count: int
    realized_pnl: int
    updated_at: datetime
