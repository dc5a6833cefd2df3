"""The activity feed's route: what happened on the platform, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from marketd.activity.dependencies import ActivityReadsDep
from marketd.activity.rules import ActivityKind
from marketd.activity.schemas import ActivityOut
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.schemas import Cursor, Page

router = APIRouter(prefix="/api/activity", tags=["activity"])


@router.get(
    "",
    response_model=Page[ActivityOut],
    responses=problems(
        {422: "Also `invalid-cursor`: the cursor is malformed or from another listing."}
    ),
)
async def activity(
    reads: ActivityReadsDep,
    kind: Annotated[
        list[ActivityKind] | None,
        Query(description="Only these kinds (repeat the parameter for several); all by default"),
    ] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Response:
    """The newest trades, votes, new markets and state changes across all markets, newest
    first. First pages are served from the listing cache (dropped whenever the indexer or the
    API changes a market; an off-chain vote shows within the cache's 10 s). The same items
    arrive live on the WebSocket's `activity` channel (`kinds` filters them there)."""
    kinds = sorted(set(kind or ActivityKind))
    return await reads.feed(kinds, limit, cursor)
