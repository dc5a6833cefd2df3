"""What the activity feed shows, with no I/O: its kinds and which chain events change a state."""

from __future__ import annotations

import enum

from marketd.shared.market_state import MarketState


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

LIVE_EVENT_KINDS: dict[str, ActivityKind] = {
    "trade": ActivityKind.TRADE,
    "vote": ActivityKind.VOTE,
    "market_created": ActivityKind.MARKET_CREATED,
    "market_state_change": ActivityKind.STATE_CHANGE,
}
"""The market events (their `type`) that announce a feed item of each kind: the WebSocket's
`activity` channel sends the feed's item for each of them as it happens."""
