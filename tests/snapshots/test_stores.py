"""Stores built from the settings: local default, remotes required, gateways for reads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from marketd.config import Settings, SnapshotSettings
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str
from marketd.ipfs.errors import BlockstoreError, ContentUnavailableError
from marketd.ipfs.local import LocalBlockstore
from marketd.ipfs.multi import MultiBlockstore
from marketd.snapshots.stores import build_stores

from ..helpers.snapshots import snapshot_settings

DATA = b'{"schema":"marketd.discussion-snapshot/1"}'
CID = cid_to_str(file_cid(DATA))


def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)


class FakeRemotes:
    """A Kubo RPC API, a Pinning Service and a gateway, answering over httpx.MockTransport."""

    def __init__(self, *, kubo_up: bool = True, gateway_body: bytes = DATA) -> None:
        self.requests: list[httpx.Request] = []
        self.kubo_up = kubo_up
        self.gateway_body = gateway_body

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.url.host == "kubo.test":
            if not self.kubo_up:
                return httpx.Response(500, json={"Message": "node is down", "Code": 0})
            if path == "/api/v0/add":
                return httpx.Response(200, text=json.dumps({"Name": "file", "Hash": CID}))
            return httpx.Response(200, json={})
        if request.url.host == "pins.test":
            if request.method == "GET":
                return httpx.Response(200, json={"count": 0, "results": []})
            return httpx.Response(
                202,
                json={
                    "requestid": "r1",
                    "status": "queued",
                    "created": "2026-03-14T00:00:00Z",
                    "pin": {"cid": CID},
                    "delegates": [],
                },
            )
        return httpx.Response(200, content=self.gateway_body)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def hosts(self) -> list[str]:
        return [request.url.host for request in self.requests]


def remote_config(**overrides: object) -> SnapshotSettings:
    values: dict[str, object] = {
        "ipfs_api_url": "http://kubo.test:5001",
        "ipfs_api_authorization": "Basic a3VibzpzZWNyZXQ=",
        "pinning_service_url": "http://pins.test",
        "pinning_service_token": "pin-token",
        "ipfs_gateways": ["http://gateway.test"],
    }
    return snapshot_settings(**(values | overrides))


async def test_embedded_default_is_the_local_store(tmp_path: Path) -> None:
    stores = build_stores(settings(tmp_path), snapshot_settings())
    assert isinstance(stores.store, LocalBlockstore)
    assert stores.names == ["local"] and stores.local is stores.store and stores.reader is None
    stored = await stores.store.put(DATA)
    assert stored.cid_str == CID
    assert (tmp_path / "ipfs" / "pins" / CID).is_file()
    assert await stores.fetch(CID) == DATA
    await stores.aclose()


async def test_remotes_are_required_and_carry_their_credentials(tmp_path: Path) -> None:
    remotes = FakeRemotes()
    async with remotes.client() as client:
        stores = build_stores(settings(tmp_path), remote_config(), client=client)
        assert isinstance(stores.store, MultiBlockstore)
        assert stores.names == ["kubo", "pinning-service", "local"]
        stored = await stores.store.put(DATA)
        assert stored.cid_str == CID
        await stores.aclose()  # the local copy lands in the background
        assert stores.local is not None and await stores.local.get(CID) == DATA

        remotes.requests.clear()
        await stores.store.unpin(CID)
    kubo = next(r for r in remotes.requests if r.url.host == "kubo.test")
    assert kubo.url.path == "/api/v0/pin/rm"
    assert kubo.headers["authorization"] == "Basic a3VibzpzZWNyZXQ="
    pins = next(r for r in remotes.requests if r.url.host == "pins.test")
    assert pins.headers["authorization"] == "Bearer pin-token"
    assert not await stores.local.is_pinned(CID)


async def test_a_failing_remote_is_never_replaced_by_the_local_copy(tmp_path: Path) -> None:
    remotes = FakeRemotes(kubo_up=False)
    config = remote_config(pinning_service_url=None, pinning_service_token=None)
    async with remotes.client() as client:
        stores = build_stores(settings(tmp_path), config, client=client)
        with pytest.raises(BlockstoreError, match="no required store"):
            await stores.store.put(DATA)
        await stores.aclose()
    assert "kubo.test" in remotes.hosts()


async def test_without_a_local_copy_reads_go_to_the_gateways(tmp_path: Path) -> None:
    remotes = FakeRemotes()
    config = remote_config(ipfs_local_copy=False)
    async with remotes.client() as client:
        stores = build_stores(settings(tmp_path), config, client=client)
        assert stores.local is None and stores.names == ["kubo", "pinning-service"]
        assert await stores.fetch(CID) == DATA
        await stores.aclose()
    assert remotes.hosts() == ["gateway.test"]
    assert remotes.requests[0].url.params["format"] == "raw"


async def test_local_miss_falls_through_to_verified_gateways(tmp_path: Path) -> None:
    honest, liar = FakeRemotes(), FakeRemotes(gateway_body=DATA + b"!")
    config = snapshot_settings(ipfs_gateways=["http://gateway.test"])
    async with honest.client() as client:
        stores = build_stores(settings(tmp_path), config, client=client)
        assert await stores.fetch(CID) == DATA
    async with liar.client() as client:
        stores = build_stores(settings(tmp_path), config, client=client)
        with pytest.raises(ContentUnavailableError, match="bad_content"):
            await stores.fetch(CID)
        assert stores.reader is not None
        assert stores.reader.stats.failures_of("http://gateway.test") == {"bad_content": 1}


async def test_no_source_at_all(tmp_path: Path) -> None:
    stores = build_stores(settings(tmp_path), snapshot_settings())
    with pytest.raises(ContentUnavailableError, match="IPFS_GATEWAYS is empty"):
        await stores.fetch(CID)


async def test_single_remotes(tmp_path: Path) -> None:
    remotes = FakeRemotes()
    pinning_only = remote_config(ipfs_api_url=None)
    kubo_only = remote_config(
        pinning_service_url=None, pinning_service_token=None, ipfs_api_authorization=None
    )
    async with remotes.client() as client:
        pinning = build_stores(settings(tmp_path), pinning_only, client=client)
        assert pinning.names == ["pinning-service", "local"]
        kubo = build_stores(settings(tmp_path), kubo_only, client=client)
        assert kubo.names == ["kubo", "local"]
        assert (await kubo.store.put(DATA)).cid_str == CID
        await kubo.aclose()
        await pinning.aclose()
    (add,) = [r for r in remotes.requests if r.url.path == "/api/v0/add"]
    assert "authorization" not in add.headers
    assert add.url.params["cid-version"] == "1"
