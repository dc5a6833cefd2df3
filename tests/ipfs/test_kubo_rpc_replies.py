"""The Kubo RPC client's handling of replies the real peer rarely gives (scripted)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import DAG_PB, cid_for_block, cid_to_str
from marketd.ipfs.errors import (
    BlockstoreError,
    CidMismatchError,
    ContentNotFoundError,
)
from marketd.ipfs.kubo import KuboBlockstore, KuboRpcError

Handler = Callable[[httpx.Request], httpx.Response]
CID = file_cid(b"scripted")


def _kubo(handler: Handler, **kwargs: object) -> KuboBlockstore:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return KuboBlockstore("http://node.test/", client=client, **kwargs)  # type: ignore[arg-type]


def _error(message: str, status: int = 500) -> httpx.Response:
    return httpx.Response(status, json={"Message": message, "Code": 0, "Type": "error"})


async def test_auth_header_and_endpoint_are_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        line = json.dumps({"Name": "file", "Hash": cid_to_str(CID)})
        return httpx.Response(200, text=line + "\n")

    kubo = _kubo(handler, headers={"Authorization": "Basic abc"}, name="infura")
    stored = await kubo.put(b"scripted")
    await kubo.aclose()
    assert stored.cid == CID
    assert kubo.name == "infura"
    (request,) = seen
    assert request.url.path == "/api/v0/add"
    assert request.headers["authorization"] == "Basic abc"
    assert request.url.params["cid-version"] == "1"
    assert request.url.params["raw-leaves"] == "true"
    assert request.url.params["chunker"] == "size-262144"


async def test_car_import_pin_error_is_raised() -> None:
    reply = {"Root": {"Cid": {"/": cid_to_str(CID)}, "PinErrorMsg": "disk full"}}
    kubo = _kubo(lambda _r: httpx.Response(200, json=reply), upload="car")
    with pytest.raises(BlockstoreError, match="disk full"):
        await kubo.put(b"scripted")


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ('{"Hash": "not-a-cid"}', CidMismatchError, "not-a-cid"),
        ("", BlockstoreError, "empty RPC reply"),
        ("<html>", BlockstoreError, "not JSON"),
        ("[1]", BlockstoreError, "not an object"),
    ],
)
async def test_unusable_add_replies(body: str, error: type[Exception], message: str) -> None:
    kubo = _kubo(lambda _r: httpx.Response(200, text=body))
    with pytest.raises(error, match=message):
        await kubo.put(b"scripted")


async def test_errors_that_are_not_absence_propagate() -> None:
    kubo = _kubo(lambda _r: _error("repo locked"))
    for call in (kubo.has, kubo.pin, kubo.unpin, kubo.is_pinned, kubo.get):
        with pytest.raises(KuboRpcError, match="repo locked") as caught:
            await call(CID)
        assert caught.value.status == 500


async def test_absence_is_recognised() -> None:
    kubo = _kubo(lambda _r: _error("Failed to add pin: request timed out"))
    with pytest.raises(ContentNotFoundError):
        await kubo.pin(CID)


@pytest.mark.parametrize(
    "reply", [httpx.Response(502, text="bad gateway"), httpx.Response(500, json=["odd"])]
)
async def test_non_json_error_bodies(reply: httpx.Response) -> None:
    kubo = _kubo(lambda _r: reply)
    with pytest.raises(KuboRpcError, match=r"bad gateway|odd"):
        await kubo.version()


async def test_a_dag_pb_block_that_does_not_decode() -> None:
    garbage = b"\xff\xff"
    cid = cid_for_block(garbage, DAG_PB, 1)
    kubo = _kubo(lambda _r: httpx.Response(200, content=garbage))
    with pytest.raises(BlockstoreError, match="not dag-pb"):
        await kubo.get(cid)
