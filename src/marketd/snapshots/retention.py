"""The retention worker: unpin snapshots past ``SNAPSHOT_RETENTION_DAYS`` from every store.

Daily (``PRUNE_CRON``) under the ``snapshots-prune`` lock. A pruned snapshot keeps its row
(status ``pruned``) and its ``ipfs_anchors`` row, so its CID stays on record and anyone who
kept the content can still prove it. Repeating a prune finds nothing left to do. The local
store's blocks are garbage-collected afterwards, but only while no snapshot run can be adding
blocks (it also takes the ``snapshots`` lock; when busy, collection waits for the next day).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from marketd.config import SnapshotSettings
from marketd.core.container import Container
from marketd.snapshots.service import PruneResult, SnapshotService
from marketd.snapshots.stores import SnapshotStores, build_stores

log = structlog.get_logger("marketd.snapshots")

PRUNE_LOCK = "snapshots-prune"
GC_LOCK = "snapshots"  # the snapshot run's lock: no blocks are being added while it is held


@dataclass
class PruneRun:
    result: PruneResult
    collected_blocks: int | None  # None: collection skipped (no local store, or lock busy)


async def run_prune(
    container: Container,
    *,
    config: SnapshotSettings | None = None,
    stores: SnapshotStores | None = None,
    now: datetime | None = None,
) -> PruneRun | None:
    """Prune once; None when another instance holds the lock."""
    config = config or container.settings.snapshots
    now = now or datetime.now(UTC)
    async with container.locks.hold(PRUNE_LOCK, config.snapshot_lock_ttl_seconds) as lease:
        if lease is None:
            await log.ainfo("prune skipped: another instance holds the lock")
            return None
        owned = stores is None
        stores = stores or build_stores(container.settings, config)
        try:
            service = SnapshotService(container.database, container.bus, stores, config)
            result = await service.prune(now.astimezone(UTC).date())
            collected = await _collect_local(container, stores, config)
        finally:
            if owned:
                await stores.aclose()
    return PruneRun(result, collected)


async def _collect_local(
    container: Container, stores: SnapshotStores, config: SnapshotSettings
) -> int | None:
    if stores.local is None:
        return None
    async with container.locks.hold(GC_LOCK, config.snapshot_lock_ttl_seconds) as lease:
        if lease is None:
            await log.ainfo("local block collection skipped: a snapshot run is in progress")
            return None
        deleted = await asyncio.to_thread(stores.local.gc)
    await log.ainfo("local blocks collected", deleted=deleted)
    return deleted
