"""`submitted`: the tally a market's chain action carried, as `GET /api/markets/{id}/votes`
shows it (the outbox row's evidence and where the action stands)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.actions import Outcome
from marketd.chain.outbox import outcome_of
from marketd.models import ChainOutbox
from marketd.votes.evidence import evidence_votes
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import CountedVoteOut, SubmittedTallyOut, TallyOut
from marketd.votes.tally_repository import TallyRepository


def submitted_out(row: ChainOutbox) -> SubmittedTallyOut:
    payload = row.payload or {}
    tally = payload.get("tally") or {}
    outcome = outcome_of(row)
    return SubmittedTallyOut(
        intent=row.intent,
        status=row.status,
        outcome=outcome,
        awaiting_admin_approval=outcome == Outcome.AWAITING_ADMIN_APPROVAL,
        signature=row.signature,
        error=row.last_error,
        decision=str(payload.get("decision", "")),
        tally=TallyOut(
            yes=int(tally.get("yes", 0)),
            no=int(tally.get("no", 0)),
            total=int(tally.get("total", 0)),
        ),
        threshold_bps=int(payload.get("threshold_bps", 0)),
        threshold_source=str(payload.get("threshold_source", "")),
        min_votes=int(payload.get("min_votes", 0)),
        tallied_at=datetime.fromisoformat(
            str(payload.get("tallied_at", row.created_at.isoformat()))
        ),
        confirmed_at=row.confirmed_at,
        votes=[
            CountedVoteOut(
                wallet=vote.wallet, vote=vote.vote, voted_at=vote.voted_at, on_chain=vote.on_chain
            )
            for vote in evidence_votes(payload)
        ],
    )


async def submitted_tally(
    session: AsyncSession, kind: VoteKind, market_id: str
) -> SubmittedTallyOut | None:
    row = await TallyRepository(session).action(kind, market_id)
    return None if row is None else submitted_out(row)
