"""Vote use cases: cast (or change) a vote, read a market's votes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core import metrics
from marketd.core.bus import EventBus
from marketd.core.errors import Conflict, NotFound
from marketd.core.events import VoteCast, publish
from marketd.core.pagination import decode_cursor, encode_cursor
from marketd.markets.cache import MarketCache
from marketd.markets.repository import MarketRepository
from marketd.models import Market
from marketd.shared.eligibility import ON_CHAIN
from marketd.shared.market_state import MarketState
from marketd.users.service import UserService
from marketd.votes.eligibility_service import EligibilityChecker
from marketd.votes.repository import VoteRepository
from marketd.votes.rules import NO_VOTES_REASON, VOTING_STATE, Tally, VoteKind
from marketd.votes.schemas import (
    EligibilityCheckOut,
    EligibilityOut,
    MarketVotesOut,
    SubmittedTallyOut,
    TallyOut,
    VoteAccepted,
    VoteOut,
)
from marketd.votes.submitted import submitted_tally


class VotingClosed(Conflict):
    slug, title = "voting-closed", "Voting closed"


class AlreadyVotedOnChain(Conflict):
    slug, title = "voted-on-chain", "Vote already cast on-chain"


def eligibility_out(tx_signature: str | None, record: Mapping[str, Any] | None) -> EligibilityOut:
    """Why a counted vote counts: cast on chain, else the record stored when it was cast."""
    if tx_signature is not None or record is None:
        return EligibilityOut(strategy=ON_CHAIN, checks=[], checked_at=None)
    checked_at = record.get("checked_at")
    return EligibilityOut(
        strategy=str(record.get("strategy", "")),
        checks=[EligibilityCheckOut.model_validate(item) for item in record.get("checks", [])],
        checked_at=None if checked_at is None else datetime.fromisoformat(str(checked_at)),
    )


class VoteService:
    def __init__(self, session: AsyncSession, bus: EventBus, cache: MarketCache) -> None:
        self.session = session
        self.bus = bus
        self.cache = cache
        self.repository = VoteRepository(session)

    async def cast(
        self,
        kind: VoteKind,
        market_id: str,
        wallet: str,
        vote: bool,
        eligibility: EligibilityChecker,
    ) -> VoteAccepted:
        """Store the vote if the market takes votes of `kind` and the wallet is eligible
        (VoteIneligible, 403, otherwise); the vote row keeps the eligibility decision."""
        if not eligibility.policy(kind).is_open:
            # 404 and 409 before 403 (and before any RPC call); then no transaction is held
            # across the checks' reads.
            state, on_chain = await self.repository.before_cast(kind, market_id, wallet)
            self._require_open(kind, market_id, state)
            await self.session.rollback()
            if on_chain:
                raise AlreadyVotedOnChain("This wallet's on-chain vote for this market is final.")
        decision = await eligibility.require(kind, market_id, wallet)
        now = datetime.now(UTC)
        required = VOTING_STATE[kind]
        outcome = await self.repository.cast(
            kind, market_id, wallet, vote, now, required.value, decision.record()
        )
        self._require_open(kind, market_id, outcome.state)
        if not outcome.written:
            await self.session.rollback()
            raise AlreadyVotedOnChain("This wallet's on-chain vote for this market is final.")
        await UserService(self.session).touch_active(wallet, now)
        tally = outcome.tally
        await self.session.commit()
        cast = VoteCast(
            market_id=market_id,
            kind=kind.value,
            vote=vote,
            wallet=wallet,
            likes=tally.yes,
            dislikes=tally.no,
        )
        await self.cache.drop_for(cast)
        metrics.VOTES_ACCEPTED.labels(kind.value).inc()
        await publish(self.bus, cast)
        return VoteAccepted(
            market_id=market_id,
            kind=kind,
            wallet=wallet,
            vote=vote,
            voted_at=now,
            tally=TallyOut(yes=tally.yes, no=tally.no, total=tally.total),
            eligibility=eligibility_out(None, decision.record()),
        )

    @staticmethod
    def _require_open(kind: VoteKind, market_id: str, state: str | None) -> None:
        required = VOTING_STATE[kind]
        if state is None:
            raise NotFound(f"No market with id {market_id}.")
        if state != required.value:
            raise VotingClosed(
                f"{kind.value.capitalize()} votes are taken only while the market is "
                f"{required.value}; it is {state}.",
                state=state,
            )

    async def market_votes(
        self, kind: VoteKind, market_id: str, limit: int, cursor: str | None
    ) -> MarketVotesOut:
        after = decode_cursor(cursor, "votes:" + kind.value, (str,))[0] if cursor else None
        tally = await self.repository.tally(kind, market_id)
        if tally.total == 0 and not await MarketRepository(self.session).exists(market_id):
            raise NotFound(f"No market with id {market_id}.")
        rows = await self.repository.page(kind, market_id, limit + 1, after)
        submitted = await submitted_tally(self.session, kind, market_id)
        next_cursor = (
            encode_cursor("votes:" + kind.value, [rows[limit - 1].user_wallet])
            if len(rows) > limit
            else None
        )
        return MarketVotesOut(
            market_id=market_id,
            kind=kind,
            tally=TallyOut(yes=tally.yes, no=tally.no, total=tally.total),
            items=[
                VoteOut(
                    wallet=r.user_wallet,
                    vote=r.vote,
                    voted_at=r.voted_at,
                    tx_signature=r.tx_signature,
                    eligibility=eligibility_out(r.tx_signature, r.eligibility),
                )
                for r in rows[:limit]
            ],
            next_cursor=next_cursor,
            submitted=submitted,
            waiting=await self._waiting(kind, market_id, tally, submitted),
        )

    async def _waiting(
        self,
        kind: VoteKind,
        market_id: str,
        tally: Tally,
        submitted: SubmittedTallyOut | None,
    ) -> str | None:
        """Why a disputed market's vote is not being decided: the program refuses a dispute
        tally without votes (NoVotesRecorded), so such a dispute waits for its first vote."""
        if kind is not VoteKind.DISPUTE or submitted is not None or tally.total > 0:
            return None
        state = await self.session.scalar(select(Market.state).where(Market.id == market_id))
        return NO_VOTES_REASON if state == MarketState.DISPUTED.value else None
