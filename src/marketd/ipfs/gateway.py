"""Verified retrieval from an ordered list of HTTP gateways (trustless gateway protocol).

A raw-codec CID is one block: ``GET {gw}/ipfs/{cid}?format=raw`` (``Accept:
application/vnd.ipld.raw``). A dag-pb CID is asked for as a CAR: ``?format=car`` (``Accept:
application/vnd.ipld.car``), verified whole by ``car.verify_car``. Gateways are untrusted: one
that is down, slow, oversized or serves bytes that do not verify is skipped and counted
(``GatewayStats`` and the Prometheus counter ``marketd_ipfs_gateway_failures_total``), and the
next is tried. When none succeeds, ``ContentUnavailableError`` is raised (the API maps it to 502).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import structlog
from prometheus_client import Counter as PrometheusCounter

from marketd.ipfs.car import verify_car, verify_raw_block
from marketd.ipfs.cid import RAW, Cid, cid_to_str, codec_of, parse_cid
from marketd.ipfs.errors import ContentUnavailableError, DecodeError, VerificationError

log = structlog.get_logger(__name__)

GATEWAY_FAILURES = PrometheusCounter(
    "marketd_ipfs_gateway_failures",
    "Gateway requests that did not yield verified content, by gateway and reason",
    ["gateway", "reason"],
)

RAW_MEDIA_TYPE = "application/vnd.ipld.raw"
CAR_MEDIA_TYPE = "application/vnd.ipld.car"


class FailureReason:
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    BAD_CONTENT = "bad_content"


@dataclass
class GatewayStats:
    """Per-process tallies, readable by tests and health endpoints."""

    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    successes: Counter[str] = field(default_factory=Counter)

    def record_failure(self, gateway: str, reason: str) -> None:
        self.failures[(gateway, reason)] += 1
        GATEWAY_FAILURES.labels(gateway=gateway, reason=reason).inc()

    def record_success(self, gateway: str) -> None:
        self.successes[gateway] += 1

    def failures_of(self, gateway: str) -> dict[str, int]:
        return {reason: n for (gw, reason), n in self.failures.items() if gw == gateway}


class _GatewayFailedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class GatewayReader:
    def __init__(
        self,
        gateways: Sequence[str],
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_bytes: int = 64 * 1024 * 1024,
        stats: GatewayStats | None = None,
    ) -> None:
        if not gateways:
            raise ValueError("at least one gateway is needed")
        self.gateways = [gateway.rstrip("/") for gateway in gateways]
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._timeout = timeout
        self._max_bytes = max_bytes
        self.stats = stats or GatewayStats()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def fetch(self, cid: Cid | str) -> bytes:
        """The file bytes of ``cid``, verified, from the first gateway that serves them."""
        root = parse_cid(cid)
        failures: list[str] = []
        for gateway in self.gateways:
            try:
                content = await self._fetch_from(gateway, root)
            except _GatewayFailedError as failure:
                self.stats.record_failure(gateway, failure.reason)
                log.warning("gateway failed", gateway=gateway, cid=str(root), error=str(failure))
                failures.append(f"{gateway}: {failure.reason} ({failure})")
                continue
            self.stats.record_success(gateway)
            return content
        raise ContentUnavailableError(
            f"no gateway served verified {cid_to_str(root)}: {'; '.join(failures)}"
        )

    async def _fetch_from(self, gateway: str, root: Cid) -> bytes:
        raw = codec_of(root) == RAW
        media_type = RAW_MEDIA_TYPE if raw else CAR_MEDIA_TYPE
        url = f"{gateway}/ipfs/{cid_to_str(root)}"
        params = {"format": "raw" if raw else "car"}
        body = await self._download(url, params, media_type)
        try:
            if raw:
                return verify_raw_block(body, root)
            return verify_car(body, root, max_size=self._max_bytes)
        except (VerificationError, DecodeError) as exc:
            raise _GatewayFailedError(FailureReason.BAD_CONTENT, str(exc)) from exc

    async def _download(self, url: str, params: dict[str, str], media_type: str) -> bytes:
        headers = {"Accept": media_type}
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream(
                    "GET", url, params=params, headers=headers, timeout=self._timeout
                ) as reply,
            ):
                if reply.status_code != 200:
                    raise _GatewayFailedError(FailureReason.HTTP_STATUS, f"{reply.status_code}")
                return await self._read_body(reply)
        except TimeoutError as exc:
            raise _GatewayFailedError(FailureReason.TIMEOUT, "timed out") from exc
        except httpx.TimeoutException as exc:
            raise _GatewayFailedError(FailureReason.TIMEOUT, repr(exc)) from exc
        except httpx.HTTPError as exc:
            raise _GatewayFailedError(FailureReason.UNREACHABLE, repr(exc)) from exc

    async def _read_body(self, reply: httpx.Response) -> bytes:
        body = bytearray()
        async for piece in reply.aiter_bytes():
            body += piece
            if len(body) > self._max_bytes:
                limit = f"more than {self._max_bytes} bytes"
                raise _GatewayFailedError(FailureReason.TOO_LARGE, limit)
        return bytes(body)
