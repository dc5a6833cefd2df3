"""CIDs computed here equal the IPFS peer's; the Kubo RPC blockstore against the real peer."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from marketd.ipfs.builder import blocks_of_bytes, file_cid
from marketd.ipfs.car import car_of_roots
from marketd.ipfs.cid import cid_to_str, parse_cid
from marketd.ipfs.errors import (
    BlockstoreError,
    CidMismatchError,
    ContentNotFoundError,
)
from marketd.ipfs.kubo import KuboBlockstore, KuboRpcError
from marketd.ipfs.profile import KUBO_CLASSIC_CID_V1, UNIXFS_V0_2015, LayoutProfile

if TYPE_CHECKING:
    from ..helpers.ipfs import IpfsPeer


KIB, MIB = 1024, 1024 * 1024
SIZES = [0, 12, 256 * KIB, 256 * KIB + 1, MIB, 50 * MIB]
ADD_PARAMS = {
    KUBO_CLASSIC_CID_V1.name: {"cid-version": "1", "raw-leaves": "true"},
    UNIXFS_V0_2015.name: {},  # the plain `ipfs add` default
}


def sample(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture
async def kubo(ipfs_peer: IpfsPeer) -> AsyncIterator[KuboBlockstore]:
    store = KuboBlockstore(ipfs_peer.api_url, timeout=60, block_timeout=1)
    yield store
    await store.aclose()


@pytest.mark.parametrize("profile", [KUBO_CLASSIC_CID_V1, UNIXFS_V0_2015], ids=lambda p: p.name)
@pytest.mark.parametrize("size", SIZES)
async def test_local_cid_equals_the_peers(
    ipfs_peer: IpfsPeer, size: int, profile: LayoutProfile
) -> None:
    data = sample(size)
    async with httpx.AsyncClient(timeout=120) as client:
        reply = await client.post(
            f"{ipfs_peer.api_url}/api/v0/add",
            params={**ADD_PARAMS[profile.name], "only-hash": "true"},
            files={"file": ("f", data)},
        )
    reply.raise_for_status()
    assert cid_to_str(file_cid(data, profile)) == cid_to_str(parse_cid(reply.json()["Hash"]))


async def _pinned(peer: IpfsPeer, cid: str) -> bool:
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{peer.api_url}/api/v0/pin/ls", params={"arg": cid})
    return reply.status_code == 200 and cid in {
        cid_to_str(parse_cid(k)) for k in reply.json()["Keys"]
    }


@pytest.mark.parametrize("profile", [KUBO_CLASSIC_CID_V1, UNIXFS_V0_2015], ids=lambda p: p.name)
async def test_put_get_pin_unpin(
    kubo: KuboBlockstore, ipfs_peer: IpfsPeer, profile: LayoutProfile
) -> None:
    data = sample(MIB + 7) + profile.name.encode()
    stored = await kubo.put(data, profile)
    assert stored.cid == file_cid(data, profile)
    assert await kubo.get(stored.cid) == data
    assert await kubo.has(stored.cid)
    assert await kubo.is_pinned(stored.cid)
    assert await _pinned(ipfs_peer, stored.cid_str)
    await kubo.unpin(stored.cid)
    assert not await _pinned(ipfs_peer, stored.cid_str), "pin/ls shows it gone"
    assert not await kubo.is_pinned(stored.cid)
    await kubo.unpin(stored.cid)  # unpinning again is a no-op
    await kubo.pin(stored.cid)
    assert await _pinned(ipfs_peer, stored.cid_str)


async def test_car_upload_stores_any_profile(ipfs_peer: IpfsPeer) -> None:
    narrow = LayoutProfile("narrow", 1, True, 1024, 4)
    store = KuboBlockstore(ipfs_peer.api_url, upload="car", block_timeout=1)
    try:
        data = sample(20 * KIB + 3)
        stored = await store.put(data, narrow)
        assert stored.cid == file_cid(data, narrow)
        assert await store.get(stored.cid_str) == data
        assert await store.is_pinned(stored.cid)
    finally:
        await store.aclose()


async def test_add_with_settings_the_node_cannot_follow_is_a_loud_mismatch(
    kubo: KuboBlockstore,
) -> None:
    narrow = LayoutProfile("narrow", 1, True, 1024, 4)  # the RPC has no max-links argument
    with pytest.raises(CidMismatchError) as caught:
        await kubo.put(sample(20 * KIB), narrow)
    assert caught.value.expected == cid_to_str(file_cid(sample(20 * KIB), narrow))
    assert caught.value.actual != caught.value.expected


async def test_absent_content(kubo: KuboBlockstore) -> None:
    absent = file_cid(b"nobody has this " + sample(64))
    assert not await kubo.has(absent)
    with pytest.raises(ContentNotFoundError):
        await kubo.get(absent)
    assert not await kubo.is_pinned(absent)


async def test_version_and_transport_errors(kubo: KuboBlockstore) -> None:
    assert "Version" in await kubo.version()
    dead = KuboBlockstore("http://127.0.0.1:9", name="dead")
    with pytest.raises(BlockstoreError, match="dead"):
        await dead.version()
    await dead.aclose()
    with pytest.raises(KuboRpcError):
        await kubo._call("no/such/endpoint", {})


async def test_the_peer_names_every_root_of_a_multi_root_car(ipfs_peer: IpfsPeer) -> None:
    """What put_many relies on: js-ipfs 0.66 ``dag/import`` of a CAR with several roots pins
    each and answers one ``Root`` line per root."""
    files = [sample(100 + i) + b"multi-root" for i in range(3)]
    dags = [list(blocks_of_bytes(data)) for data in files]
    roots = [dag[-1].cid for dag in dags]
    car = car_of_roots(roots, [block for dag in dags for block in dag])
    async with httpx.AsyncClient(timeout=60) as client:
        reply = await client.post(
            f"{ipfs_peer.api_url}/api/v0/dag/import",
            params={"pin-roots": "true"},
            files={"file": ("batch.car", car)},
        )
    reply.raise_for_status()
    lines = [json.loads(line) for line in reply.text.splitlines() if line.strip()]
    assert {cid_to_str(parse_cid(line["Root"]["Cid"]["/"])) for line in lines} == {
        cid_to_str(root) for root in roots
    }
    assert [line["Root"]["PinErrorMsg"] for line in lines] == ["", "", ""]
    for root in roots:
        assert await _pinned(ipfs_peer, cid_to_str(root))


async def test_put_many_on_the_peer(ipfs_peer: IpfsPeer) -> None:
    narrow = LayoutProfile("narrow", 1, True, 1024, 4)  # multi-block DAGs, shared leaves
    store = KuboBlockstore(ipfs_peer.api_url, car_roots=4, concurrency=3, block_timeout=1)
    try:
        documents = [sample(3 * KIB + i) + b"put_many" for i in range(10)]
        documents.append(documents[0])  # the same file twice in one batch
        stored = await store.put_many(documents, narrow)
        assert [s.cid for s in stored] == [file_cid(d, narrow) for d in documents]
        for content, data in zip(stored, documents, strict=True):
            assert await _pinned(ipfs_peer, content.cid_str)
            assert await store.get(content.cid) == data
        again = await store.put_many(documents, narrow)  # idempotent
        assert again == stored
    finally:
        await store.aclose()
