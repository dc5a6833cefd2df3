"""/readyz reflects the database, Redis, the chain RPC and the IPFS node; every check runs
concurrently under a short timeout, and a failure names the check without leaking its URL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from solders.keypair import Keypair

from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import RpcEndpoint, serve_local_rpc
from marketd.chain.localnet.seed import LocalProgram, ensure_global_config
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.program import program_coder, program_id
from marketd.config import ReadinessSettings, Settings
from marketd.health.checks import (
    PAUSED,
    CheckFailed,
    ReadinessProbe,
    chain_rpc_health,
    kubo_version,
    run_checks,
)

from ..helpers.servers import closed_port_url, kubo_stub, serve, silent_server


@pytest_asyncio.fixture
async def local_rpc() -> AsyncIterator[RpcEndpoint]:
    async with serve_local_rpc(LocalChain()) as endpoint:
        yield endpoint


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Readiness settings from this test's environment only (no stray `.env`)."""
    monkeypatch.chdir(tmp_path)
    for name in ("IPFS_API_URL", "IPFS_API_AUTHORIZATION", "READINESS_OPTIONAL_CHECKS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def check_up(name: str) -> float | None:
    return REGISTRY.get_sample_value("marketd_readiness_check_up", {"check": name})


async def test_ready_when_every_configured_dependency_answers(
    api_factory: Callable[..., Any], local_rpc: RpcEndpoint, environment: pytest.MonkeyPatch
) -> None:
    async with serve(kubo_stub()) as kubo:
        environment.setenv("IPFS_API_URL", kubo)
        api = await api_factory(solana_rpc_url=local_rpc.http_url)
        response = await api.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    expected = {"database", "chain_rpc", "chain_program", "ipfs"} | (
        {"redis"} if api.container.redis else set()
    )
    assert body == {"status": "ready", "checks": dict.fromkeys(expected, "ok")}
    assert check_up("chain_rpc") == 1
    assert check_up("ipfs") == 1


async def test_unreachable_chain_rpc_makes_the_process_unready(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    rpc_url = closed_port_url() + "/?api-key=secret-key"
    api = await api_factory(solana_rpc_url=rpc_url)
    response = await api.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["failed"] == ["chain_rpc"]
    assert "chain_rpc" in body["detail"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["chain_rpc"] == "error: ConnectError"
    assert "secret-key" not in response.text
    assert check_up("chain_rpc") == 0


async def test_a_paused_program_degrades_readiness_until_it_is_resumed(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    """emergency_pause (the real instruction, on the twin): /readyz says so, degraded."""
    chain = LocalChain()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    coder, program_key = program_coder(settings), program_id(settings)
    chain.load_program(program_key, program_artifact())
    program = LocalProgram(chain, program_key, coder)
    admin = Keypair()
    ensure_global_config(program, admin)
    accounts = {"admin": admin.pubkey(), "global_config": program.config}
    async with serve_local_rpc(chain) as endpoint:
        program.call("emergency_pause", {}, accounts, [admin])
        chain.advance_slots(2)  # confirmed (the probe reads at "confirmed")
        paused = await (await api_factory(solana_rpc_url=endpoint.http_url)).client.get("/readyz")
        program.call("emergency_pause", {}, accounts, [admin])  # toggles back
        chain.advance_slots(2)
        resumed = await (await api_factory(solana_rpc_url=endpoint.http_url)).client.get("/readyz")
    assert paused.status_code == 200
    assert paused.json()["status"] == "degraded"
    assert paused.json()["checks"]["chain_program"] == f"error: {PAUSED}"
    assert resumed.json()["status"] == "ready"
    assert resumed.json()["checks"]["chain_program"] == "ok"


async def test_unreachable_ipfs_node_makes_the_process_unready(
    api_factory: Callable[..., Any], local_rpc: RpcEndpoint, environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("IPFS_API_URL", closed_port_url())
    api = await api_factory(solana_rpc_url=local_rpc.http_url)
    response = await api.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["type"].endswith("not-ready")
    assert body["failed"] == ["ipfs"]
    assert body["checks"]["chain_rpc"] == "ok"
    assert body["checks"]["ipfs"].startswith("error: ")


async def test_optional_checks_degrade_without_failing(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    environment.setenv("IPFS_API_URL", closed_port_url())
    environment.setenv("READINESS_OPTIONAL_CHECKS", "chain_rpc, ipfs")
    api = await api_factory(solana_rpc_url=closed_port_url())
    response = await api.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["ipfs"].startswith("error: ")
    assert body["checks"]["chain_rpc"].startswith("error: ")


async def test_ipfs_credentials_are_sent_and_a_refusal_is_reported(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    async with serve(kubo_stub(authorization="Basic c2VjcmV0")) as kubo:
        environment.setenv("IPFS_API_URL", kubo)
        refused = await (await api_factory()).client.get("/readyz")
        # The readiness settings are read once per process, at its first probe.
        environment.setenv("IPFS_API_AUTHORIZATION", "Basic c2VjcmV0")
        accepted = await (await api_factory()).client.get("/readyz")
    assert refused.status_code == 503
    assert refused.json()["checks"]["ipfs"] == "error: HTTP 401"
    assert accepted.status_code == 200
    assert accepted.json()["checks"]["ipfs"] == "ok"


async def test_a_hung_dependency_is_cut_off_by_the_timeout() -> None:
    answered: list[str] = []

    async def fast() -> None:
        answered.append("fast")

    async with silent_server() as url, httpx.AsyncClient() as http:
        readiness = await run_checks(
            {"chain_rpc": lambda: chain_rpc_health(http, url), "database": fast}, 0.2
        )
    assert readiness.details() == {
        "chain_rpc": "error: no answer within 0.2s",
        "database": "ok",
    }
    assert readiness.failed == ["chain_rpc"]
    assert answered == ["fast"]


def rpc_client(answers: dict[str, httpx.Response], seen: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        seen.append(method)
        return answers[method]

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def rpc_error(code: int, message: str) -> httpx.Response:
    return httpx.Response(
        200, json={"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    )


async def test_a_node_that_is_behind_is_unhealthy() -> None:
    seen: list[str] = []
    answers = {"getHealth": rpc_error(-32005, "Node is behind by 42 slots")}
    async with rpc_client(answers, seen) as http:
        with pytest.raises(CheckFailed, match="RPC -32005: Node is behind by 42 slots"):
            await chain_rpc_health(http, "http://rpc.test")
    assert seen == ["getHealth"]


async def test_a_provider_without_get_health_is_asked_for_the_slot() -> None:
    seen: list[str] = []
    answers = {
        "getHealth": rpc_error(-32601, "Method not found"),
        "getSlot": httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": 1234}),
    }
    async with rpc_client(answers, seen) as http:
        await chain_rpc_health(http, "http://rpc.test")
    assert seen == ["getHealth", "getSlot"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, json={"hello": "world"}), "not a JSON-RPC answer"),
        (httpx.Response(429, text="slow down"), "HTTP 429"),
    ],
)
async def test_answers_that_are_not_healthy_rpc_replies(
    answer: httpx.Response, message: str
) -> None:
    async with rpc_client({"getHealth": answer}, []) as http:
        with pytest.raises(CheckFailed, match=message):
            await chain_rpc_health(http, "http://rpc.test")


async def test_a_server_that_is_not_kubo_is_unhealthy() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path == "/api/v0/version"
        return httpx.Response(200, json={"status": "ok"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(CheckFailed, match="not a Kubo RPC answer"):
            await kubo_version(http, "http://kubo.test/")


def test_optional_checks_parse_from_a_comma_separated_list(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("READINESS_OPTIONAL_CHECKS", " ipfs ,, chain_rpc")
    assert Settings(_env_file=None).readiness.optional_checks == ["ipfs", "chain_rpc"]
    assert ReadinessSettings(optional_checks=["redis"]).optional_checks == ["redis"]


def counting_kubo() -> tuple[Any, list[int]]:
    """A Kubo stand-in that counts the probes it answers."""
    calls: list[int] = []
    app = kubo_stub()

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(1)
        await app(scope, receive, send)

    return counted, calls


async def test_one_probe_answers_every_caller_within_the_cache_window(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    stub, probes = counting_kubo()
    async with serve(stub) as kubo:
        environment.setenv("IPFS_API_URL", kubo)
        environment.setenv("READINESS_CACHE_SECONDS", "3600")
        api = await api_factory()
        answers = await asyncio.gather(*(api.client.get("/readyz") for _ in range(20)))
        answers.append(await api.client.get("/readyz"))
    assert {a.status_code for a in answers} == {200}
    assert len(probes) == 1  # concurrent callers waited for the probe under way


async def test_the_cached_result_expires(
    api_factory: Callable[..., Any], environment: pytest.MonkeyPatch
) -> None:
    stub, probes = counting_kubo()
    moments = iter([0.0, 0.0, 0.5, 2.0, 2.0])
    async with serve(stub) as kubo:
        environment.setenv("IPFS_API_URL", kubo)
        api = await api_factory()
        probe = ReadinessProbe(api.container, clock=lambda: next(moments))
        assert (await probe.readiness()).ready  # t=0: probed
        assert (await probe.readiness()).ready  # t=0.5: cached (default 1 s)
        assert len(probes) == 1
        assert (await probe.readiness()).ready  # t=2: probed again
    assert len(probes) == 2


async def test_probes_open_no_http_client_of_their_own(
    api_factory: Callable[..., Any],
    environment: pytest.MonkeyPatch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client per probe (a new pool and TLS context each) made the server grow by ~0.8 MB a
    call under the serving process's tuned garbage collector: probes share the process's."""
    opened: list[int] = []
    original = httpx.AsyncClient.__init__

    def counting_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        opened.append(1)
        original(self, *args, **kwargs)

    async with serve(kubo_stub()) as kubo:
        environment.setenv("IPFS_API_URL", kubo)
        environment.setenv("READINESS_CACHE_SECONDS", "0")
        api = await api_factory()
        monkeypatch.setattr(httpx.AsyncClient, "__init__", counting_init)
        for _ in range(50):
            assert (await api.client.get("/readyz")).status_code == 200
    assert opened == []
