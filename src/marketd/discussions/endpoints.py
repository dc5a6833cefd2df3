"""Discussion routes: a market's thread, post, delete your own post."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from starlette.responses import Response

from marketd.auth.dependencies import CurrentWallet
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.responses import no_content
from marketd.core.schemas import Cursor, MarketId, Page
from marketd.discussions.dependencies import DiscussionReadsDep, DiscussionServiceDep
from marketd.discussions.schemas import DiscussionCreate, DiscussionOut

router = APIRouter(prefix="/api/discussions", tags=["discussions"])


@router.get(
    "/{market_id}",
    response_model=Page[DiscussionOut],
    responses=problems(
        {
            404: "No market with this id.",
            422: "Also `invalid-cursor`: the cursor is malformed or from another listing.",
        }
    ),
)
async def market_thread(
    market_id: MarketId,
    reads: DiscussionReadsDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Response:
    """A market's posts, newest first (deleted posts are left out)."""
    return await reads.thread(market_id, limit, cursor)


@router.post(
    "",
    response_model=DiscussionOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(
        {
            404: "No market with this `market_id`.",
            409: "`discussion-closed`: the market is CANCELLED or FINALIZED (`state`).",
        }
    ),
)
async def post_discussion(
    body: DiscussionCreate,
    wallet: CurrentWallet,
    discussions: DiscussionServiceDep,
) -> DiscussionOut:
    """Post to a market's discussion (1-5,000 characters after trimming); a CANCELLED or
    FINALIZED market takes no new posts (409, naming its state)."""
    return await discussions.post(wallet, body)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(
        {
            403: "The post is someone else's (`forbidden`).",
            404: "No such post, or it was already deleted.",
        }
    ),
)
async def delete_discussion(
    post_id: uuid.UUID,
    wallet: CurrentWallet,
    discussions: DiscussionServiceDep,
) -> Response:
    """Soft-delete your own post (403 for anyone else's)."""
    await discussions.delete(wallet, post_id)
    return no_content()
