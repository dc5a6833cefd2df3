"""IPFS Pinning Service API client (https://ipfs.github.io/pinning-services-api-spec/).

A pinning service keeps content it fetches itself from the IPFS network; it accepts no upload
and serves no bytes. ``put`` therefore computes the CID locally and asks the service to pin it
(the content must be reachable, e.g. from our own Kubo node, whose multiaddrs can be passed as
``origins``); ``get`` is answered by an optional verified ``ContentReader`` (the gateway list).

Endpoints: ``POST /pins {cid, name, origins, meta}`` -> 202 PinStatus, ``GET /pins/{requestid}``,
``GET /pins?cid=..&status=..``, ``DELETE /pins/{requestid}`` -> 202; ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from marketd.ipfs.blockstore import StoredContent, put_each
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import Cid, cid_to_str, parse_cid
from marketd.ipfs.errors import BlockstoreError, InvalidCidError
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile

ALL_STATUSES = ("queued", "pinning", "pinned", "failed")
PENDING_STATUSES = ("queued", "pinning")


class ContentReader(Protocol):
    async def fetch(self, cid: Cid | str) -> bytes: ...


class PinningServiceError(BlockstoreError):
    """An error reply (``{"error": {"reason", "details"}}``) or an unusable answer."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PinStatus:
    requestid: str
    status: str
    cid: Cid
    name: str | None
    created: str
    delegates: tuple[str, ...] = ()
    info: Mapping[str, str] = field(default_factory=dict)


class PinningServiceStore:
    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        client: httpx.AsyncClient | None = None,
        reader: ContentReader | None = None,
        origins: Sequence[str] = (),
        wait_until_pinned: bool = False,
        poll_interval: float = 2.0,
        pin_timeout: float = 600.0,
        timeout: float = 30.0,
        name: str = "pinning-service",
    ) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._reader = reader
        self._origins = list(origins)
        self._wait = wait_until_pinned
        self._poll_interval = poll_interval
        self._pin_timeout = pin_timeout
        self._timeout = timeout
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        """Request a pin of the locally computed CID (waiting for ``pinned`` if configured)."""
        cid = file_cid(data, profile)
        status = await self.add_pin(cid, name=cid_to_str(cid))
        if self._wait:
            await self.wait_until_pinned(status.requestid)
        return StoredContent(cid=cid, profile=profile, size=len(data))

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        """A pin request per document (the API has no batch upload), a few at a time."""
        return await put_each(self, documents, profile)

    async def get(self, cid: Cid | str) -> bytes:
        if self._reader is None:
            raise PinningServiceError(f"{self._name} serves no content and has no reader")
        return await self._reader.fetch(cid)

    async def has(self, cid: Cid | str) -> bool:
        return bool(await self.list_pins(cid, statuses=("pinned",)))

    async def pin(self, cid: Cid | str) -> None:
        if not [p for p in await self.list_pins(cid) if p.status != "failed"]:
            await self.add_pin(cid, name=cid_to_str(cid))

    async def unpin(self, cid: Cid | str) -> None:
        for status in await self.list_pins(cid):
            await self.delete_pin(status.requestid)

    async def add_pin(
        self, cid: Cid | str, *, name: str | None = None, meta: Mapping[str, str] | None = None
    ) -> PinStatus:
        body: dict[str, Any] = {"cid": cid_to_str(cid)}
        if name is not None:
            body["name"] = name
        if self._origins:
            body["origins"] = self._origins
        if meta:
            body["meta"] = dict(meta)
        reply = await self._request("POST", "/pins", json=body, expect=(202, 200))
        status = _pin_status(reply.json())
        if status.cid != parse_cid(cid):
            raise PinningServiceError(f"{self._name} acknowledged {status.cid}, asked {cid}")
        return status

    async def get_pin(self, requestid: str) -> PinStatus:
        reply = await self._request("GET", f"/pins/{requestid}", expect=(200,))
        return _pin_status(reply.json())

    async def list_pins(
        self, cid: Cid | str, *, statuses: Sequence[str] = ALL_STATUSES, limit: int = 1000
    ) -> list[PinStatus]:
        """Pin requests for ``cid`` (the spec lists only ``pinned`` ones unless told)."""
        params = {"cid": cid_to_str(cid), "status": ",".join(statuses), "limit": str(limit)}
        reply = await self._request("GET", "/pins", params=params, expect=(200,))
        body = reply.json()
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise PinningServiceError(f"{self._name} returned no results list")
        return [_pin_status(item) for item in results]

    async def delete_pin(self, requestid: str) -> None:
        await self._request("DELETE", f"/pins/{requestid}", expect=(202, 200, 404))

    async def wait_until_pinned(self, requestid: str) -> PinStatus:
        """Poll the pin request until ``pinned``; raise on ``failed`` or after ``pin_timeout``."""
        deadline = time.monotonic() + self._pin_timeout
        while True:
            status = await self.get_pin(requestid)
            if status.status == "pinned":
                return status
            if status.status == "failed":
                detail = status.info.get("status_details", "")
                raise PinningServiceError(f"{self._name} failed to pin {status.cid} {detail}")
            if time.monotonic() >= deadline:
                raise PinningServiceError(
                    f"{self._name}: {status.cid} still {status.status} after {self._pin_timeout}s"
                )
            await asyncio.sleep(self._poll_interval)

    async def _request(
        self, method: str, path: str, *, expect: tuple[int, ...], **kwargs: Any
    ) -> httpx.Response:
        try:
            reply = await self._client.request(
                method,
                self._endpoint + path,
                headers=self._headers,
                timeout=self._timeout,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise PinningServiceError(f"{self._name} {method} {path}: {exc!r}") from exc
        if reply.status_code not in expect:
            reason, details = _failure(reply)
            raise PinningServiceError(
                f"{self._name} {method} {path}: HTTP {reply.status_code} {reason}: {details}",
                status=reply.status_code,
                reason=reason,
            )
        return reply


def _failure(reply: httpx.Response) -> tuple[str, str]:
    try:
        error = reply.json()["error"]
        return str(error.get("reason", "")), str(error.get("details", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", reply.text[:300]


def _pin_status(raw: Any) -> PinStatus:
    try:
        return PinStatus(
            requestid=str(raw["requestid"]),
            status=str(raw["status"]),
            cid=parse_cid(raw["pin"]["cid"]),
            name=raw["pin"].get("name"),
            created=str(raw["created"]),
            delegates=tuple(raw.get("delegates") or ()),
            info=dict(raw.get("info") or {}),
        )
    except (KeyError, TypeError, AttributeError, InvalidCidError) as exc:
        raise PinningServiceError(f"malformed PinStatus: {exc!r}") from exc
