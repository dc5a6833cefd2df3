"""Snapshot routes: a market's snapshots, and a snapshot's verified content."""

from __future__ import annotations

from fastapi import APIRouter, Response

from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.schemas import Cursor, MarketId, Page, Text
from marketd.markets.dependencies import MarketServiceDep
from marketd.snapshots.dependencies import SnapshotServiceDep
from marketd.snapshots.schemas import SnapshotOut

router = APIRouter(tags=["snapshots"])


@router.get(
    "/api/markets/{market_id}/snapshots",
    response_model=Page[SnapshotOut],
    responses=problems(
        {
            404: "No market with this id.",
            422: "Also `invalid-cursor`: the cursor is malformed or from another listing.",
        }
    ),
)
async def market_snapshots(
    market_id: MarketId,
    snapshots: SnapshotServiceDep,
    markets: MarketServiceDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Page[SnapshotOut]:
    """A market's daily discussion snapshots, newest day first."""
    await markets.require_market(market_id)
    return await snapshots.market_snapshots(market_id, limit, cursor)


@router.get(
    "/api/snapshots/{cid}",
    response_class=Response,
    responses={
        200: {"content": {"application/json": {}}, "description": "The snapshot document"},
        **problems(
            {
                404: "No snapshot with this CID.",
                422: "`invalid-cid`: not a CID.",
                502: "`snapshot-unavailable`: known, but no source served content matching the "
                "CID (`cid`, `gateways`, `reason`).",
            }
        ),
    },
)
async def snapshot_content(cid: Text, snapshots: SnapshotServiceDep) -> Response:
    """The snapshot document, byte for byte as addressed by its CID (checked before it is
    served), from the local store or through the configured gateways."""
    canonical, data = await snapshots.content(cid)
    return Response(
        data,
        media_type="application/json",
        headers={
            "ETag": f'"{canonical}"',
            "X-Ipfs-Path": f"/ipfs/{canonical}",
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )
