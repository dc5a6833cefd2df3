from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from starlette.responses import Response

from marketd.auth.dependencies import CurrentWallet
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.responses import no_content
from marketd.core.schemas import Cursor, MarketId, Page
from marketd.discussions.schemas import DiscussionCreate, DiscussionOut
from marketd.discussions.service import DiscussionService
from marketd.markets.dependencies import MarketCacheDep as Cache

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
    container: ContainerDep,
    cache: Cache,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Response:
    """A market's posts, newest first (deleted posts are left out)."""

    async def render() -> Page[DiscussionOut]:
        async with container.database.session(read_only=True) as session:
            return await DiscussionService(session, container.bus).thread(market_id, limit, cursor)

    hot_page = None if cursor else f"discussions:{limit}"
    return await cache.discussion(market_id, hot_page, render)


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
    session: SessionDep,
    container: ContainerDep,
    cache: Cache,
) -> DiscussionOut:
    """Post to a market's discussion (1-5,000 characters after trimming); a CANCELLED or
    FINALIZED market takes no new posts (409, naming its state)."""
    return await DiscussionService(session, container.bus, cache).post(wallet, body)


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
    session: SessionDep,
    container: ContainerDep,
    cache: Cache,
) -> Response:
    """Soft-delete your own post (403 for anyone else's)."""
    await DiscussionService(session, container.bus, cache).delete(wallet, post_id)
    return no_content()
