"""Fixtures shared by every test tier.

Integration tiers use the real PostgreSQL and Redis of the machine: each run creates its own
database (`marketd_test_<run>`) and key prefix (`marketd-test-<run>:`) and removes them at the
end, so concurrent runs never collide.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import structlog
from redis.asyncio import Redis
from solders.keypair import Keypair
from sqlalchemy import text

from marketd.app import create_app
from marketd.chain.program import BUNDLED_IDL
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.database import create_engine
from marketd.core.migrate import upgrade
from marketd.markets.cache import LISTING_GROUP, market_group
from marketd.migrations.supabase_schema import load_description, original_schema_sql
from marketd.models import Base

REPO_ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("MARKETD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("MARKETD_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]
TEST_ORIGIN = "https://app.example"


def plain_test_logging() -> None:
    """structlog's defaults with plain tracebacks. With `rich` installed (schemathesis brings
    it) the default renderer prints each logged exception as a rich traceback with every
    frame's locals, which takes tens of milliseconds: a job retrying a failing call in a loop
    then starves the whole session's event loop."""
    structlog.reset_defaults()
    structlog.configure(
        processors=[
            *structlog.get_config()["processors"][:-1],
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )


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


@pytest.fixture(autouse=True, scope="session")
def _plain_logging() -> None:
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


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Data files the tests use, kept in the repo (tests/fixtures/SOURCES.md says where each
    comes from)."""
    return FIXTURES


@pytest.fixture(scope="session")
def zmart_idl_path() -> Path:
    """The real program's IDL, as marketd bundles it for production."""
    return BUNDLED_IDL


async def create_database(name: str) -> str:
    """A new empty database on the test server; its SQLAlchemy (asyncpg) URL."""
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return (
        PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        + "/"
        + name
    )


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def migrate(url: str) -> None:
    """`marketd migrate` on the database at `url`."""
    engine = create_engine(Settings(database_url=url))
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def plain_url(url: str) -> str:
    """The asyncpg form of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


SUPABASE = FIXTURES / "supabase"
ROLES_LOCK = 0x6D61726B6574  # advisory lock key: one run at a time creates the API roles


async def apply_baseline(url: str) -> None:
    """baseline.sql: what a new Supabase project has (the API roles, `auth.jwt()`, default
    grants). Roles are cluster-wide and shared by concurrent runs: their creation is
    serialised by an advisory lock (taken in the admin database, which every run shares),
    and they are never dropped."""
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute("SELECT pg_advisory_lock($1)", ROLES_LOCK)
        connection = await asyncpg.connect(plain_url(url))
        try:
            await connection.execute((SUPABASE / "baseline.sql").read_text(encoding="utf-8"))
        finally:
            await connection.close()
    finally:
        await admin.execute("SELECT pg_advisory_unlock($1)", ROLES_LOCK)
        await admin.close()


async def build_original_database(url: str, *, rows: bool) -> None:
    """The platform's database before marketd: baseline.sql, then the tables, constraints,
    indexes, triggers, row-level security and policies that original_schema.json describes
    (built by `original_schema_sql`), and with `rows` the platform's rows (rows.sql)."""
    await apply_baseline(url)
    description = load_description(SUPABASE / "original_schema.json")
    connection = await asyncpg.connect(plain_url(url))
    try:
        async with connection.transaction():
            for statement in original_schema_sql(description):
                await connection.execute(statement)
            if rows:
                await connection.execute((SUPABASE / "rows.sql").read_text(encoding="utf-8"))
    finally:
        await connection.close()


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


# ------------------------------------------------------------------------ the HTTP API


class Api:
    """An app instance with its client and helpers for signing in."""

    def __init__(self, container: Container, client: httpx.AsyncClient) -> None:
        self.container = container
        self.client = client

    async def sign_in(self, keypair: Keypair | None = None) -> tuple[Keypair, dict[str, str]]:
        keypair = keypair or Keypair()
        challenge = await self.client.post(
            "/api/auth/challenge", json={"wallet": str(keypair.pubkey())}
        )
        assert challenge.status_code == 200, challenge.text
        message = challenge.json()["message"]
        signature = keypair.sign_message(message.encode())
        verified = await self.client.post(
            "/api/auth/verify", json={"message": message, "signature": str(signature)}
        )
        assert verified.status_code == 200, verified.text
        return keypair, {"Authorization": f"Bearer {verified.json()['token']}"}

    async def market(self, headers: dict[str, str], state: str = "PROPOSED", **fields: Any) -> str:
        """Propose a market through the API, then move it to `state` as the chain would."""
        body = {"question": "Will the integration test pass today?", "category": "other"}
        created = await self.client.post("/api/markets", json=body | fields, headers=headers)
        assert created.status_code == 201, created.text
        market_id: str = created.json()["id"]
        if state != "PROPOSED":
            await self.execute(
                "UPDATE markets SET state = :state WHERE id = :id", state=state, id=market_id
            )
            await self.container.pages.drop(market_group(market_id), LISTING_GROUP)  # as indexed
        return market_id

    async def market_address(self, market_id: str) -> str:
        """The market's on-chain address (the platform's trades and positions copy it)."""
        rows = await self.execute(
            "SELECT on_chain_address FROM markets WHERE id = :id", id=market_id
        )
        return str(rows[0][0])

    async def execute(self, sql: str, **params: Any) -> list[Any]:
        """Run SQL directly (as the chain or an operator would change rows); SELECT rows."""
        async with self.container.database.engine.begin() as connection:
            result = await connection.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []


async def _truncate(container: Container) -> None:
    async with container.database.engine.begin() as connection:
        names = [table.name for table in reversed(Base.metadata.sorted_tables)]
        if container.database.dialect == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(names)} CASCADE"))
        else:
            for name in names:
                await connection.execute(text(f"DELETE FROM {name}"))


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
            await _truncate(container)
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
