"""Queries of the vote aggregator: tallies of every open market at once, one market's counted
votes, the chain actions already decided, and the market row updates on confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.actions import Intent
from marketd.models import ChainOutbox, DisputeVote, Market, ProposalVote
from marketd.shared.market_state import MarketState
from marketd.votes.repository import TABLES, VoteTable, counted
from marketd.votes.rules import CastVote, Tally, VoteKind

INTENT_OF: dict[VoteKind, Intent] = {
    VoteKind.PROPOSAL: Intent.APPROVE_MARKET,
    VoteKind.DISPUTE: Intent.RESOLVE_DISPUTE,
}
_NEWEST_ACTION = (
    select(ChainOutbox)
    .where(
        ChainOutbox.market_id == bindparam("market_id"), ChainOutbox.intent == bindparam("intent")
    )
    .order_by(ChainOutbox.created_at.desc())
    .limit(1)
)
"""Read by every votes page (prebuilt with bind parameters, see markets.repository)."""


@dataclass(frozen=True)
class MarketTally:
    market_id: str
    tally: Tally
    resolution_proposed_at: datetime | None = None


@dataclass(frozen=True)
class MarketFacts:
    state: str
    resolution_proposed_at: datetime | None
    proposed_outcome: bool | None


def _yes(table: VoteTable) -> Any:
    return func.coalesce(func.sum(case((table.vote.is_(True), 1), else_=0)), 0)


def _undecided(intent: Intent) -> Any:
    """No chain action of `intent` was enqueued for the market yet."""
    return ~exists().where(ChainOutbox.market_id == Market.id, ChainOutbox.intent == intent.value)


class TallyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------ the sweep
    async def open_proposal_tallies(self) -> list[MarketTally]:
        """Every undecided PROPOSED market with votes and its tally: ONE grouped query (a
        vote row is already one per wallet and market, so count = counted votes; rows that
        do not count, `repository.counted`, are left out)."""
        statement = (
            select(Market.id, _yes(ProposalVote), func.count(ProposalVote.id))
            .select_from(Market)
            .join(ProposalVote, (ProposalVote.market_id == Market.id) & counted(ProposalVote))
            .where(Market.state == MarketState.PROPOSED.value, _undecided(Intent.APPROVE_MARKET))
            .group_by(Market.id)
        )
        rows = await self.session.execute(statement)
        return [
            MarketTally(market_id, Tally(int(yes), int(total) - int(yes)))
            for market_id, yes, total in rows
        ]

    async def open_dispute_tallies(self) -> list[MarketTally]:
        """Every undecided DISPUTED market (votes or not) with its tally and the time its
        resolution was proposed: ONE grouped query."""
        statement = (
            select(
                Market.id,
                Market.resolution_proposed_at,
                _yes(DisputeVote),
                func.count(DisputeVote.id),
            )
            .select_from(Market)
            .outerjoin(DisputeVote, (DisputeVote.market_id == Market.id) & counted(DisputeVote))
            .where(Market.state == MarketState.DISPUTED.value, _undecided(Intent.RESOLVE_DISPUTE))
            .group_by(Market.id, Market.resolution_proposed_at)
        )
        rows = await self.session.execute(statement)
        return [
            MarketTally(market_id, Tally(int(yes), int(total) - int(yes)), proposed_at)
            for market_id, proposed_at, yes, total in rows
        ]

    # ------------------------------------------------------------------ one market
    async def facts(self, market_id: str) -> MarketFacts | None:
        row = (
            await self.session.execute(
                select(Market.state, Market.resolution_proposed_at, Market.proposed_outcome).where(
                    Market.id == market_id
                )
            )
        ).first()
        return None if row is None else MarketFacts(row[0], row[1], row[2])

    async def cast_votes(self, kind: VoteKind, market_id: str) -> list[CastVote]:
        table = TABLES[kind]
        rows = await self.session.execute(
            select(table.user_wallet, table.vote, table.voted_at, table.tx_signature)
            .where(table.market_id == market_id, counted(table))
            .order_by(table.user_wallet)
        )
        return [
            CastVote(wallet, vote, voted_at, signature is not None)
            for wallet, vote, voted_at, signature in rows
        ]

    async def action(self, kind: VoteKind, market_id: str) -> ChainOutbox | None:
        """The newest chain action that carries this market's tally of `kind`."""
        params = {"market_id": market_id, "intent": INTENT_OF[kind].value}
        return await self.session.scalar(_NEWEST_ACTION, params)

    async def locked_market(self, market_id: str) -> Market | None:
        """The market row, locked for the update that follows (PostgreSQL)."""
        return await self.session.get(
            Market, market_id, with_for_update=True, populate_existing=True
        )
