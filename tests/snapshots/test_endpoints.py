"""Snapshot routes over HTTP: a market's list and a snapshot's verified content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from multiformats import CID

from marketd.chain.addresses import new_market_id
from marketd.core.pagination import encode_cursor
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str
from marketd.models import IpfsAnchor
from marketd.snapshots.dependencies import get_snapshot_config
from marketd.snapshots.snapshotter import run_snapshot

from ..helpers.snapshots import DAY, Snap, at, snapshot_settings


async def test_market_snapshots_newest_first_with_cursor(snap: Snap) -> None:
    market = await snap.market()
    other = await snap.market()
    cids = []
    for offset in range(3):
        day = DAY + timedelta(days=offset)
        await snap.post(market, f"day {offset}", at(day, 9))
        run = await run_snapshot(snap.container, day=day, config=snap.config)
        assert run is not None
        cids.append(next(p.cid for p in run.pinned if p.market_id == market))
    snap.serve()

    first = await snap.api.client.get(f"/api/markets/{market}/snapshots", params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["cid"] for item in page["items"]] == [cids[2], cids[1]]
    newest = page["items"][0]
    assert newest["snapshot_date"] == (DAY + timedelta(days=2)).isoformat()
    assert newest["previous_cid"] == cids[1]
    assert newest["discussions_count"] == 1
    assert newest["status"] == "pinned"
    assert newest["layout_profile"] == "kubo-classic-cid-v1"
    assert datetime.fromisoformat(newest["window_start"]) == at(DAY + timedelta(days=2), 0)
    rest = await snap.api.client.get(
        f"/api/markets/{market}/snapshots", params={"cursor": page["next_cursor"]}
    )
    assert [item["cid"] for item in rest.json()["items"]] == [cids[0]]
    assert rest.json()["next_cursor"] is None

    # The routes without a test override read the settings from the environment.
    del snap.api.client._transport.app.dependency_overrides[get_snapshot_config]
    listing = await snap.api.client.get(f"/api/markets/{other}/snapshots")
    assert len(listing.json()["items"]) == 3
    assert not set(item["cid"] for item in listing.json()["items"]) & set(cids)


async def test_market_snapshots_errors(snap: Snap) -> None:
    market = await snap.market()
    snap.serve()
    unknown = await snap.api.client.get(f"/api/markets/{new_market_id()}/snapshots")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    bad = await snap.api.client.get(
        f"/api/markets/{market}/snapshots", params={"cursor": "not-a-cursor"}
    )
    assert bad.status_code == 422
    wrong_date = encode_cursor("snapshots", ["yesterday"])
    bad_date = await snap.api.client.get(
        f"/api/markets/{market}/snapshots", params={"cursor": wrong_date}
    )
    assert bad_date.status_code == 422
    empty = await snap.api.client.get(f"/api/markets/{market}/snapshots")
    assert empty.json() == {"items": [], "next_cursor": None}


async def test_snapshot_content_is_the_verified_document(snap: Snap) -> None:
    market = await snap.market()
    await snap.post(market, "archived words", at(DAY, 13))
    run = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert run is not None
    cid = run.pinned[0].cid
    (row,) = await snap.rows("SELECT document FROM snapshot_pins")
    snap.serve()

    response = await snap.api.client.get(f"/api/snapshots/{cid}")
    assert response.status_code == 200, response.text
    assert response.content == bytes(row.document)
    assert cid_to_str(file_cid(response.content)) == cid
    assert response.headers["content-type"] == "application/json"
    assert response.headers["etag"] == f'"{cid}"'
    assert response.headers["x-ipfs-path"] == f"/ipfs/{cid}"
    assert response.json()["posts"][0]["content"] == "archived words"

    # The same CID in another multibase is the same snapshot.
    base58 = str(CID.decode(cid).set(base="base58btc"))
    assert base58 != cid
    other_spelling = await snap.api.client.get(f"/api/snapshots/{base58}")
    assert other_spelling.status_code == 200
    assert other_spelling.content == response.content


async def test_unknown_and_invalid_cids(snap: Snap) -> None:
    snap.serve()
    unknown = cid_to_str(file_cid(b"never snapshotted"))
    missing = await snap.api.client.get(f"/api/snapshots/{unknown}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert unknown in missing.json()["detail"]
    invalid = await snap.api.client.get("/api/snapshots/not-a-cid")
    assert invalid.status_code == 422
    assert invalid.json()["type"].endswith("/invalid-cid")


async def test_known_cid_nobody_serves_is_a_502_problem(snap: Snap) -> None:
    market = await snap.market()
    cid = cid_to_str(file_cid(b"an old anchor whose content lives elsewhere"))
    async with snap.container.database.session() as session:
        session.add(
            IpfsAnchor(
                market_id=market, ipfs_hash=cid, snapshot_date=DAY, created_at=datetime.now(UTC)
            )
        )
        await session.commit()

    snap.serve()
    response = await snap.api.client.get(f"/api/snapshots/{cid}")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 502 and body["type"].endswith("/snapshot-unavailable")
    assert body["cid"] == cid and body["gateways"] == []
    assert "no gateway configured" in body["reason"]
    assert cid in body["detail"]

    down = "http://127.0.0.1:9"
    snap.serve(snapshot_settings(ipfs_gateways=[down], ipfs_gateway_timeout_seconds=2))
    through_gateways = await snap.api.client.get(f"/api/snapshots/{cid}")
    assert through_gateways.status_code == 502
    assert through_gateways.json()["gateways"] == [down]
    assert "unreachable" in through_gateways.json()["reason"]


async def test_serving_content_opens_no_http_client_per_request(
    snap: Snap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores (and their gateway reader) are built once per app on the process's shared
    client; one per request cost a new pool and TLS context (~0.8 MB) per call."""
    market = await snap.market()
    await snap.post(market, "kept", at(DAY, 9))
    run = await run_snapshot(snap.container, day=DAY, config=snap.config)
    assert run is not None
    cid = run.pinned[0].cid
    snap.serve(snapshot_settings(ipfs_gateways=["https://gateway.invalid"]))
    opened: list[int] = []
    original = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        opened.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
    for _ in range(50):
        assert (await snap.api.client.get(f"/api/snapshots/{cid}")).status_code == 200
    assert opened == []
