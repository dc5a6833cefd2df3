"""User routes: a wallet's profile, votes, positions and portfolio (its trades: trades/)."""

from __future__ import annotations

from fastapi import APIRouter

from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.schemas import Cursor, Page, WalletId
from marketd.users.dependencies import UserReadServiceDep
from marketd.users.schemas import PortfolioOut, PositionOut, UserOut, UserVoteOut

router = APIRouter(prefix="/api/users", tags=["users"])


@router.get(
    "/{wallet}", response_model=UserOut, responses=problems({404: "No user with this wallet."})
)
async def user_profile(wallet: WalletId, users: UserReadServiceDep) -> UserOut:
    """A wallet's profile and activity totals."""
    return await users.profile(wallet)


@router.get(
    "/{wallet}/votes",
    response_model=Page[UserVoteOut],
    responses=problems(
        {422: "Also `invalid-cursor`: the cursor is malformed or from another listing."}
    ),
)
async def user_votes(
    wallet: WalletId,
    users: UserReadServiceDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Page[UserVoteOut]:
    """A wallet's proposal and dispute votes, newest first."""
    return await users.votes(wallet, limit, cursor)


@router.get(
    "/{wallet}/positions",
    response_model=Page[PositionOut],
    responses=problems(
        {422: "Also `invalid-cursor`: the cursor is malformed or from another listing."}
    ),
)
async def user_positions(
    wallet: WalletId,
    users: UserReadServiceDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Page[PositionOut]:
    """A wallet's positions, by market: each with its market's question, state and prices,
    its current value, cost basis, unrealized and realized profit, ROI, and whether winnings
    are claimable or claimed. `GET /api/users/{wallet}/portfolio` sums them."""
    return await users.positions(wallet, limit, cursor)


@router.get("/{wallet}/portfolio", response_model=PortfolioOut, responses=problems({}))
async def user_portfolio(wallet: WalletId, users: UserReadServiceDep) -> PortfolioOut:
    """A wallet's portfolio totals over all its positions (as each position counts them):
    value, invested, cost basis, unrealized and realized profit, ROI, claimable winnings. A
    wallet without positions has zeros."""
    return await users.portfolio(wallet)
