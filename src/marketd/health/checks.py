"""Readiness checks: every dependency this process needs, probed concurrently, each bounded
by a short timeout.

A check is an async callable that returns when the dependency answers and raises when it does
not. Results never carry a URL: RPC and IPFS provider URLs often embed an API key
(``?api-key=…``), and ``/readyz`` is public.

Chain RPC: JSON-RPC ``getHealth`` (``"ok"``, or error -32005 "node is behind"); a provider that
does not offer ``getHealth`` (method not found) is asked ``getSlot`` instead. Chain program: the
GlobalConfig's ``is_paused`` (``emergency_pause``: the program then refuses create_market,
buy_shares and sell_shares); a paused program degrades readiness (reads still work), it never
fails it. IPFS: Kubo RPC
``POST /api/v0/version`` (Kubo answers only POST on its RPC API).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import Gauge
from pydantic import SecretStr

from marketd.chain.addresses import global_config_address
from marketd.chain.idl import IdlCoder
from marketd.chain.program import program_coder, program_id
from marketd.core.container import Container

Check = Callable[[], Awaitable[object]]
"""Returns (any value) when the dependency answers; raises when it does not."""

METHOD_NOT_FOUND = -32601
CHECK_UP = Gauge(
    "marketd_readiness_check_up", "1 when the dependency answered the last probe.", ["check"]
)


class CheckFailed(Exception):
    """A dependency answered, but not healthily; the message is safe to show."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # "ok" or "error: <short reason>"


@dataclass(frozen=True)
class Readiness:
    results: list[CheckResult]
    optional: frozenset[str]

    @property
    def failed(self) -> list[str]:
        """Failed checks that make the process unready (optional ones excluded)."""
        return [r.name for r in self.results if not r.ok and r.name not in self.optional]

    @property
    def degraded(self) -> list[str]:
        return [r.name for r in self.results if not r.ok and r.name in self.optional]

    @property
    def ready(self) -> bool:
        return not self.failed

    def details(self) -> dict[str, str]:
        return {r.name: r.detail for r in self.results}


async def run_check(name: str, check: Check, limit_seconds: float) -> CheckResult:
    try:
        async with asyncio.timeout(limit_seconds):
            await check()
    except TimeoutError:
        result = CheckResult(name, False, f"error: no answer within {limit_seconds:g}s")
    except CheckFailed as exc:
        result = CheckResult(name, False, f"error: {exc}")
    except Exception as exc:
        result = CheckResult(name, False, f"error: {type(exc).__name__}")
    else:
        result = CheckResult(name, True, "ok")
    CHECK_UP.labels(name).set(1 if result.ok else 0)
    return result


async def run_checks(
    checks: Mapping[str, Check], limit_seconds: float, optional: Iterable[str] = ()
) -> Readiness:
    """All checks at once, each bounded by `limit_seconds`."""
    results = await asyncio.gather(
        *(run_check(name, check, limit_seconds) for name, check in checks.items())
    )
    return Readiness(list(results), frozenset(optional))


async def chain_rpc_health(http: httpx.AsyncClient, rpc_url: str) -> None:
    error = await _rpc_error(http, rpc_url, "getHealth")
    if error is not None and error.get("code") == METHOD_NOT_FOUND:
        error = await _rpc_error(http, rpc_url, "getSlot")
    if error is not None:
        raise CheckFailed(f"RPC {error.get('code')}: {str(error.get('message', ''))[:120]}")


PAUSED = "protocol paused (emergency_pause): trades and new markets are refused until resumed"
CHAIN_PROGRAM = "chain_program"


async def chain_program_state(
    http: httpx.AsyncClient, rpc_url: str, config_address: str, coder: IdlCoder
) -> None:
    """Fails (with `PAUSED`) while the program's GlobalConfig says it is paused."""
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getAccountInfo",
        "params": [config_address, {"encoding": "base64", "commitment": "confirmed"}],
    }
    response = await http.post(rpc_url, json=request)
    _require_success(response)
    value = (response.json().get("result") or {}).get("value")
    if value is None:
        return  # not initialised yet: nothing is paused
    data = base64.b64decode(value["data"][0])
    config = coder.decode_account("GlobalConfig", data, allow_trailing=True)
    if config["is_paused"]:
        raise CheckFailed(PAUSED)


async def _rpc_error(http: httpx.AsyncClient, rpc_url: str, method: str) -> dict[str, Any] | None:
    """The JSON-RPC error object of calling `method`, or None when it answered a result."""
    request = {"jsonrpc": "2.0", "id": 1, "method": method}
    response = await http.post(rpc_url, json=request)
    _require_success(response)
    body = response.json()
    if "error" in body:
        error: dict[str, Any] = body["error"]
        return error
    if "result" not in body:
        raise CheckFailed("not a JSON-RPC answer")
    return None


async def kubo_version(
    http: httpx.AsyncClient, api_url: str, authorization: SecretStr | None = None
) -> None:
    headers = {"Authorization": authorization.get_secret_value()} if authorization else {}
    response = await http.post(api_url.rstrip("/") + "/api/v0/version", headers=headers)
    _require_success(response)
    if "Version" not in response.json():
        raise CheckFailed("not a Kubo RPC answer")


def _require_success(response: httpx.Response) -> None:
    if response.status_code != httpx.codes.OK:
        raise CheckFailed(f"HTTP {response.status_code}")


def readiness_checks(container: Container, http: httpx.AsyncClient) -> dict[str, Check]:
    """The checks of what this process is configured to use: the database always; Redis,
    the chain RPC and the Kubo node the snapshots are stored on when configured."""
    checks: dict[str, Check] = {"database": container.database.ping}
    redis = container.redis
    if redis is not None:

        async def redis_ping() -> None:
            await redis.ping()

        checks["redis"] = redis_ping
    settings = container.settings
    rpc_url = settings.solana_rpc_url
    if rpc_url is not None:
        coder = program_coder(settings)
        config_address = str(global_config_address(program_id(settings)))
        checks["chain_rpc"] = lambda: chain_rpc_health(http, rpc_url)
        checks[CHAIN_PROGRAM] = lambda: chain_program_state(http, rpc_url, config_address, coder)
    ipfs_url = settings.snapshots.ipfs_api_url
    if ipfs_url is not None:
        authorization = settings.snapshots.ipfs_api_authorization
        checks["ipfs"] = lambda: kubo_version(http, ipfs_url, authorization)
    return checks


async def check_readiness(container: Container) -> Readiness:
    """Probe every dependency now, through the process's shared HTTP client."""
    config = container.settings.readiness
    checks = readiness_checks(container, container.http)
    # A paused program degrades readiness: the API still serves everything but trades.
    optional = [*config.optional_checks, CHAIN_PROGRAM]
    return await run_checks(checks, config.timeout_seconds, optional)


class ReadinessProbe:
    """The readiness of one process, probed at most once per ``READINESS_CACHE_SECONDS``.

    A load balancer, an orchestrator and a monitor may each ask several times a second, and
    /readyz is public: without this, every call touches the database, Redis, the RPC node and
    the IPFS node. Callers that arrive while a probe runs wait for that probe instead of
    starting their own."""

    def __init__(
        self, container: Container, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.container = container
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: tuple[float, Readiness] | None = None

    async def readiness(self) -> Readiness:
        cache_seconds = self.container.settings.readiness.cache_seconds
        async with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < cache_seconds:
                return self._last[1]
            result = await check_readiness(self.container)
            self._last = (self._clock(), result)
            return result
