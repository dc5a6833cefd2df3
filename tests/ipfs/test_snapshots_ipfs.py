"""Snapshots against the real IPFS peer: pinned on it, read back through untrusted gateways,
unpinned by retention, never doubled, crashed runs completed.

Lives here (not in tests/snapshots/) to see this directory's peer and gateway fixtures.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from marketd.config import SnapshotSettings
from marketd.ipfs.gateway import GatewayReader
from marketd.ipfs.kubo import KuboBlockstore
from marketd.snapshots.retention import run_prune
from marketd.snapshots.rules import parse_document
from marketd.snapshots.snapshotter import run_snapshot

from ..helpers.snapshots import Snap, at

if TYPE_CHECKING:
    from ..helpers.ipfs import Gateways, IpfsPeer


DAY = date(2026, 2, 2)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)  # markets exist well before the days snapshotted


def settings_for(peer: IpfsPeer, gateways: Gateways) -> SnapshotSettings:
    """The peer as the only store (no local copy), reads through [down, lying, honest]."""
    return SnapshotSettings(
        ipfs_api_url=peer.api_url,
        pinning_service_url=None,
        ipfs_local_copy=False,
        ipfs_gateways=[gateways.down, gateways.lying, gateways.honest],
        ipfs_gateway_timeout_seconds=10,
        ipfs_upload_attempts=2,
        ipfs_upload_backoff_seconds=0.05,
    )


def snap_for(api: Any, peer: IpfsPeer, gateways: Gateways) -> Snap:
    """The snapshot test helper, on the peer's configuration."""
    return Snap(api, settings_for(peer, gateways))


async def test_snapshot_pinned_on_the_peer_and_read_through_untrusted_gateways(
    api_factory: Callable[..., Any], ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways
) -> None:
    api = await api_factory()
    snap = snap_for(api, ipfs_peer, ipfs_trustless_gateways)
    config = snap.config
    market = await snap.market(created_at=CREATED)
    posted = [f"post {i}: the peer keeps this — ✓" for i in range(3)]
    for index, content in enumerate(posted):
        await snap.post(market, content, at(DAY, 12) + timedelta(minutes=index))

    run = await run_snapshot(api.container, day=DAY, config=config)
    assert run is not None and not run.failed
    (pinned,) = run.pinned
    kubo = KuboBlockstore(ipfs_peer.api_url)
    try:
        assert await kubo.is_pinned(pinned.cid)
    finally:
        await kubo.aclose()
    (row,) = await api.execute("SELECT status FROM snapshot_pins")
    assert row.status == "pinned"

    # Through the gateway list: the first is down, the second lies, the third is honest.
    reader = GatewayReader(config.ipfs_gateways, timeout=10)
    try:
        content = await reader.fetch(pinned.cid)
    finally:
        await reader.aclose()
    assert reader.stats.failures_of(ipfs_trustless_gateways.down) == {"unreachable": 1}
    assert reader.stats.failures_of(ipfs_trustless_gateways.lying) == {"bad_content": 1}
    assert [post["content"] for post in parse_document(content)["posts"]] == posted

    # The same through the API (no local copy: the gateways are the only source).
    snap.serve()
    response = await api.client.get(f"/api/snapshots/{pinned.cid}")
    assert response.status_code == 200, response.text
    assert response.content == content


async def test_rerun_adds_nothing_and_prune_unpins_from_the_peer(
    api_factory: Callable[..., Any], ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways
) -> None:
    api = await api_factory()
    snap = snap_for(api, ipfs_peer, ipfs_trustless_gateways)
    config = snap.config
    market = await snap.market(created_at=CREATED)
    await snap.post(market, "to be pruned one day", at(DAY, 12))
    first = await run_snapshot(api.container, day=DAY, config=config)
    assert first is not None
    cid = first.pinned[0].cid

    again = await run_snapshot(api.container, day=DAY, config=config)
    assert again is not None and again.created == 0 and again.pinned == []
    assert len(await api.execute("SELECT id FROM snapshot_pins")) == 1
    assert len(await api.execute("SELECT id FROM ipfs_anchors")) == 1

    kubo = KuboBlockstore(ipfs_peer.api_url)
    try:
        assert await kubo.is_pinned(cid)
        pruned = await run_prune(api.container, config=config, now=at(DAY + timedelta(days=91), 12))
        assert pruned is not None and pruned.result.pruned == [cid]
        assert pruned.collected_blocks is None  # no local store configured
        assert not await kubo.is_pinned(cid)
    finally:
        await kubo.aclose()
    (row,) = await api.execute("SELECT status FROM snapshot_pins")
    assert row.status == "pruned"
    anchors = await api.execute("SELECT ipfs_hash FROM ipfs_anchors")
    assert [a.ipfs_hash for a in anchors] == [cid]


async def test_crashed_run_is_completed_on_the_peer(
    api_factory: Callable[..., Any], ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways
) -> None:
    api = await api_factory()
    snap = snap_for(api, ipfs_peer, ipfs_trustless_gateways)
    config = snap.config
    market = await snap.market(created_at=CREATED)
    # A day of its own, so that no earlier test pinned the same document.
    day = DAY + timedelta(days=7)
    await snap.post(market, f"written before the crash {uuid.uuid4()}", at(day, 12))
    stores = snap.stores()
    try:
        service = snap.service(stores)
        assert await service.prepare(day) == 1
    finally:
        await stores.aclose()
    (pending,) = await api.execute("SELECT cid, status FROM snapshot_pins")
    kubo = KuboBlockstore(ipfs_peer.api_url)
    try:
        assert pending.status == "pending"
        assert not await kubo.is_pinned(pending.cid)
        run = await run_snapshot(api.container, day=day, config=config)
        assert run is not None and run.created == 0
        assert [p.cid for p in run.pinned] == [pending.cid]
        assert await kubo.is_pinned(pending.cid)
    finally:
        await kubo.aclose()
    (row,) = await api.execute("SELECT status FROM snapshot_pins")
    assert row.status == "pinned"


async def test_a_day_of_many_markets_goes_to_the_peer_in_batched_cars(
    api_factory: Callable[..., Any], ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways
) -> None:
    api = await api_factory()
    snap = snap_for(api, ipfs_peer, ipfs_trustless_gateways)
    config = snap.config
    day = DAY + timedelta(days=14)  # a day of its own: no earlier test pinned these documents
    markets = [await snap.market(created_at=CREATED) for _ in range(6)]
    for index, market in enumerate(markets):
        for number in range(index):  # from no posts to five
            await snap.post(market, f"{market} post {number}", at(day, 12))

    run = await run_snapshot(api.container, day=day, config=config)
    assert run is not None and not run.failed
    assert sorted(p.market_id for p in run.pinned) == sorted(markets)
    rows = await api.execute("SELECT cid, status, document, discussions_count FROM snapshot_pins")
    assert sorted(r.discussions_count for r in rows) == list(range(6))
    kubo = KuboBlockstore(ipfs_peer.api_url, block_timeout=2)
    try:
        for row in rows:
            assert row.status == "pinned"
            assert await kubo.is_pinned(row.cid)
            assert await kubo.get(row.cid) == bytes(row.document)
    finally:
        await kubo.aclose()
    assert len(await api.execute("SELECT id FROM ipfs_anchors")) == 6
