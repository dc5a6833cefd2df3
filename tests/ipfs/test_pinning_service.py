"""Pinning Service API client: against npm mock-ipfs-pinning-service, and scripted replies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from marketd.ipfs.blockstore import Blockstore, SupportsPutMany, put_many
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import Cid, cid_to_str
from marketd.ipfs.pinning_service import PinningServiceError, PinningServiceStore

if TYPE_CHECKING:
    from ..helpers.ipfs import PinningMock


@pytest.fixture
async def service(ipfs_pinning_mock: PinningMock) -> AsyncIterator[PinningServiceStore]:
    store = PinningServiceStore(
        ipfs_pinning_mock.url, ipfs_pinning_mock.token, origins=["/ip4/127.0.0.1/tcp/4001"]
    )
    yield store
    await store.aclose()


async def test_put_requests_a_pin_of_the_local_cid(service: PinningServiceStore) -> None:
    assert isinstance(service, Blockstore) and isinstance(service, SupportsPutMany)
    data = b"snapshot for the pinning service"
    stored = await service.put(data)
    assert stored.cid == file_cid(data)
    pins = await service.list_pins(stored.cid)
    assert [(p.cid, p.status, p.name) for p in pins] == [(stored.cid, "queued", stored.cid_str)]
    assert (await service.get_pin(pins[0].requestid)).requestid == pins[0].requestid
    assert not await service.has(stored.cid), "queued is not pinned"


async def test_put_many_requests_a_pin_per_document(service: PinningServiceStore) -> None:
    documents = [f"batch document {i}".encode() for i in range(3)]
    stored = await put_many(service, documents)
    assert [s.cid for s in stored] == [file_cid(d) for d in documents]
    for content in stored:
        pins = await service.list_pins(content.cid)
        assert [(p.cid, p.status) for p in pins] == [(content.cid, "queued")]


async def test_pin_is_idempotent_and_unpin_deletes(service: PinningServiceStore) -> None:
    cid = file_cid(b"pin me once")
    await service.pin(cid)
    await service.pin(cid)
    assert len(await service.list_pins(cid)) == 1
    await service.unpin(cid)
    assert await service.list_pins(cid) == []


async def test_waiting_for_a_pin_that_stays_queued_times_out(
    ipfs_pinning_mock: PinningMock,
) -> None:
    store = PinningServiceStore(
        ipfs_pinning_mock.url, ipfs_pinning_mock.token, wait_until_pinned=True, pin_timeout=0
    )
    with pytest.raises(PinningServiceError, match="still queued"):
        await store.put(b"never pinned by the mock")
    await store.aclose()


async def test_bad_token_is_refused(ipfs_pinning_mock: PinningMock) -> None:
    store = PinningServiceStore(ipfs_pinning_mock.url, "wrong-token")
    with pytest.raises(PinningServiceError) as caught:
        await store.pin(file_cid(b"x"))
    assert caught.value.status == 401
    await store.aclose()


def _status(cid: Cid, status: str, requestid: str = "r1", **extra: Any) -> dict[str, Any]:
    return {
        "requestid": requestid,
        "status": status,
        "created": "2026-01-01T00:00:00Z",
        "pin": {"cid": cid_to_str(cid), "name": "n"},
        "delegates": ["/ip4/127.0.0.1/tcp/1"],
        **extra,
    }


def _scripted(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> PinningServiceStore:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return PinningServiceStore("http://pins.test/", "tok", client=client, poll_interval=0, **kwargs)


async def test_wait_until_pinned_polls_to_pinned() -> None:
    cid = file_cid(b"polled")
    statuses = iter(["queued", "pinning", "pinned"])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            body = json.loads(request.content)
            assert body == {"cid": cid_to_str(cid), "name": cid_to_str(cid)}
            return httpx.Response(202, json=_status(cid, "queued"))
        return httpx.Response(200, json=_status(cid, next(statuses)))

    store = _scripted(handler, wait_until_pinned=True)
    stored = await store.put(b"polled")
    assert stored.cid == cid
    assert [r.url.path for r in seen] == ["/pins", "/pins/r1", "/pins/r1", "/pins/r1"]
    assert all(r.headers["authorization"] == "Bearer tok" for r in seen)


async def test_failed_pin_and_malformed_replies() -> None:
    cid = file_cid(b"fails")

    def failing(request: httpx.Request) -> httpx.Response:
        info = {"status_details": "DAG too big"}
        return httpx.Response(
            202 if request.method == "POST" else 200, json=_status(cid, "failed", info=info)
        )

    with pytest.raises(PinningServiceError, match="DAG too big"):
        await _scripted(failing, wait_until_pinned=True).put(b"fails")

    def wrong_cid(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=_status(file_cid(b"other"), "queued"))

    with pytest.raises(PinningServiceError, match="acknowledged"):
        await _scripted(wrong_cid).add_pin(cid, meta={"app": "marketd"})

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [{"requestid": "x"}]})

    with pytest.raises(PinningServiceError, match="malformed PinStatus"):
        await _scripted(garbage).list_pins(cid)

    def no_results(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    with pytest.raises(PinningServiceError, match="no results"):
        await _scripted(no_results).has(cid)

    def error_body(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            409, json={"error": {"reason": "INSUFFICIENT_FUNDS", "details": "pay"}}
        )

    with pytest.raises(PinningServiceError, match="INSUFFICIENT_FUNDS") as caught:
        await _scripted(error_body).pin(cid)
    assert caught.value.reason == "INSUFFICIENT_FUNDS"

    def text_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="boom")

    with pytest.raises(PinningServiceError, match="boom"):
        await _scripted(text_error).unpin(cid)

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(PinningServiceError, match="ConnectError"):
        await _scripted(unreachable).has(cid)


async def test_pinned_content_is_reported_and_served_through_a_reader() -> None:
    cid = file_cid(b"served")

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["status"] == "pinned"
        return httpx.Response(200, json={"count": 1, "results": [_status(cid, "pinned")]})

    class Reader:
        async def fetch(self, wanted: Cid | str) -> bytes:
            assert wanted == cid
            return b"served"

    assert await _scripted(handler).has(cid)
    with pytest.raises(PinningServiceError, match="no reader"):
        await _scripted(handler).get(cid)
    assert await _scripted(handler, reader=Reader()).get(cid) == b"served"
    store = _scripted(handler)
    assert store.name == "pinning-service"
    await store.aclose()  # a client passed in stays open for its owner
    assert not store._client.is_closed
