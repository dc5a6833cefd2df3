"""A Kubo RPC node (own Kubo, js-ipfs, Infura, Filebase...) as a blockstore, over httpx.

The CID is always computed here first; the node's answer must be the same CID or
``CidMismatchError`` is raised (a node with other import settings would otherwise pin content
under a CID nobody recorded). ``put_many`` sends a batch as CARs of many roots (CARv1 allows
several) to ``dag/import?pin-roots=true``, a few requests at a time, and checks that the node
names exactly the locally computed roots, each pinned. Retrieval walks the DAG with
``block/get`` and verifies every block locally. Every call that may wait on the network
carries the RPC ``timeout`` argument, as js-ipfs and Kubo otherwise hang on a block nobody has.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx

from marketd.ipfs.block import Block
from marketd.ipfs.blockstore import StoredContent, gather_all
from marketd.ipfs.builder import blocks_of_bytes, file_cid
from marketd.ipfs.car import car_of_roots
from marketd.ipfs.cid import DAG_PB, Cid, cid_to_str, codec_of, parse_cid, verify_block
from marketd.ipfs.dagpb import decode_node
from marketd.ipfs.errors import (
    BlockstoreError,
    CidMismatchError,
    ContentNotFoundError,
    DecodeError,
    InvalidCidError,
)
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile
from marketd.ipfs.reader import read_file_dag

UploadMode = Literal["add", "car"]
_MISSING_MARKERS = ("timed out", "not found", "no link named")
# Infura refuses CARs with several roots ("only one dag root can be pinned per request").
_ONE_ROOT_MARKER = "only one dag root"


class KuboRpcError(BlockstoreError):
    """The node answered with an error (its ``Message`` is kept)."""

    def __init__(self, endpoint: str, status: int, message: str) -> None:
        super().__init__(f"{endpoint}: HTTP {status}: {message}")
        self.status = status
        self.message = message


class KuboBlockstore:
    """``upload="add"`` sends the file to ``/api/v0/add`` with the profile's settings;
    ``upload="car"`` sends the locally built DAG to ``/api/v0/dag/import`` (works for any
    profile, and the node stores exactly our blocks). ``put_many`` always imports CARs: up to
    ``car_roots`` files and about ``car_bytes`` bytes per request, ``concurrency`` requests at
    a time (a node imports faster with a few CARs in flight than with one large one).
    ``headers`` carries auth, e.g. ``{"Authorization": "Basic ..."}`` for Infura or a bearer
    token behind a proxy."""

    def __init__(
        self,
        api_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
        upload: UploadMode = "add",
        timeout: float = 30.0,
        block_timeout: float = 10.0,
        concurrency: int = 8,
        car_roots: int = 50,
        car_bytes: int = 4 * 1024 * 1024,
        name: str = "kubo",
    ) -> None:
        self._base = api_url.rstrip("/") + "/api/v0/"
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._headers = dict(headers or {})
        self._upload = upload
        self._timeout = timeout
        self._block_timeout = block_timeout
        self._concurrency = concurrency
        self._car_roots = car_roots
        self._car_bytes = car_bytes
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def version(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self._call("version", {})).json()
        return result

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        if self._upload == "car":
            return (await self.put_many([data], profile))[0]
        expected = file_cid(data, profile)
        params = {
            "cid-version": str(profile.cid_version),
            "raw-leaves": "true" if profile.raw_leaves else "false",
            "chunker": f"size-{profile.chunk_size}",
            "hash": "sha2-256",
            "pin": "true",
        }
        reply = await self._call("add", params, files={"file": ("file", data)})
        self._check_same(expected, _last_json_line(reply.text).get("Hash"))
        return StoredContent(cid=expected, profile=profile, size=len(data))

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        """Import and pin every document's DAG, built here, as CARs of many roots."""
        dags = [list(blocks_of_bytes(data, profile)) for data in documents]
        limit = asyncio.Semaphore(self._concurrency)
        groups = _groups(dags, self._car_roots, self._car_bytes)
        await gather_all(self._import(group, limit) for group in groups)
        return [
            StoredContent(cid=dag[-1].cid, profile=profile, size=len(data))
            for dag, data in zip(dags, documents, strict=True)
        ]

    async def _import(self, dags: Sequence[Sequence[Block]], limit: asyncio.Semaphore) -> None:
        roots = [dag[-1].cid for dag in dags]
        car = car_of_roots(roots, [block for dag in dags for block in dag])
        try:
            async with limit:
                reply = await self._call(
                    "dag/import", {"pin-roots": "true"}, files={"file": ("dag.car", car)}
                )
        except KuboRpcError as exc:
            if len(set(roots)) == 1 or _ONE_ROOT_MARKER not in exc.message.lower():
                raise
            self._car_roots = 1  # this node takes one root per request: remember it
            await gather_all(self._import([dag], limit) for dag in dags)
            return
        self._check_roots(roots, reply.text)

    def _check_roots(self, roots: Sequence[Cid], text: str) -> None:
        """The reply must name every root of the CAR, each pinned, and nothing else (Kubo and
        js-ipfs emit one ``{"Root": {"Cid", "PinErrorMsg"}}`` line per root, in any order,
        and Kubo may add a ``Stats`` line)."""
        expected = set(roots)
        confirmed: dict[Cid, str] = {}
        unexpected: list[str] = []
        for line in _json_lines(text):
            root = line.get("Root")
            if root is None:
                continue
            reported = root.get("Cid", {}).get("/") if isinstance(root, dict) else None
            try:
                cid = parse_cid(reported)
            except InvalidCidError:
                cid = None
            if cid not in expected:
                unexpected.append(str(reported))
                continue
            confirmed[cid] = str(root.get("PinErrorMsg") or "")
        missing = [cid_to_str(cid) for cid in roots if cid not in confirmed]
        if unexpected:
            raise CidMismatchError(self._name, ", ".join(missing), ", ".join(unexpected))
        if missing:
            raise BlockstoreError(f"{self._name} did not confirm {', '.join(missing)}")
        for cid, error in confirmed.items():
            if error:
                raise BlockstoreError(f"{self._name} did not pin {cid_to_str(cid)}: {error}")

    async def get(self, cid: Cid | str) -> bytes:
        root = parse_cid(cid)
        blocks: dict[Cid, bytes] = {}
        level = [root]
        limit = asyncio.Semaphore(self._concurrency)
        while level:
            todo = [c for c in dict.fromkeys(level) if c not in blocks]
            fetched = await asyncio.gather(*(self._block_get(c, limit) for c in todo))
            level = []
            for child, data in zip(todo, fetched, strict=True):
                blocks[child] = data
                if codec_of(child) == DAG_PB:
                    level.extend(_links(child, data))
        return read_file_dag(root, blocks.__getitem__)

    async def has(self, cid: Cid | str) -> bool:
        params = {"arg": cid_to_str(cid), "offline": "true", "timeout": f"{self._block_timeout}s"}
        try:
            await self._call("block/stat", params)
        except KuboRpcError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def pin(self, cid: Cid | str) -> None:
        params = {"arg": cid_to_str(cid), "timeout": f"{self._timeout}s"}
        try:
            await self._call("pin/add", params)
        except KuboRpcError as exc:
            if _is_missing(exc):
                raise ContentNotFoundError(f"{self._name} cannot find {cid}") from exc
            raise

    async def unpin(self, cid: Cid | str) -> None:
        try:
            await self._call("pin/rm", {"arg": cid_to_str(cid)})
        except KuboRpcError as exc:
            if "not pinned" not in exc.message:
                raise

    async def is_pinned(self, cid: Cid | str) -> bool:
        key = parse_cid(cid)
        try:
            reply = await self._call("pin/ls", {"arg": cid_to_str(key), "type": "recursive"})
        except KuboRpcError as exc:
            if "not pinned" in exc.message:
                return False
            raise
        keys = _last_json_line(reply.text).get("Keys", {})
        return any(parse_cid(k) == key for k in keys)

    async def _block_get(self, cid: Cid, limit: asyncio.Semaphore) -> bytes:
        params = {"arg": cid_to_str(cid), "timeout": f"{self._block_timeout}s"}
        async with limit:
            try:
                data = (await self._call("block/get", params)).content
            except KuboRpcError as exc:
                if _is_missing(exc):
                    raise ContentNotFoundError(f"{self._name} does not have {cid}") from exc
                raise
        verify_block(cid, data)
        return data

    async def _call(
        self, endpoint: str, params: Mapping[str, str], files: Any = None
    ) -> httpx.Response:
        try:
            reply = await self._client.post(
                self._base + endpoint,
                params=params,
                files=files,
                headers=self._headers,
                # the RPC `timeout` arguments are at most self._timeout; leave them room to answer
                timeout=self._timeout + 5.0,
            )
        except httpx.HTTPError as exc:
            raise BlockstoreError(f"{self._name} {endpoint}: {exc!r}") from exc
        if reply.status_code != 200:
            raise KuboRpcError(endpoint, reply.status_code, _error_message(reply))
        return reply

    def _check_same(self, expected: Cid, actual: object) -> None:
        try:
            remote = parse_cid(actual) if isinstance(actual, str) else None
        except InvalidCidError:
            remote = None
        if remote != expected:
            raise CidMismatchError(self._name, cid_to_str(expected), str(actual))


