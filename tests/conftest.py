"""Fixtures shared by every test tier.

Integration tiers use the real PostgreSQL and Redis of the machine: each run creates its own
database (`marketd_test_<run>`) and key prefix (`marketd-test-<run>:`) and removes them at the
end, so concurrent runs never collide.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from marketd.app import create_app
from marketd.chain.program import BUNDLED_IDL
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.migrate import upgrade

from .helpers.api import TEST_ORIGIN, Api, truncate
from .helpers.databases import (
    FIXTURES,
    REDIS_TEST_URL,
    RUN_ID,
    build_original_database,
    create_database,
    drop_database,
    migrate,
)
from .helpers.logs import plain_test_logging

# A test that uses one of these fixtures (directly or through another fixture) needs a real
# PostgreSQL, Redis, chain or IPFS peer: it gets the `integration` marker, so `make unit`
# (`pytest -m "not integration"`) runs only the tests that need none of them.
INTEGRATION_FIXTURES = frozenset(
    {
        "postgres_url",
        "supabase_url",
        "database_url",
        "redis_url",
        "redis_prefix",
        "chain_world",
        "chain_database",
        "ipfs_peer",
        "ipfs_pinning_mock",
        "ipfs_trustless_gateways",
        "ipfs_node_modules",
        "scale_cluster",
        "shutdown_cluster",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _plain_logging() -> None:
    """Each test starts from the tests' logging: an entry point under test (`cli.main`)
    configures the process's (level INFO drops debug events a later test captures)."""
    plain_test_logging()


@pytest.fixture(autouse=True)
def process_collector() -> Iterator[None]:
    """Entry points under test tune this process's garbage collector (`tune_garbage_collector`,
    meant for a server process): put it back after each test."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_threshold() != thresholds:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Data files the tests use, kept in the repo (tests/fixtures/SOURCES.md says where each
    comes from)."""
    return FIXTURES


@pytest.fixture(scope="session")
def zmart_idl_path() -> Path:
    """The real program's IDL, as marketd bundles it for production."""
    return BUNDLED_IDL


@pytest_asyncio.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database of this test run, dropped at the end."""
    name = f"marketd_test_{RUN_ID}"
    url = await create_database(name)
    await migrate(url)
    yield url
    await drop_database(name)


@pytest_asyncio.fixture(scope="session")
async def supabase_url() -> AsyncIterator[str]:
    """The platform's database as marketd finds it on Supabase (baseline.sql, the original
    schema, the platform's rows), then `marketd migrate`: the third backend of the API tests."""
    name = f"marketd_test_{RUN_ID}_supabase"
    url = await create_database(name)
    await build_original_database(url, rows=True)
    await migrate(url)
    yield url
    await drop_database(name)


@pytest_asyncio.fixture(scope="session")
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this run; every key under it is deleted at the end."""
    prefix = f"marketd-test-{RUN_ID}:"
    yield prefix
    client = Redis.from_url(REDIS_TEST_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_url() -> str:
    return REDIS_TEST_URL


@pytest.fixture(params=["postgres", "embedded", "supabase"])
def backend(request: pytest.FixtureRequest) -> str:
    """Where the API runs: marketd's own fresh PostgreSQL schema, the embedded SQLite
    database, or the platform's Supabase database marketd adopted (`supabase_url`)."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL database of the backend (None: embedded); the adopted Supabase one is
    built only when a test asks for it."""
    if backend == "embedded":
        return None
    return str(request.getfixturevalue("supabase_url" if backend == "supabase" else "postgres_url"))


@pytest.fixture
def make_settings(
    database_url: str | None, redis_prefix: str, redis_url: str, tmp_path: Path
) -> Callable[..., Settings]:
    isolated = f"{redis_prefix}api-{uuid.uuid4().hex[:8]}:"  # this test's cache and budgets

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "rate_limit": "100000/minute",
            # Every test client is one address (203.0.113.9) signing in many wallets.
            "sign_in_rate_limit": "100000/minute",
            "ip_wallets_limit": 100_000,
            # Fresh keypairs vote in most tests; tests/votes/test_eligibility.py sets policies.
            "vote_eligibility": "any",
            "dispute_vote_eligibility": "any",
            "cors_origins": [TEST_ORIGIN],
            "_env_file": None,
        }
        if database_url is not None:
            values |= {
                "database_url": database_url,
                "redis_url": redis_url,
                "redis_prefix": isolated,
            }
        values |= overrides
        return Settings(**values)

    return build


@pytest_asyncio.fixture
async def api_factory(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    containers: list[Container] = []
    clients: list[httpx.AsyncClient] = []

    async def start(*, keep_rows: bool = False, **overrides: Any) -> Api:
        """An app instance; the first one empties the database (unless `keep_rows`)."""
        settings = make_settings(**overrides)
        container = Container.build(settings)
        if settings.is_embedded_database:
            await upgrade(container.database.engine)
        if not containers and not keep_rows:
            await truncate(container)
        containers.append(container)
        app = create_app(container=container)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5555)),
            base_url="http://testserver",
        )
        clients.append(client)
        return Api(container, client)

    yield start
    for client in clients:
        await client.aclose()
    for container in containers:
        await container.close()


@pytest_asyncio.fixture
async def api(api_factory: Callable[..., Any]) -> Api:
    result: Api = await api_factory()
    return result
