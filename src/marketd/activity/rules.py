"""What the activity feed shows, with no I/O: its kinds and which chain events change a state."""

from __future__ import annotations

import enum

from marketd.markets.rules import MarketState


class ActivityKind(enum.StrEnum):
    TRADE = "trade"
    VOTE = "vote"
    MARKET_CREATED = "market_created"
    STATE_CHANGE = "state_change"


STATE_EVENTS: dict[str, MarketState] = {
    "ProposalApproved": MarketState.APPROVED,
    "MarketActivated": MarketState.ACTIVE,
    "MarketResolved": MarketState.RESOLVING,
    "DisputeInitiated": MarketState.DISPUTED,
    "MarketFinalized": MarketState.FINALIZED,
    "MarketCancelled": MarketState.CANCELLED,
}
"""The program events that move a market to a state (`marketd.indexer.handlers`): the feed's
state changes are these indexed events, so a fork rollback that removes one removes it from
the feed too."""

LIVE_EVENT_TYPES = frozenset({"trade", "vote", "market_created", "market_state_change"})
"""The market events that the WebSocket's `activity` channel forwards (the feed's kinds as
they happen)."""
