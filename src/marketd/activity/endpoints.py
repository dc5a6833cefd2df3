from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from marketd.activity.rules import ActivityKind
from marketd.activity.schemas import ActivityOut
from marketd.activity.service import ActivityService, listing_name
from marketd.core.deps import ContainerDep
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.schemas import Cursor, Page
from marketd.markets.dependencies import MarketCacheDep as Cache

router = APIRouter(prefix="/api/activity", tags=["activity"])


@router.get(
    "",
    response_model=Page[ActivityOut],
    responses=problems(
        {422: "Also `invalid-cursor`: the cursor is malformed or from another listing."}
    ),
)
async def activity(
    container: ContainerDep,
    cache: Cache,
    kind: Annotated[
        list[ActivityKind] | None,
        Query(description="Only these kinds (repeat the parameter for several); all by default"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Response:
    """The newest trades, votes, new markets and state changes across all markets, newest
    first. First pages are served from the listing cache (dropped whenever the indexer or the
    API changes a market; an off-chain vote shows within the cache's 10 s). The same items
    arrive live on the WebSocket's `activity` channel (`kinds` filters them there)."""
    kinds = sorted(set(kind or ActivityKind))

    async def render() -> Page[ActivityOut]:
        async with container.database.session(read_only=True) as session:
            return await ActivityService(session).feed(kinds, limit, cursor)

    hot_page = None if cursor else f"{listing_name(kinds)}|{limit}"
    return await cache.listing(hot_page, render)
