"""What happens in the database when a vote tally's chain action is confirmed (or fails).

The outbox runner calls these inside the transaction that marks the action confirmed, so the
market row changes exactly when the action is recorded as done, never twice:

* `approve_market` confirmed with outcome `approved` -> the market row becomes APPROVED
  (proposal_likes/dislikes; the move and approved_at by `marketd.markets.lifecycle`, stamped
  with the confirmation time until the indexer reads the program event) and its
  `MarketStateChanged` goes out on "markets";
  with outcome `awaiting_admin_approval` (the backend key is not the admin) the counts are
  stored and the row stays PROPOSED; `GET /api/markets/{id}/votes` reports it as awaiting the
  admin (from the action's outcome).
* `resolve_dispute` confirmed -> FINALIZED with final_outcome (read back from the market
  account, else derived from the tally's verdict), dispute_agree/disagree and finalized_at;
  with outcome `superseded` (another signer's aggregate_dispute_votes moved the market first)
  nothing here: the indexer applies that DisputeAggregated event.
* A failed action (a program error that will not go away) is logged with the market and the
  error and counted in /metrics; the row keeps the error for the votes endpoint.

The event is published after the commit (a listener that reads the row on the event sees the
new state); if the process dies between commit and publish the event is lost, which the
websocket layer tolerates (clients re-read on reconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog
from prometheus_client import Counter
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.actions import Intent, Outcome
from marketd.chain.client import MarketAccount
from marketd.chain.outbox import OutboxHandler, chain_info, outcome_of
from marketd.core.bus import EventBus
from marketd.core.events import DomainEvent, publish
from marketd.markets import lifecycle
from marketd.markets.lifecycle import Writer
from marketd.models import ChainOutbox, Market
from marketd.models.base import utcnow
from marketd.shared.market_state import MarketState
from marketd.votes import rules
from marketd.votes.tally_repository import TallyRepository

log = structlog.get_logger("marketd.votes.handlers")

ACTIONS_CONFIRMED = Counter(
    "marketd_vote_actions_confirmed_total",
    "Vote tallies confirmed on chain, by intent and outcome.",
    ["intent", "outcome"],
)
ACTIONS_FAILED = Counter(
    "marketd_vote_actions_failed_total",
    "Vote tallies the chain refused for good, by intent and error.",
    ["intent", "error"],
)

_publishing: set[asyncio.Task[None]] = set()


class MarketAccountReader(Protocol):
    async def market(self, market_id: str) -> MarketAccount | None: ...


async def _publish(bus: EventBus, event: DomainEvent) -> None:
    try:
        await publish(bus, event)
    except Exception:
        log.exception("vote event publish failed", topic=event.topic, market_id=event.market_id)


def publish_after_commit(session: AsyncSession, bus: EventBus, event: DomainEvent) -> None:
    """Publish `event` once the session's transaction commits; never if it rolls back."""
    loop = asyncio.get_running_loop()
    sync_session = session.sync_session

    settled = False  # listeners cannot be removed while SQLAlchemy dispatches them

    def committed(_session: Any) -> None:
        nonlocal settled
        if settled:
            return
        settled = True
        task = loop.create_task(_publish(bus, event))
        _publishing.add(task)
        task.add_done_callback(_publishing.discard)

    def rolled_back(_session: Any) -> None:
        nonlocal settled
        settled = True

    sa_event.listen(sync_session, "after_commit", committed)
    sa_event.listen(sync_session, "after_rollback", rolled_back)


def _count(row: ChainOutbox, name: str) -> int:
    return int(row.arguments[name])


