"""Vote routes: cast a proposal or dispute vote; a market's votes (listed under the market)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from marketd.auth.dependencies import CurrentWallet
from marketd.core.openapi import problems
from marketd.core.schemas import Cursor, MarketId
from marketd.votes.dependencies import EligibilityDep, VoteReadsDep, VoteServiceDep
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import MarketVotesOut, VoteAccepted, VoteCreate

casting = APIRouter(prefix="/api/votes", tags=["votes"])
by_market = APIRouter(prefix="/api/markets", tags=["markets"])

INELIGIBLE = (
    "`vote-ineligible`: the wallet does not meet the off-chain vote's eligibility strategies "
    "(VOTE_ELIGIBILITY / DISPUTE_VOTE_ELIGIBILITY). `reason`: the first strategy not met; "
    "`required`: every strategy with what it asks (`strategy`, `required`); `unmet`: those "
    "not met, with what the wallet has (`value`). An on-chain vote always counts."
)
UNCHECKABLE = (
    "`eligibility-unavailable`: a chain strategy is configured but the chain cannot be read "
    "(`reason`: `no-chain` without SOLANA_RPC_URL, `rpc-unavailable` with `Retry-After`). "
    "The vote is not stored."
)


@casting.post(
    "/proposal",
    response_model=VoteAccepted,
    responses=problems(
        {
            404: "No market with this `market_id`.",
            403: INELIGIBLE,
            409: "`voting-closed`: the market is not PROPOSED (`state`); `voted-on-chain`: "
            "this wallet's on-chain vote for the market is final.",
            503: UNCHECKABLE,
        }
    ),
)
async def vote_on_proposal(
    body: VoteCreate,
    wallet: CurrentWallet,
    votes: VoteServiceDep,
    eligibility: EligibilityDep,
) -> VoteAccepted:
    """Like (true) or dislike (false) a PROPOSED market; a new vote replaces the wallet's last."""
    return await votes.cast(VoteKind.PROPOSAL, body.market_id, wallet, body.vote, eligibility)


@casting.post(
    "/dispute",
    response_model=VoteAccepted,
    responses=problems(
        {
            404: "No market with this `market_id`.",
            403: INELIGIBLE,
            409: "`voting-closed`: the market is not DISPUTED (`state`); `voted-on-chain`: "
            "this wallet's on-chain vote for the market is final.",
            503: UNCHECKABLE,
        }
    ),
)
async def vote_on_dispute(
    body: VoteCreate,
    wallet: CurrentWallet,
    votes: VoteServiceDep,
    eligibility: EligibilityDep,
) -> VoteAccepted:
    """Agree (true) or disagree (false) with the dispute of a DISPUTED market."""
    return await votes.cast(VoteKind.DISPUTE, body.market_id, wallet, body.vote, eligibility)


@by_market.get(
    "/{market_id}/votes",
    response_model=MarketVotesOut,
    responses=problems(
        {
            404: "No market with this id.",
            422: "Also `invalid-cursor`: the cursor is malformed or from another listing.",
        }
    ),
)
async def market_votes(
    market_id: MarketId,
    reads: VoteReadsDep,
    kind: VoteKind = VoteKind.PROPOSAL,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor | None = None,
) -> Response:
    """The tally and every counted vote (by wallet), so anyone can recount."""
    return await reads.market_votes(kind, market_id, limit, cursor)


router = APIRouter()
"""Every vote route: casting, and the votes listed under a market."""
for _part in (casting, by_market):
    router.include_router(_part)