def _links(cid: Cid, data: bytes) -> list[Cid]:
    try:
        return [link.cid for link in decode_node(data).links]
    except DecodeError as exc:
        raise BlockstoreError(f"block {cid} is not dag-pb: {exc}") from exc


def _is_missing(exc: KuboRpcError) -> bool:
    return any(marker in exc.message.lower() for marker in _MISSING_MARKERS)


def _error_message(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:500]
    return str(body.get("Message", body)) if isinstance(body, dict) else str(body)


def _groups(
    dags: Sequence[Sequence[Block]], max_roots: int, max_bytes: int
) -> Iterator[list[Sequence[Block]]]:
    """Consecutive runs of DAGs of at most ``max_roots`` DAGs and, unless one DAG alone is
    larger, ``max_bytes`` bytes."""
    group: list[Sequence[Block]] = []
    size = 0
    for dag in dags:
        dag_size = sum(len(block.data) for block in dag)
        if group and (len(group) >= max_roots or size + dag_size > max_bytes):
            yield group
            group, size = [], 0
        group.append(dag)
        size += dag_size
    if group:
        yield group


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Kubo streams newline-delimited JSON objects."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BlockstoreError("empty RPC reply")
    values: list[dict[str, Any]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise BlockstoreError(f"RPC reply is not JSON: {line[:200]!r}") from exc
        if not isinstance(value, dict):
            raise BlockstoreError(f"RPC reply is not an object: {line[:200]!r}")
        values.append(value)
    return values


def _last_json_line(text: str) -> dict[str, Any]:
    """The final object of a streamed reply, which carries the result."""
    return _json_lines(text)[-1]
