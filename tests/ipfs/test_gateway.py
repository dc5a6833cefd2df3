"""Verified retrieval through a gateway list: down, lying and honest gateways."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import httpx
import pytest
from prometheus_client import REGISTRY

from marketd.ipfs.builder import file_cid
from marketd.ipfs.car import car_of_bytes
from marketd.ipfs.errors import ContentUnavailableError
from marketd.ipfs.gateway import GatewayReader, GatewayStats
from marketd.ipfs.kubo import KuboBlockstore
from marketd.ipfs.profile import UNIXFS_V0_2015

if TYPE_CHECKING:
    from ..helpers.ipfs import Gateways, IpfsPeer


def failures_metric(gateway: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketd_ipfs_gateway_failures_total", {"gateway": gateway, "reason": reason}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("size", "profile"),
    [(300, None), (700 * 1024, None), (300, UNIXFS_V0_2015)],
    ids=["raw-block", "car", "cid-v0-car"],
)
async def test_upload_then_verified_retrieval_past_bad_gateways(
    ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways, size: int, profile: object
) -> None:
    data = random.Random(size).randbytes(size)
    kubo = KuboBlockstore(ipfs_peer.api_url)
    stored = await (kubo.put(data) if profile is None else kubo.put(data, UNIXFS_V0_2015))
    await kubo.aclose()

    gw = ipfs_trustless_gateways
    before = failures_metric(gw.lying, "bad_content")
    reader = GatewayReader([gw.down, gw.lying, gw.honest], timeout=10)
    try:
        assert await reader.fetch(stored.cid_str) == data
    finally:
        await reader.aclose()
    assert reader.stats.failures_of(gw.down) == {"unreachable": 1}
    assert reader.stats.failures_of(gw.lying) == {"bad_content": 1}
    assert reader.stats.failures_of(gw.honest) == {}
    assert reader.stats.successes == {gw.honest: 1}
    assert failures_metric(gw.lying, "bad_content") == before + 1


async def test_no_gateway_can_serve(ipfs_peer: IpfsPeer, ipfs_trustless_gateways: Gateways) -> None:
    kubo = KuboBlockstore(ipfs_peer.api_url)
    stored = await kubo.put(b"held by the peer, lied about by the gateway")
    await kubo.aclose()
    gw = ipfs_trustless_gateways
    reader = GatewayReader([gw.down, gw.lying])
    with pytest.raises(ContentUnavailableError, match="no gateway served") as caught:
        await reader.fetch(stored.cid)
    await reader.aclose()
    assert "unreachable" in str(caught.value)
    assert "bad_content" in str(caught.value)


def _reader(handler: httpx.MockTransport, **kwargs: object) -> GatewayReader:
    client = httpx.AsyncClient(transport=handler)
    return GatewayReader(["http://a.test/", "http://b.test"], client=client, **kwargs)  # type: ignore[arg-type]


async def test_requests_follow_the_trustless_protocol() -> None:
    data = b"y" * 300_000
    root, car = car_of_bytes(data)
    small = file_cid(b"small")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b"small" if request.url.params["format"] == "raw" else car
        return httpx.Response(200, content=body)

    reader = _reader(httpx.MockTransport(handler))
    assert await reader.fetch(root) == data
    assert await reader.fetch(small) == b"small"
    await reader.aclose()  # a client passed in stays open for its owner
    assert not reader._client.is_closed
    car_request, raw_request = seen
    assert str(car_request.url).startswith(f"http://a.test/ipfs/{root}")
    assert car_request.headers["accept"] == "application/vnd.ipld.car"
    assert raw_request.url.params["format"] == "raw"
    assert raw_request.headers["accept"] == "application/vnd.ipld.raw"


async def test_status_size_and_timeout_failures_are_counted() -> None:
    cid = file_cid(b"z" * 100)

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            return httpx.Response(404)
        return httpx.Response(200, content=b"z" * 101)

    stats = GatewayStats()
    reader = _reader(httpx.MockTransport(handler), max_bytes=100, stats=stats)
    with pytest.raises(ContentUnavailableError):
        await reader.fetch(cid)
    assert stats.failures == {
        ("http://a.test", "http_status"): 1,
        ("http://b.test", "too_large"): 1,
    }

    async def hang(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.test":
            raise httpx.ReadTimeout("slow", request=request)
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    reader = _reader(httpx.MockTransport(hang), timeout=0.05, stats=stats)
    with pytest.raises(ContentUnavailableError):
        await reader.fetch(cid)
    assert stats.failures_of("http://a.test")["timeout"] == 1
    assert stats.failures_of("http://b.test")["timeout"] == 1


def test_needs_a_gateway() -> None:
    with pytest.raises(ValueError, match="at least one"):
        GatewayReader([])
