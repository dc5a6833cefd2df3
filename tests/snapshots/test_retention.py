"""Retention: snapshots past the configured age are unpinned everywhere and marked pruned."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marketd.ipfs.blockstore import StoredContent
from marketd.ipfs.errors import BlockstoreError
from marketd.ipfs.local import LocalBlockstore
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile
from marketd.snapshots.retention import GC_LOCK, PRUNE_LOCK, PruneRun, run_prune
from marketd.snapshots.snapshotter import run_snapshot
from marketd.snapshots.stores import SnapshotStores

from ..helpers.snapshots import DAY, Snap, at, snapshot_settings


async def snapshot_days(snap: Snap, market: str, days: int) -> list[str]:
    cids = []
    for offset in range(days):
        day = DAY + timedelta(days=offset)
        await snap.post(market, f"post of day {offset}", at(day, 4))
        run = await run_snapshot(snap.container, day=day, config=snap.config)
        assert run is not None
        cids.append(run.pinned[0].cid)
    return cids


async def test_prune_unpins_marks_and_keeps_the_anchor(snap: Snap) -> None:
    market = await snap.market()
    old, kept = await snapshot_days(snap, market, 2)
    stores = snap.stores()
    assert stores.local is not None
    # 90 days after DAY + 1 day: DAY is past retention, DAY + 1 is exactly at the cutoff.
    now = at(DAY + timedelta(days=91), 3)

    result = await run_prune(snap.container, config=snap.config, now=now)
    assert isinstance(result, PruneRun)
    assert result.result.cutoff == DAY + timedelta(days=1)
    assert result.result.pruned == [old] and result.result.failed == {}
    assert result.collected_blocks == 1  # the old snapshot's single block
    assert not await stores.local.is_pinned(old)
    assert not await stores.local.has(old)
    assert await stores.local.is_pinned(kept)

    rows = await snap.rows(
        "SELECT cid, status, pruned_at FROM snapshot_pins ORDER BY snapshot_date"
    )
    assert [(r.cid, r.status) for r in rows] == [(old, "pruned"), (kept, "pinned")]
    assert rows[0].pruned_at is not None and rows[1].pruned_at is None
    anchors = await snap.rows("SELECT ipfs_hash FROM ipfs_anchors")
    assert sorted(a.ipfs_hash for a in anchors) == sorted([old, kept])

    again = await run_prune(snap.container, config=snap.config, now=now)
    assert again is not None and again.result.pruned == [] and again.collected_blocks == 0
    statuses = await snap.rows("SELECT status FROM snapshot_pins ORDER BY snapshot_date")
    assert [r.status for r in statuses] == ["pruned", "pinned"]


async def test_retention_days_are_configurable(snap: Snap) -> None:
    market = await snap.market()
    cids = await snapshot_days(snap, market, 3)
    config = snapshot_settings(snapshot_retention_days=1)
    result = await run_prune(snap.container, config=config, now=at(DAY + timedelta(days=3), 0))
    assert result is not None and result.result.pruned == cids[:2]


class UnpinFailsStore:
    name = "stubborn"

    def __init__(self, local: LocalBlockstore) -> None:
        self.local = local

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        return await self.local.put(data, profile)

    async def unpin(self, cid: Any) -> None:
        raise BlockstoreError("pin/rm refused")


async def test_a_failed_unpin_leaves_the_snapshot_pinned(snap: Snap) -> None:
    market = await snap.market()
    (cid,) = await snapshot_days(snap, market, 1)
    local = LocalBlockstore(snap.container.settings.data_dir / "ipfs")
    stubborn: Any = SnapshotStores(store=UnpinFailsStore(local), names=["stubborn"])
    now = at(DAY + timedelta(days=200), 0)
    result = await run_prune(snap.container, config=snap.config, stores=stubborn, now=now)
    assert result is not None and result.result.pruned == []
    assert "pin/rm refused" in result.result.failed[cid]
    assert result.collected_blocks is None  # no local store among these stores
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pinned"]

    healed = await run_prune(snap.container, config=snap.config, now=now)
    assert healed is not None and healed.result.pruned == [cid]


async def test_prune_is_skipped_while_another_instance_prunes(snap: Snap) -> None:
    market = await snap.market()
    await snapshot_days(snap, market, 1)
    async with snap.container.locks.hold(PRUNE_LOCK, 30) as lease:
        assert lease is not None
        now = at(DAY + timedelta(days=200), 0)
        assert await run_prune(snap.container, config=snap.config, now=now) is None
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pinned"]


async def test_block_collection_waits_for_a_running_snapshot(snap: Snap) -> None:
    market = await snap.market()
    (cid,) = await snapshot_days(snap, market, 1)
    local = LocalBlockstore(snap.container.settings.data_dir / "ipfs")
    async with snap.container.locks.hold(GC_LOCK, 30) as lease:
        assert lease is not None
        now = at(DAY + timedelta(days=200), 0)
        result = await run_prune(snap.container, config=snap.config, now=now)
    assert result is not None and result.result.pruned == [cid]
    assert result.collected_blocks is None
    assert not await local.is_pinned(cid)
    assert await local.has(cid)  # unpinned, collected by a later prune
