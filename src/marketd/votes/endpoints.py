from __future__ import annotations

from fastapi import APIRouter

from marketd.auth.dependencies import CurrentWallet
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.openapi import problems
from marketd.markets.dependencies import MarketCacheDep
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import VoteAccepted, VoteCreate
from marketd.votes.service import VoteService

router = APIRouter(prefix="/api/votes", tags=["votes"])


@router.post(
    "/proposal",
    response_model=VoteAccepted,
    responses=problems(
        {
            404: "No market with this `market_id`.",
            409: "`voting-closed`: the market is not PROPOSED (`state`); `voted-on-chain`: "
            "this wallet's on-chain vote for the market is final.",
        }
    ),
)
async def vote_on_proposal(
    body: VoteCreate,
    wallet: CurrentWallet,
    session: SessionDep,
    container: ContainerDep,
    cache: MarketCacheDep,
) -> VoteAccepted:
    """Like (true) or dislike (false) a PROPOSED market; a new vote replaces the wallet's last."""
    return await VoteService(session, container.bus, cache).cast(
        VoteKind.PROPOSAL, body.market_id, wallet, body.vote
    )


@router.post(
    "/dispute",
    response_model=VoteAccepted,
    responses=problems(
        {
            404: "No market with this `market_id`.",
            409: "`voting-closed`: the market is not DISPUTED (`state`); `voted-on-chain`: "
            "this wallet's on-chain vote for the market is final.",
        }
    ),
)
async def vote_on_dispute(
    body: VoteCreate,
    wallet: CurrentWallet,
    session: SessionDep,
    container: ContainerDep,
    cache: MarketCacheDep,
) -> VoteAccepted:
    """Agree (true) or disagree (false) with the dispute of a DISPUTED market."""
    return await VoteService(session, container.bus, cache).cast(
        VoteKind.DISPUTE, body.market_id, wallet, body.vote
    )
