from __future__ import annotations

from fastapi import APIRouter

from marketd.auth.dependencies import CurrentWallet
from marketd.core.container import Container
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.openapi import problems
from marketd.markets.dependencies import MarketCacheDep
from marketd.votes.eligibility_service import EligibilityChecker
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import VoteAccepted, VoteCreate
from marketd.votes.service import VoteService

router = APIRouter(prefix="/api/votes", tags=["votes"])

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


def checker(container: Container) -> EligibilityChecker:
    return EligibilityChecker(
        container.settings, container.cache, container.database, container.chain_reader()
    )


@router.post(
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
    session: SessionDep,
    container: ContainerDep,
    cache: MarketCacheDep,
) -> VoteAccepted:
    """Like (true) or dislike (false) a PROPOSED market; a new vote replaces the wallet's last."""
    return await VoteService(session, container.bus, cache).cast(
        VoteKind.PROPOSAL, body.market_id, wallet, body.vote, checker(container)
    )


@router.post(
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
    session: SessionDep,
    container: ContainerDep,
    cache: MarketCacheDep,
) -> VoteAccepted:
    """Agree (true) or disagree (false) with the dispute of a DISPUTED market."""
    return await VoteService(session, container.bus, cache).cast(
        VoteKind.DISPUTE, body.market_id, wallet, body.vote, checker(container)
    )
