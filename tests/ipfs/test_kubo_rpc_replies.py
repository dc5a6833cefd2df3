"""The Kubo RPC client's handling of replies the real peer rarely gives (scripted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from marketd.ipfs.builder import file_cid
from marketd.ipfs.car import CarContents, read_car
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


@pytest.mark.parametrize("method", ["has", "pin", "unpin", "is_pinned", "get"])
async def test_errors_that_are_not_absence_propagate(method: str) -> None:
    kubo = _kubo(lambda _r: _error("repo locked"))
    with pytest.raises(KuboRpcError, match="repo locked") as caught:
        await getattr(kubo, method)(CID)
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


# --- put_many: CARs of many roots through dag/import --------------------------------------

DOCS = [f"snapshot {i}".encode() * (i + 1) for i in range(7)]
CIDS = [file_cid(d) for d in DOCS]


def _uploaded_car(request: httpx.Request) -> CarContents:
    """The CAR sent as the multipart ``file`` field."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    part = request.content.split(b"--" + boundary)[1]
    return read_car(part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n"))


def _root_line(cid: object, error: str = "") -> str:
    return json.dumps({"Root": {"Cid": {"/": cid}, "PinErrorMsg": error}})


def _confirm_all(request: httpx.Request) -> httpx.Response:
    roots = _uploaded_car(request).roots
    # in another order than sent, with the Stats line Kubo adds when asked
    lines = [_root_line(cid_to_str(root)) for root in reversed(roots)]
    lines.append(json.dumps({"Stats": {"BlockCount": len(roots), "BlockBytesCount": 1}}))
    return httpx.Response(200, text="\n".join(lines) + "\n")


async def test_put_many_sends_cars_of_many_roots() -> None:
    cars: list[CarContents] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v0/dag/import"
        assert request.url.params["pin-roots"] == "true"
        cars.append(_uploaded_car(request))
        return _confirm_all(request)

    kubo = _kubo(handler, car_roots=3)  # upload="add" too: a batch always goes as CARs
    stored = await kubo.put_many(DOCS)
    assert [s.cid for s in stored] == CIDS
    assert [s.size for s in stored] == [len(d) for d in DOCS]
    assert sorted(len(car.roots) for car in cars) == [1, 3, 3]
    assert sorted(str(root) for car in cars for root in car.roots) == sorted(map(str, CIDS))
    for car in cars:
        assert {cid: car.blocks[cid] for cid in car.roots} == {
            cid: DOCS[CIDS.index(cid)] for cid in car.roots
        }
    assert await kubo.put_many([]) == []
    assert len(cars) == 3, "an empty batch sends nothing"


async def test_put_many_limits_bytes_per_car_and_requests_in_flight() -> None:
    in_flight, most = 0, 0
    sizes: list[int] = []
    two_in_flight = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        if in_flight == 2:
            two_in_flight.set()
        # The first request is held until a second one arrives (times out if none ever does).
        await asyncio.wait_for(two_in_flight.wait(), 5)
        in_flight -= 1
        sizes.append(len(_uploaded_car(request).roots))
        return _confirm_all(request)

    kubo = _kubo(handler, car_bytes=len(DOCS[-1]) + 1, concurrency=2)
    stored = await kubo.put_many(DOCS)
    assert [s.cid for s in stored] == CIDS
    assert len(sizes) < len(DOCS), "small documents share a CAR"
    assert max(sizes) > 1 and most == 2


async def test_car_put_goes_through_the_same_import() -> None:
    kubo = _kubo(_confirm_all, upload="car")
    assert (await kubo.put(DOCS[0])).cid == CIDS[0]


@pytest.mark.parametrize(
    ("reply", "error", "message"),
    [
        (lambda roots: roots[:-1], BlockstoreError, "did not confirm"),
        (lambda roots: [*roots, cid_to_str(CID)], CidMismatchError, cid_to_str(CID)),
        (lambda roots: [*roots, "not-a-cid"], CidMismatchError, "not-a-cid"),
        (lambda roots: [*roots[:-1], None], CidMismatchError, "None"),
    ],
    ids=["root missing", "root not sent", "not a CID", "no CID"],
)
async def test_put_many_checks_the_roots_the_node_names(
    reply: Callable[[list[str]], list[object]], error: type[Exception], message: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        roots = [cid_to_str(root) for root in _uploaded_car(request).roots]
        return httpx.Response(200, text="\n".join(_root_line(c) for c in reply(roots)))

    with pytest.raises(error, match=message):
        await _kubo(handler).put_many(DOCS)


async def test_put_many_reports_unpinned_roots_and_odd_lines() -> None:
    def pin_error(request: httpx.Request) -> httpx.Response:
        roots = _uploaded_car(request).roots
        lines = [_root_line(cid_to_str(r), "disk full" if r == CIDS[2] else "") for r in roots]
        return httpx.Response(200, text="\n".join(lines))

    with pytest.raises(BlockstoreError, match=f"did not pin {cid_to_str(CIDS[2])}: disk full"):
        await _kubo(pin_error).put_many(DOCS)

    def odd_root(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"Root": "bafy..."})

    with pytest.raises(CidMismatchError):
        await _kubo(odd_root).put_many(DOCS[:1])


async def test_a_node_taking_one_root_per_import_gets_one_at_a_time() -> None:
    """Infura: "only one dag root can be pinned per request"."""
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        roots = _uploaded_car(request).roots
        seen.append(len(roots))
        if len(roots) > 1:
            return _error("only one dag root can be pinned per request", 400)
        return _confirm_all(request)

    kubo = _kubo(handler)
    stored = await kubo.put_many(DOCS[:3])
    assert [s.cid for s in stored] == CIDS[:3]
    assert seen == [3, 1, 1, 1]
    await kubo.put_many(DOCS[3:5])
    assert seen[4:] == [1, 1], "remembered: no more multi-root CARs"


async def test_import_errors_propagate() -> None:
    kubo = _kubo(lambda _r: _error("repo locked"))
    with pytest.raises(KuboRpcError, match="repo locked"):
        await kubo.put_many(DOCS)
    one_root_only = _kubo(lambda _r: _error("only one dag root can be pinned per request", 400))
    with pytest.raises(KuboRpcError, match="only one dag root"):
        await one_root_only.put_many(DOCS[:1])
