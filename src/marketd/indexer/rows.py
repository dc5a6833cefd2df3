"""Plain records of the rows the event handlers change: markets, positions, ballots, trades.

The handlers run once per event, thousands of times per batch during a backfill. ORM instances
would make every attribute write go through SQLAlchemy's instrumentation and every new row
through the unit of work; these slotted dataclasses cost a plain attribute write. The store
(`marketd.indexer.store`) loads them with Core selects and writes them with bulk statements;
for markets, which other writers also update (vote tallies, reconcile), only the columns whose
value the batch changed are written (`MarketRow.changes`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from marketd.markets.columns import CHAIN_COLUMNS, CHAIN_STATE_COLUMNS
from marketd.models.tables import MARKET_START


@dataclass(slots=True, eq=False)
class MarketRow:
    """The `markets` columns the indexer reads or writes (`marketd.markets.columns`:
    `CHAIN_COLUMNS`, not the registered texts), typed, in the table's order: the store builds
    records positionally from a select of `MARKET_COLUMNS` (tests/markets/test_columns.py
    holds the fields to the table)."""

    id: str
    on_chain_address: str
    creator_wallet: str
    resolver_wallet: str | None
    state: str
    b_parameter: int
    initial_liquidity: int
    current_liquidity: int
    shares_yes: int
    shares_no: int
    current_price_yes: Decimal
    current_price_no: Decimal
    total_volume: int
    proposed_outcome: bool | None
    final_outcome: bool | None
    ipfs_evidence_hash: str | None
    proposal_likes: int
    proposal_dislikes: int
    dispute_agree: int
    dispute_disagree: int
    created_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    resolution_proposed_at: datetime | None
    finalized_at: datetime | None
    is_cancelled: bool
    updated_at: datetime

    @classmethod
    def new(
        cls, *, id: str, on_chain_address: str, creator_wallet: str, state: str, at: datetime
    ) -> MarketRow:
        """A market as it starts (`Market.new`): no shares, no volume, no votes, prices 0.5."""
        return cls(
            id=id,
            on_chain_address=on_chain_address,
            creator_wallet=creator_wallet,
            resolver_wallet=None,
            state=state,
            b_parameter=0,
            proposed_outcome=None,
            final_outcome=None,
            ipfs_evidence_hash=None,
            created_at=at,
            approved_at=None,
            activated_at=None,
            resolution_proposed_at=None,
            finalized_at=None,
            updated_at=at,
            **MARKET_START,
        )

    def values(self) -> tuple[Any, ...]:
        """Every column's value, in `MARKET_COLUMNS` order (a snapshot to diff against)."""
        return tuple(getattr(self, name) for name in MARKET_COLUMNS)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in MARKET_COLUMNS}

    def changes(self, original: tuple[Any, ...]) -> dict[str, Any]:
        """The columns whose value differs from `original` (a `values()` snapshot)."""
        return {
            name: value
            for name, before, value in zip(MARKET_COLUMNS, original, self.values(), strict=True)
            if value != before
        }


MARKET_COLUMNS = CHAIN_COLUMNS
# Chain-derived columns a market created on chain overwrites if the row appeared meanwhile.
MARKET_CHAIN_COLUMNS = CHAIN_STATE_COLUMNS


@dataclass(slots=True, eq=False)
class PositionRow:
    id: uuid.UUID | None  # None until inserted (the database gives new rows their id)
    market_id: str
    user_wallet: str
    shares_yes: int
    shares_no: int
    total_invested: int
    trades_count: int
    realized_pnl: int
    created_at: datetime
    updated_at: datetime
    # The platform's columns: the market's account address and the wallet (its copies of the
    # key), whether and how much was claimed, the first and the latest trade.
    market_pubkey: str
    user_pubkey: str
    has_claimed: bool
    claimed_amount: int | None
    first_trade_at: datetime | None
    last_trade_at: datetime | None

    @classmethod
    def new(cls, market: MarketRow, wallet: str, at: datetime) -> PositionRow:
        return cls(
            None, market.id, wallet, 0, 0, 0, 0, 0, at, at, market.on_chain_address, wallet,
            False, None, None, None,
        )  # fmt: skip

    def values(self) -> tuple[Any, ...]:
        """The values of `POSITION_COLUMNS` (all but the id)."""
        return (
            self.market_id,
            self.user_wallet,
            self.shares_yes,
            self.shares_no,
            self.total_invested,
            self.trades_count,
            self.realized_pnl,
            self.created_at,
            self.updated_at,
            self.market_pubkey,
            self.user_pubkey,
            self.has_claimed,
            self.claimed_amount,
            self.first_trade_at,
            self.last_trade_at,
        )


POSITION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PositionRow))
POSITION_COLUMNS = POSITION_FIELDS[1:]  # written; a new row's id comes from the database


@dataclass(slots=True, eq=False)
class BallotRow:
    """One wallet's vote on one market: a row of `proposal_votes` or `dispute_votes` (the
    two tables have the same columns; the kind is the table it is written to)."""

    id: uuid.UUID | None  # None until inserted
    market_id: str
    user_wallet: str
    vote: bool
    voted_at: datetime
    tx_signature: str | None

    def values(self) -> tuple[Any, ...]:
        """The values of `VOTE_COLUMNS` (all but the id)."""
        return (
            self.market_id,
            self.user_wallet,
            self.vote,
            self.voted_at,
            self.tx_signature,
        )


VOTE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(BallotRow))
VOTE_COLUMNS = VOTE_FIELDS[1:]


class TradeRow(NamedTuple):
    """A new `trades` row, in column order, but for the id the database gives it."""

    market_id: str
    user_wallet: str
    trade_type: str
    outcome: bool
    shares: int
    cost: int
    price_after: Decimal
    tx_signature: str
    block_time: datetime
    market_pubkey: str  # the platform's copies of the keys
    trader_pubkey: str
    created_at: datetime  # when indexed


TRADE_COLUMNS: tuple[str, ...] = TradeRow._fields