class VoteActionHandlers:
    """The outbox handlers of the votes domain; pass `handlers()` / `failure_handlers()` to
    the `OutboxRunner`. `reader` (the chain client) reads a finalized market's outcome."""

    def __init__(
        self,
        bus: EventBus,
        reader: MarketAccountReader | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.bus = bus
        self.reader = reader
        self.clock = clock

    def handlers(self) -> dict[str, OutboxHandler]:
        return {
            Intent.APPROVE_MARKET.value: self.on_approve_confirmed,
            Intent.RESOLVE_DISPUTE.value: self.on_dispute_confirmed,
        }

    def failure_handlers(self) -> dict[str, OutboxHandler]:
        return {
            Intent.APPROVE_MARKET.value: self.on_failed,
            Intent.RESOLVE_DISPUTE.value: self.on_failed,
        }

    async def _market(self, session: AsyncSession, row: ChainOutbox) -> Market | None:
        market = (
            None
            if row.market_id is None
            else await TallyRepository(session).locked_market(row.market_id)
        )
        if market is None:
            log.warning("vote action market missing", market_id=row.market_id, intent=row.intent)
        return market

    def _transition(self, session: AsyncSession, market: Market, new: MarketState) -> None:
        """Through the one owner of transitions, stamped with the confirmation time (the
        indexer re-stamps it with the program event's time when it reads it)."""
        change = lifecycle.transition(market, new, self.clock(), Writer.OUTBOX)
        if change is not None:
            publish_after_commit(session, self.bus, change)

    async def on_approve_confirmed(self, session: AsyncSession, row: ChainOutbox) -> None:
        outcome = outcome_of(row) or ""
        ACTIONS_CONFIRMED.labels(row.intent, outcome).inc()
        market = await self._market(session, row)
        if market is None:
            return
        market.proposal_likes = _count(row, "likes")
        market.proposal_dislikes = _count(row, "dislikes")
        if outcome == Outcome.APPROVED and market.state == MarketState.PROPOSED:
            self._transition(session, market, MarketState.APPROVED)
        elif outcome == Outcome.AWAITING_ADMIN_APPROVAL:
            log.info("market awaiting admin approval", market_id=market.id)
        await session.flush()

    async def on_dispute_confirmed(self, session: AsyncSession, row: ChainOutbox) -> None:
        outcome = outcome_of(row) or ""
        ACTIONS_CONFIRMED.labels(row.intent, outcome).inc()
        market = await self._market(session, row)
        if market is None:
            return
        if outcome == Outcome.SUPERSEDED:
            # Another signer's aggregation moved the market; the indexer applies its event.
            log.info("dispute superseded on chain", market_id=market.id)
            return
        market.dispute_agree = _count(row, "agrees")
        market.dispute_disagree = _count(row, "disagrees")
        if market.state == MarketState.DISPUTED:
            market.final_outcome = await self._final_outcome(market, row)
            self._transition(session, market, MarketState.FINALIZED)
        await session.flush()

    async def _final_outcome(self, market: Market, row: ChainOutbox) -> bool | None:
        """The program's word when the account can be read, else the tally's verdict."""
        if self.reader is not None:
            account = await self.reader.market(market.id)
            if account is not None and account.state is MarketState.FINALIZED:
                final = account.data.get("final_outcome")
                return final if isinstance(final, bool) else None
        succeeded = (row.payload or {}).get("decision") == rules.DisputeVerdict.SUCCEEDED
        return rules.final_outcome(market.proposed_outcome, succeeded)

    async def on_failed(self, session: AsyncSession, row: ChainOutbox) -> None:
        error = str(chain_info(row).get("error") or "unknown")
        ACTIONS_FAILED.labels(row.intent, error).inc()
        log.error(
            "vote action failed",
            market_id=row.market_id,
            intent=row.intent,
            error=error,
            detail=row.last_error,
        )


def vote_outbox_handlers(
    bus: EventBus, reader: MarketAccountReader | None = None
) -> tuple[Mapping[str, OutboxHandler], Mapping[str, OutboxHandler]]:
    """(handlers, failure_handlers) of the votes domain for the worker's `OutboxRunner`."""
    handlers = VoteActionHandlers(bus, reader)
    return handlers.handlers(), handlers.failure_handlers()
