"""A market's lifecycle states, their state machine and the platform's categories (pure).

The vocabulary every layer shares: the tables (`models`), the chain layer and each domain name
a market's state, so it lives below all of them (`marketd.shared`, imported by anyone, imports
nothing of marketd). The rules that act on markets stay in `marketd.markets.rules`.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args


class MarketState(enum.StrEnum):
    """A market's state: the one enum of the database, the API and the program.

    The value is the database's and the API's spelling (`ACTIVE`); the program's account and
    events hold the u8 `code` (its order: Proposed 0 … Cancelled 6) and its IDL names the
    variant `program_name` (`Active`): `from_code` and `from_program_name` map back."""

    PROPOSED = "PROPOSED"
    APPROVED = "APPROVED"
    ACTIVE = "ACTIVE"
    RESOLVING = "RESOLVING"
    DISPUTED = "DISPUTED"
    FINALIZED = "FINALIZED"
    CANCELLED = "CANCELLED"

    @property
    def code(self) -> int:
        return list(MarketState).index(self)

    @classmethod
    def from_code(cls, code: int) -> MarketState:
        return list(MarketState)[code]

    @property
    def program_name(self) -> str:
        """The IDL's variant name (`Active`)."""
        return self.value.capitalize()

    @classmethod
    def from_program_name(cls, name: str) -> MarketState:
        """The IDL's variant name (`Active`) to the database spelling (`ACTIVE`)."""
        return cls(name.upper())


TRANSITIONS: dict[MarketState, frozenset[MarketState]] = {
    MarketState.PROPOSED: frozenset({MarketState.APPROVED, MarketState.CANCELLED}),
    MarketState.APPROVED: frozenset({MarketState.ACTIVE, MarketState.CANCELLED}),
    MarketState.ACTIVE: frozenset({MarketState.RESOLVING, MarketState.CANCELLED}),
    MarketState.RESOLVING: frozenset({MarketState.DISPUTED, MarketState.FINALIZED}),
    # An upheld aggregate_dispute_votes re-opens the market (PROGRAM.md §3.12).
    MarketState.DISPUTED: frozenset({MarketState.RESOLVING, MarketState.FINALIZED}),
    MarketState.FINALIZED: frozenset(),
    MarketState.CANCELLED: frozenset(),
}

Category = Literal["politics", "sports", "crypto", "science", "entertainment", "other"]
"""The platform's categories (its `markets.valid_category` check); a market names one."""
CATEGORIES: tuple[str, ...] = get_args(Category)
DEFAULT_CATEGORY: Category = "other"

LIVE_STATES = frozenset({MarketState.ACTIVE, MarketState.RESOLVING, MarketState.DISPUTED})


def can_transition(current: MarketState, target: MarketState) -> bool:
    return target in TRANSITIONS[current]


VOTING_STATES = (MarketState.PROPOSED, MarketState.DISPUTED)
"""The states in which off-chain votes are open (proposal votes, then dispute votes)."""
