"""The one owner of market state transitions.

Every writer of `markets.state` goes through `transition` (or `plan`, its pure half, for a
writer that writes with its own statement): the indexer's handlers (a program event), the votes
outbox handlers (a chain action the backend confirmed), reconcile (a market account that
disagrees with its row) and the fork rebuild (the same handlers replaying the stored events; its
one summary change per market comes from `rebuilt`). It checks the move against the state
machine (`rules.TRANSITIONS`), sets the state and the state's timestamp, and returns the
`MarketStateChanged` the writer publishes after its commit. No other module builds one.
(`confirmed` builds the repeat the indexer publishes when it reads the program event of a move
the backend made first: the activity channel's item of that change.)

Which moves are accepted depends on who reports them:

* the chain's word (`Writer.INDEXER`, `RECONCILE`, `REBUILD`): the program has made the move
  already, so the row follows even a move the machine does not list (reconcile catching up
  several steps at once, a fork rollback moving a market back); such a move means events were
  missed or undone, so it is logged and counted (`marketd_market_transitions_unexpected_total`);
* the backend's own conclusion (`Writer.OUTBOX`): a move outside the machine is refused
  (`IllegalTransition`); its handlers read the state under a lock first, so this is a bug.

Timestamps (`approved_at`, `activated_at`, `resolution_proposed_at`, `finalized_at`) have one
source: the chain's time of the program event that made the move (the event's own timestamp,
else its block's time). That is when the move became true, the clock the program judges its
deadlines by, and the same on every replay and fork rebuild, which wall-clock time is not. A
writer without the event stamps what it knows: the outbox handler learns that its transaction
is confirmed before the indexer reads the event, and stamps the confirmation time (the local
clock, moments after the block); when the indexer reads the event, the state is unchanged (so
nothing is published) but the timestamp is re-stamped with the event's time, so every row ends
with the chain's time whichever writer came first. Reconcile reads accounts, not events, and
stamps nothing (`at=None`). An upheld dispute (DISPUTED -> RESOLVING) keeps the original
`resolution_proposed_at`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter

from marketd.core.events import MarketStateChanged
from marketd.models.base import utcnow
from marketd.shared.market_state import MarketState, can_transition

log = structlog.get_logger("marketd.markets.lifecycle")

UNEXPECTED = Counter(
    "marketd_market_transitions_unexpected_total",
    "State moves reported by the chain that the state machine does not list, by writer.",
    ["writer", "old", "new"],
)


class Writer(enum.StrEnum):
    """Who reports a transition (see the module doc for what each may do)."""

    INDEXER = "indexer"
    OUTBOX = "outbox"
    RECONCILE = "reconcile"
    REBUILD = "rebuild"


CHAIN_WRITERS = frozenset({Writer.INDEXER, Writer.RECONCILE, Writer.REBUILD})
"""Writers that report a move the program already made."""

STAMPS: dict[MarketState, str] = {
    MarketState.APPROVED: "approved_at",
    MarketState.ACTIVE: "activated_at",
    MarketState.RESOLVING: "resolution_proposed_at",
    MarketState.FINALIZED: "finalized_at",
}
"""The column that records when a market entered each state."""


class IllegalTransition(ValueError):
    """The backend asked for a move the state machine does not allow."""


def _stamp(old: MarketState, new: MarketState) -> str | None:
    if old is MarketState.DISPUTED and new is MarketState.RESOLVING:
        return None  # an upheld dispute re-opens the resolution it disputed
    return STAMPS.get(new)


def plan(
    market_id: str, current: str, target: MarketState, at: datetime | None, writer: Writer
) -> tuple[dict[str, Any], MarketStateChanged | None]:
    """The columns to write to move a market from `current` to `target`, and the event to
    publish (None when the market is in `target` already: then only a chain event's time is
    re-stamped). Pure but for the log and the counter of unexpected moves."""
    old = MarketState(current)
    column = _stamp(old, target)
    if old is target:
        restamp = at is not None and column is not None and writer is Writer.INDEXER
        return ({column: at} if restamp and column else {}), None
    if not can_transition(old, target):
        if writer not in CHAIN_WRITERS:
            raise IllegalTransition(f"{market_id}: {old.value} -> {target.value} is not allowed")
        UNEXPECTED.labels(writer.value, old.value, target.value).inc()
        log.warning(
            "market transition outside the state machine",
            market_id=market_id,
            old=old.value,
            new=target.value,
            writer=writer.value,
        )
    columns: dict[str, Any] = {"state": target.value}
    if at is not None:
        columns["updated_at"] = at
        if column is not None:
            columns[column] = at
    change = MarketStateChanged(
        market_id=market_id, old_state=old.value, new_state=target.value, at=at or utcnow()
    )
    return columns, change


def transition(
    market: Any, target: MarketState, at: datetime | None, writer: Writer
) -> MarketStateChanged | None:
    """Move `market` (a `Market` row or the indexer's `MarketRow`: anything with `id`, `state`
    and the timestamp columns) to `target`; the event to publish after the commit, or None
    when it was there already. See `plan`."""
    columns, change = plan(market.id, market.state, target, at, writer)
    for name, value in columns.items():
        setattr(market, name, value)
    return change


def rebuilt(market_id: str, before: str, after: str) -> MarketStateChanged | None:
    """The one change a fork rebuild publishes for a market whose replayed events left it in
    another state than before (the replay itself went through `transition`)."""
    if before == after:
        return None
    _columns, change = plan(market_id, before, MarketState(after), utcnow(), Writer.REBUILD)
    return change


def confirmed(market_id: str, state: MarketState, at: datetime) -> MarketStateChanged:
    """The change announced again when the indexer reads the program event of a move the
    market has made already (the outbox handler applied and announced it on confirmation,
    before the event was indexed): `old_state` = `new_state`. The first announcement had no
    feed item (the activity feed's state changes are indexed program events); this one has,
    so the WebSocket's activity channel sends it. For a market's subscribers it repeats the
    state they hold, which the protocol allows (event fields are absolute values)."""
    return MarketStateChanged(market_id=market_id, old_state=state, new_state=state, at=at)
