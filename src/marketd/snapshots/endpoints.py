"""Snapshot routes: a market's snapshots, and a snapshot's verified content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from marketd.config import SnapshotSettings
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.schemas import Cursor, MarketId, Page, Text
from marketd.markets.service import MarketService
from marketd.snapshots.schemas import SnapshotOut
from marketd.snapshots.service import SnapshotService
from marketd.snapshots.stores import SnapshotStores, build_stores

router = APIRouter(tags=["snapshots"])


async def get_snapshot_config(container: ContainerDep) -> SnapshotSettings:
    """The process's snapshot settings (``settings.snapshots``); tests override it."""
    return container.settings.snapshots


@dataclass(frozen=True)
class _BuiltStores:
    config: SnapshotSettings
    stores: SnapshotStores


async def snapshot_service(
    request: Request,
    container: ContainerDep,
    config: Annotated[SnapshotSettings, Depends(get_snapshot_config)],
) -> SnapshotService:
    """The routes only read: their stores are built once per app (again only if the
    configuration changes), on the process's shared HTTP client, which the container closes.
    Building them per request cost a new client and TLS context (~0.8 MB) per call. Async so
    that it runs on the event loop, never twice at once in the thread pool."""
    built: _BuiltStores | None = getattr(request.app.state, "snapshot_stores", None)
    if built is None or built.config != config:
        stores = build_stores(container.settings, config, client=container.http)
        built = request.app.state.snapshot_stores = _BuiltStores(config, stores)
    return SnapshotService(container.database, container.bus, built.stores, config)


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
    market_id: MarketId,
    snapshots: Snapshots,
    session: SessionDep,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
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
async def snapshot_content(cid: Text, snapshots: Snapshots) -> Response:
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
