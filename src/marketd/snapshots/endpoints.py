"""Snapshot routes: a market's snapshots, and a snapshot's verified content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.schemas import Page
from marketd.markets.service import MarketService
from marketd.snapshots.config import SnapshotSettings, snapshot_config
from marketd.snapshots.schemas import SnapshotOut
from marketd.snapshots.service import SnapshotService
from marketd.snapshots.stores import build_stores

router = APIRouter(tags=["snapshots"])


def get_snapshot_config(container: ContainerDep) -> SnapshotSettings:
    """Overridable (``app.dependency_overrides``) until the settings are merged."""
    return snapshot_config(container.settings)


async def snapshot_service(
    container: ContainerDep, config: Annotated[SnapshotSettings, Depends(get_snapshot_config)]
) -> AsyncIterator[SnapshotService]:
    stores = build_stores(container.settings, config)
    try:
        yield SnapshotService(container.database, container.bus, stores, config)
    finally:
        await stores.aclose()


Snapshots = Annotated[SnapshotService, Depends(snapshot_service)]


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
    market_id: str,
    snapshots: Snapshots,
    session: SessionDep,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[SnapshotOut]:
    """A market's daily discussion snapshots, newest day first."""
    await MarketService(session, container.settings, container.bus).require_market(market_id)
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
async def snapshot_content(cid: str, snapshots: Snapshots) -> Response:
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
