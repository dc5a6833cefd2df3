"""Archiving a day: content, anchors, events, idempotence, crash completion, failures.

Runs on PostgreSQL and on the embedded SQLite (the ``api_factory`` backends)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from marketd.core.errors import NotFound
from marketd.ipfs.blockstore import StoredContent, put_many
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str
from marketd.ipfs.errors import BlockstoreError, CidMismatchError
from marketd.ipfs.profile import DEFAULT_PROFILE, UNIXFS_V0_2015, LayoutProfile
from marketd.snapshots.rules import parse_document
from marketd.snapshots.service import DayNotOver, MarketNotSnapshotted, SnapshotRun
from marketd.snapshots.snapshotter import SNAPSHOT_LOCK, run_snapshot
from marketd.snapshots.stores import SnapshotStores

from ..helpers.snapshots import DAY, Snap, at, snapshot_settings

SENTINEL = {"type": "sentinel"}


def as_list(value: Any) -> Any:
    """A JSON column read through raw SQL: text on some drivers, parsed on others."""
    return json.loads(value) if isinstance(value, str) else value


async def drain(events: Any) -> list[dict[str, Any]]:
    """Every event published before the sentinel (which proves nothing else is in flight)."""
    received = []
    while (event := await asyncio.wait_for(events.get(), 5)) != SENTINEL:
        received.append(event)
    return received


async def test_day_snapshot_content_anchors_and_events(snap: Snap) -> None:
    active, disputed = await snap.market("ACTIVE"), await snap.market("DISPUTED")
    proposed = await snap.market("PROPOSED")
    first = await snap.post(active, "first of the day", at(DAY, 0), wallet="WalletA")
    second = await snap.post(active, 'ünïcödé ✓ and "quotes"', at(DAY, 23.999))
    await snap.post(active, "deleted", at(DAY, 12), deleted=True)
    await snap.post(active, "the day before", at(DAY, -0.0001))
    await snap.post(active, "the next day", at(DAY, 24))
    await snap.post(proposed, "not live", at(DAY, 3))
    for vote in (True, True, False):
        await snap.vote(disputed, "dispute", vote)
    await snap.vote(disputed, "proposal", True)

    async with snap.container.bus.subscribe("snapshots") as events:
        run = await run_snapshot(snap.container, day=DAY, config=snap.config)
        await snap.container.bus.publish("snapshots", SENTINEL)
        published = await drain(events)

    assert isinstance(run, SnapshotRun)
    assert run.created == 2 and not run.failed
    pins = {
        row.market_id: row
        for row in await snap.rows(
            "SELECT market_id, cid, status, document, discussions_count, previous_cid, stores,"
            " size FROM snapshot_pins"
        )
    }
    assert set(pins) == {active, disputed}
    assert all(row.status == "pinned" for row in pins.values())

    doc = parse_document(bytes(pins[active].document))
    assert doc["market_id"] == active and doc["snapshot_date"] == DAY.isoformat()
    assert [p["id"] for p in doc["posts"]] == [first, second]
    assert doc["posts"][0]["wallet"] == "WalletA"
    assert doc["posts"][1]["content"] == 'ünïcödé ✓ and "quotes"'
    assert doc["previous_cid"] is None
    assert pins[active].discussions_count == 2
    assert pins[active].size == len(bytes(pins[active].document))
    assert str(file_cid(bytes(pins[active].document))) == pins[active].cid

    votes = parse_document(bytes(pins[disputed].document))["votes"]
    assert votes == {"proposal": {"yes": 1, "no": 0}, "dispute": {"yes": 2, "no": 1}}

    # The content is in the local store (the embedded default), pinned, and verifies.
    stores = snap.stores()
    assert await stores.store.get(pins[active].cid) == bytes(pins[active].document)
    assert stores.local is not None and await stores.local.is_pinned(pins[active].cid)
    assert as_list(pins[active].stores) == ["local"]

    anchors = await snap.rows("SELECT market_id, ipfs_hash, discussions_count FROM ipfs_anchors")
    assert sorted((a.market_id, a.ipfs_hash, a.discussions_count) for a in anchors) == sorted(
        [(active, pins[active].cid, 2), (disputed, pins[disputed].cid, 0)]
    )
    assert all(isinstance(event.pop("eventId"), str) for event in published)
    assert sorted(published, key=lambda e: e["marketId"]) == sorted(
        [
            {
                "type": "snapshot",
                "marketId": market,
                "cid": pins[market].cid,
                "date": DAY.isoformat(),
                "discussionsCount": pins[market].discussions_count,
            }
            for market in (active, disputed)
        ],
        key=lambda e: e["marketId"],
    )


async def test_rerunning_a_day_adds_nothing(snap: Snap) -> None:
    market = await snap.market()
    await snap.post(market, "hello", at(DAY, 5))
    first = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert first is not None and len(first.pinned) == 1
    # A post made after the run (back-dated into the day) does not re-open the snapshot.
    await snap.post(market, "late", at(DAY, 6))

    async with snap.container.bus.subscribe("snapshots") as events:
        again = await run_snapshot(snap.container, day=DAY, config=snap.config)
        await snap.container.bus.publish("snapshots", SENTINEL)
        assert await drain(events) == []
    assert again is not None and again.created == 0 and again.pinned == [] and not again.failed
    assert len(await snap.rows("SELECT id FROM snapshot_pins")) == 1
    assert len(await snap.rows("SELECT id FROM ipfs_anchors")) == 1


async def test_snapshots_form_a_hash_chain(snap: Snap) -> None:
    market = await snap.market()
    cids = []
    for offset in range(3):
        day = DAY + timedelta(days=offset)
        await snap.post(market, f"day {offset}", at(day, 1))
        run = await run_snapshot(snap.container, day=day, config=snap.config)
        assert run is not None
        cids.append(run.pinned[0].cid)
    rows = await snap.rows(
        "SELECT cid, previous_cid, document FROM snapshot_pins ORDER BY snapshot_date"
    )
    assert [r.cid for r in rows] == cids
    assert [r.previous_cid for r in rows] == [None, cids[0], cids[1]]
    assert [parse_document(bytes(r.document))["previous_cid"] for r in rows] == [
        None,
        cids[0],
        cids[1],
    ]


async def test_crashed_run_is_completed_by_the_next(snap: Snap) -> None:
    market = await snap.market()
    await snap.post(market, "before the crash", at(DAY, 2))
    stores = snap.stores()
    # The crash: the pending row (with its document) is written, nothing is pinned.
    assert await snap.service(stores).prepare(DAY) == 1
    (pending,) = await snap.rows("SELECT cid, status FROM snapshot_pins")
    assert pending.status == "pending"
    assert not await stores.store.has(pending.cid)
    assert await snap.rows("SELECT id FROM ipfs_anchors") == []

    # The next run (the following day) completes it and snapshots its own day.
    async with snap.container.bus.subscribe("snapshots") as events:
        run = await run_snapshot(snap.container, day=DAY + timedelta(days=1), config=snap.config)
        await snap.container.bus.publish("snapshots", SENTINEL)
        published = await drain(events)
    assert run is not None and run.created == 1
    assert sorted(p.day for p in run.pinned) == [DAY, DAY + timedelta(days=1)]
    assert {e["date"] for e in published} == {
        DAY.isoformat(),
        (DAY + timedelta(days=1)).isoformat(),
    }
    rows = await snap.rows(
        "SELECT cid, status, previous_cid FROM snapshot_pins ORDER BY snapshot_date"
    )
    assert [r.status for r in rows] == ["pinned", "pinned"]
    assert rows[0].cid == pending.cid and rows[1].previous_cid == pending.cid
    (document,) = await snap.rows(
        "SELECT document FROM snapshot_pins WHERE cid = :c", c=pending.cid
    )
    assert await stores.store.get(pending.cid) == bytes(document.document)
    assert len(await snap.rows("SELECT id FROM ipfs_anchors")) == 2


async def test_uploaded_but_unrecorded_snapshot_is_recorded_once(snap: Snap) -> None:
    market = await snap.market()
    stores = snap.stores()
    service = snap.service(stores)
    await service.prepare(DAY)
    (row,) = await snap.rows("SELECT document FROM snapshot_pins")
    await stores.store.put(bytes(row.document))  # the crash came after the upload
    run = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert run is not None and [p.market_id for p in run.pinned] == [market]
    assert len(await snap.rows("SELECT id FROM ipfs_anchors")) == 1


class FailingStore:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        self.calls += 1
        raise BlockstoreError("remote is down")


class LyingStore:
    """Confirms uploads under the CID of other bytes."""

    name = "lying"

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        return StoredContent(file_cid(data + b" "), profile, len(data))


async def test_failed_upload_leaves_the_row_pending_for_the_next_run(snap: Snap) -> None:
    market = await snap.market()
    failing = FailingStore()
    broken: Any = SnapshotStores(store=failing, names=["failing"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=broken)
    assert run is not None and run.created == 1 and run.pinned == []
    assert list(run.failed) == [f"{market}/{DAY.isoformat()}"]
    assert "remote is down" in run.failed[f"{market}/{DAY.isoformat()}"]
    assert failing.calls == 1
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pending"]
    assert await snap.rows("SELECT id FROM ipfs_anchors") == []

    retry = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert retry is not None and retry.created == 0 and len(retry.pinned) == 1
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pinned"]


async def test_a_store_confirming_another_cid_fails_the_upload(snap: Snap) -> None:
    market = await snap.market()
    lying: Any = SnapshotStores(store=LyingStore(), names=["lying"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=lying)
    assert run is not None and run.pinned == []
    assert "store returned" in run.failed[f"{market}/{DAY.isoformat()}"]
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pending"]


async def test_one_market_only_and_its_errors(snap: Snap) -> None:
    chosen, other = await snap.market(), await snap.market("RESOLVING")
    proposed = await snap.market("PROPOSED")
    run = await run_snapshot(snap.container, market_id=chosen, day=DAY, config=snap.config)
    assert run is not None and [p.market_id for p in run.pinned] == [chosen]
    assert [r.market_id for r in await snap.rows("SELECT market_id FROM snapshot_pins")] == [chosen]
    with pytest.raises(NotFound):
        await run_snapshot(snap.container, market_id="no-such", day=DAY, config=snap.config)
    with pytest.raises(MarketNotSnapshotted, match="PROPOSED"):
        await run_snapshot(snap.container, market_id=proposed, day=DAY, config=snap.config)
    everyone = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert everyone is not None and [p.market_id for p in everyone.pinned] == [other]


async def test_states_are_configurable(snap: Snap) -> None:
    await snap.market("ACTIVE")
    proposed = await snap.market("PROPOSED")
    config = snapshot_settings(snapshot_market_states="PROPOSED")
    run = await run_snapshot(snap.container, day=DAY, config=config)
    assert run is not None and [p.market_id for p in run.pinned] == [proposed]


async def test_an_unfinished_day_is_refused(snap: Snap) -> None:
    await snap.market()
    now = at(DAY, 23.5)
    with pytest.raises(DayNotOver):
        await run_snapshot(snap.container, day=DAY, config=snap.config, now=now)
    # Without a day, the run takes the last complete one.
    run = await run_snapshot(snap.container, config=snap.config, now=now)
    assert run is not None and run.day == DAY - timedelta(days=1)
    assert await snap.rows("SELECT snapshot_date FROM snapshot_pins") != []


async def test_default_day_is_yesterday_utc(snap: Snap) -> None:
    run = await run_snapshot(snap.container, config=snap.config)
    assert run is not None
    assert run.day == datetime.now(UTC).date() - timedelta(days=1)


async def test_another_instance_holding_the_lock_skips_the_run(snap: Snap) -> None:
    await snap.market()
    async with snap.container.locks.hold(SNAPSHOT_LOCK, 30) as lease:
        assert lease is not None
        assert await run_snapshot(snap.container, day=DAY, config=snap.config) is None
    assert await snap.rows("SELECT id FROM snapshot_pins") == []


async def test_racing_prepares_create_one_row_per_market_and_day(snap: Snap) -> None:
    await snap.market()
    stores = snap.stores()
    created = await asyncio.gather(*(snap.service(stores).prepare(DAY) for _ in range(3)))
    assert sum(created) >= 1
    assert len(await snap.rows("SELECT id FROM snapshot_pins")) == 1


async def test_a_lost_lock_stops_pinning(snap: Snap) -> None:
    await snap.market()
    stores = snap.stores()
    service = snap.service(stores)
    await service.prepare(DAY)
    run = SnapshotRun(day=DAY)
    await service.pin_pending(run, should_stop=lambda: True)
    assert run.pinned == []
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pending"]


async def test_positional_market_and_day(snap: Snap) -> None:
    market = await snap.market()
    run = await run_snapshot(snap.container, market, date(2026, 4, 30), config=snap.config)
    assert run is not None and run.pinned[0].day == date(2026, 4, 30)


class RacedStore:
    """Uploads, but only after a second instance (past an expired lock) finished the run."""

    name = "raced"

    def __init__(self, snap: Snap) -> None:
        self.snap = snap
        self.real = snap.stores()
        self.raced = False

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        if not self.raced:
            self.raced = True
            await self.snap.service(self.real).pin_pending(SnapshotRun(day=DAY))
        return await self.real.store.put(data, profile)


async def test_a_row_recorded_by_a_racing_instance_gets_one_anchor(snap: Snap) -> None:
    await snap.market()
    raced: Any = SnapshotStores(store=RacedStore(snap), names=["raced"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=raced)
    assert run is not None and run.created == 1
    assert run.pinned == [] and run.failed == {}  # the other instance recorded it
    assert len(await snap.rows("SELECT id FROM ipfs_anchors")) == 1
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pinned"]


async def test_markets_created_after_the_day_are_left_out(snap: Snap) -> None:
    during = await snap.market(created_at=at(DAY, 23))
    await snap.market(created_at=at(DAY, 24))
    run = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert run is not None and [p.market_id for p in run.pinned] == [during]


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class BatchRecorder:
    """The local store, recording the batches it is given."""

    name = "local"

    def __init__(self, snap: Snap) -> None:
        self.real = snap.stores()
        self.batches: list[tuple[LayoutProfile, int]] = []

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        self.batches.append((profile, len(documents)))
        return await put_many(self.real.store, documents, profile)


async def test_a_day_is_uploaded_in_batches_and_counted(snap: Snap) -> None:
    markets = [await snap.market() for _ in range(3)]
    for market in markets:
        await snap.post(market, "one batch", at(DAY, 3))
    before = counted("marketd_snapshots_pinned_total")
    recorder = BatchRecorder(snap)
    stores: Any = SnapshotStores(store=recorder, names=["local"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=stores)
    assert run is not None and sorted(p.market_id for p in run.pinned) == sorted(markets)
    assert recorder.batches == [(DEFAULT_PROFILE, 3)]
    assert counted("marketd_snapshots_pinned_total") == before + 3
    for row in await snap.rows("SELECT cid, document FROM snapshot_pins"):
        assert await recorder.real.store.get(row.cid) == bytes(row.document)


async def test_rows_keep_the_layout_profile_they_were_recorded_with(snap: Snap) -> None:
    """A pending row written under another profile (an older release) is uploaded with it."""
    old, new = await snap.market(), await snap.market()
    await snap.service(snap.stores()).prepare(DAY)
    (row,) = await snap.rows("SELECT document FROM snapshot_pins WHERE market_id = :m", m=old)
    v0 = cid_to_str(file_cid(bytes(row.document), UNIXFS_V0_2015))
    await snap.rows(
        "UPDATE snapshot_pins SET cid = :c, layout_profile = :p WHERE market_id = :m",
        c=v0,
        p=UNIXFS_V0_2015.name,
        m=old,
    )
    recorder = BatchRecorder(snap)
    stores: Any = SnapshotStores(store=recorder, names=["local"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=stores)
    assert run is not None and not run.failed
    assert {p.market_id: p.cid for p in run.pinned}[old] == v0
    assert sorted(recorder.batches, key=lambda b: b[0].name) == [
        (DEFAULT_PROFILE, 1),
        (UNIXFS_V0_2015, 1),
    ]
    assert await recorder.real.store.get(v0) == bytes(row.document)
    assert new in {p.market_id for p in run.pinned}


class MismatchingBatchStore:
    """A remote whose batch upload reports another CID (as KuboBlockstore.put_many raises)."""

    name = "mismatching"

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        raise CidMismatchError(self.name, "bafyrecorded", "bafyreported")


async def test_failures_are_counted_by_reason(snap: Snap) -> None:
    market = await snap.market()
    key = f"{market}/{DAY.isoformat()}"
    upload_before = counted("marketd_snapshots_failed_total", reason="upload")
    mismatch_before = counted("marketd_snapshots_failed_total", reason="cid_mismatch")

    broken: Any = SnapshotStores(store=FailingStore(), names=["failing"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=broken)
    assert run is not None and list(run.failed) == [key]
    assert counted("marketd_snapshots_failed_total", reason="upload") == upload_before + 1

    lying: Any = SnapshotStores(store=LyingStore(), names=["lying"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=lying)
    assert run is not None and "store returned" in run.failed[key]
    mismatching: Any = SnapshotStores(store=MismatchingBatchStore(), names=["mismatching"])
    run = await run_snapshot(snap.container, day=DAY, config=snap.config, stores=mismatching)
    assert run is not None and "bafyreported" in run.failed[key]
    assert counted("marketd_snapshots_failed_total", reason="cid_mismatch") == mismatch_before + 2
    assert [r.status for r in await snap.rows("SELECT status FROM snapshot_pins")] == ["pending"]
    assert await snap.rows("SELECT id FROM ipfs_anchors") == []


async def test_a_block_torn_by_a_crash_before_the_flush_is_completed(snap: Snap) -> None:
    """The local store flushes once per batch: a crash before that can leave a block empty
    under its name while the row is still pending; the next run must rewrite it."""
    market = await snap.market()
    await snap.post(market, "written, then the power went", at(DAY, 4))
    stores = snap.stores()
    await snap.service(stores).prepare(DAY)
    (row,) = await snap.rows("SELECT cid, document FROM snapshot_pins")
    assert stores.local is not None
    await stores.local.put(bytes(row.document))
    block = next((snap.container.settings.data_dir / "ipfs" / "blocks").rglob(row.cid))
    block.write_bytes(b"")  # what a crash before the flush may leave
    run = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert run is not None and [p.cid for p in run.pinned] == [row.cid]
    assert await stores.local.get(row.cid) == bytes(row.document)
