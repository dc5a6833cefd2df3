"""`marketd migrate` on the platform's Supabase database: it adopts the platform's tables (every
row kept, the platform's other clients still served), ends in the schema it builds on an empty
database, and keeps its own tables away from the REST API's roles."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alembic.script import ScriptDirectory

from marketd.core.migrate import alembic_config
from marketd.migrations.supabase_schema import (
    PLATFORM_SCHEMA,
    load_description,
    original_schema_sql,
    platform_tables,
)

from ..helpers.databases import (
    FIXTURES,
    apply_baseline,
    build_original_database,
    create_database,
    drop_database,
    migrate,
    plain_url,
)
from .catalog import describe

pytestmark = pytest.mark.integration  # builds its own PostgreSQL databases

ORIGINAL = load_description(FIXTURES / "supabase" / "original_schema.json")
PRIVATE = (
    "alembic_version",
    "auth_nonces",
    "auth_sessions",
    "chain_events",
    "chain_outbox",
    "indexer_checkpoints",
    "market_schedules",
    "market_stats",
    "market_trade_hours",
    "snapshot_pins",
    "trade_submissions",
    "vote_log",
)
MARKET = "a3f1c2d4e5b60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00"
BARE_MARKET = "0b7c4e1f9a2d3c5b6e8f7a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e"
ALICE = "4Nd1mY2ZtuW8oWQ4ZuAYL5sS7pQYcVWhTqjXtCCW9sKa"
BOB = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


@pytest.fixture
def backend() -> str:
    """These tests make their own databases; the API ones run on PostgreSQL."""
    return "postgres"


async def scratch(build: Callable[[str], Any] | None = None) -> tuple[str, str]:
    """A new database of this run (name, URL), built by `build`."""
    name = f"marketd_sb_{uuid.uuid4().hex[:10]}"
    url = await create_database(name)
    if build is not None:
        await build(url)
    return name, url


async def described(url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(plain_url(url))
    try:
        return await describe(connection)
    finally:
        await connection.close()


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(plain_url(url))
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def row_counts(url: str) -> dict[str, int]:
    return {
        table: (await fetch(url, f'SELECT count(*) FROM "{table}"'))[0][0]
        for table in platform_tables(ORIGINAL)
    }


@pytest_asyncio.fixture(scope="module")
async def adopted_url() -> AsyncIterator[str]:
    """The platform's database with its rows, after `marketd migrate`."""
    name, url = await scratch(lambda url: build_original_database(url, rows=True))
    await migrate(url)
    yield url
    await drop_database(name)


def test_the_packaged_platform_schema_is_the_fixture():
    """Migration 0001 builds from its own copy of the description (code never reads tests/)."""
    assert json.loads(PLATFORM_SCHEMA.read_text()) == ORIGINAL


async def test_the_builder_reproduces_the_described_database_exactly():
    name, url = await scratch(lambda url: build_original_database(url, rows=False))
    try:
        got = await described(url)
    finally:
        await drop_database(name)
    for table, spec in ORIGINAL["tables"].items():
        assert got["tables"][table] == spec, table
    assert set(got["tables"]) == set(ORIGINAL["tables"])
    assert (got["extensions"], got["functions"]) == (ORIGINAL["extensions"], ORIGINAL["functions"])


async def test_migrate_adopts_the_platform_database_keeps_every_row_and_runs_twice():
    name, url = await scratch(lambda url: build_original_database(url, rows=True))
    try:
        before = await row_counts(url)
        markets_before = await fetch(url, "SELECT id, question, state FROM markets ORDER BY id")
        await migrate(url)
        once = await described(url)
        await migrate(url)  # again: nothing to do, nothing fails
        assert await described(url) == once
        assert await row_counts(url) == before
        assert await fetch(url, "SELECT id, question, state FROM markets ORDER BY id") == (
            markets_before
        )
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert (await fetch(url, "SELECT version_num FROM alembic_version"))[0][0] == head
        # The rows written with NULL counters read as marketd writes a new market.
        bare = (
            await fetch(
                url,
                "SELECT shares_yes, current_price_yes, is_cancelled, tags, current_liquidity"
                " FROM markets WHERE id = $1",
                BARE_MARKET,
            )
        )[0]
        assert tuple(bare) == (0, pytest.approx(0.5), False, [], 0)
        # Every row of the added id columns got its own id.
        ids = await fetch(url, "SELECT id FROM positions UNION ALL SELECT id FROM proposal_votes")
        assert len({row[0] for row in ids}) == len(ids) == 3
    finally:
        await drop_database(name)


def _without(spec: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in spec.items() if key not in keys}


async def test_an_empty_database_and_the_adopted_one_end_in_one_schema(adopted_url, postgres_url):
    """Built on an empty Supabase database (baseline.sql only), marketd's schema is the adopted
    one column by column, with the same constraints, indexes, triggers, row-level security and
    policies; on a plain PostgreSQL (no Supabase roles) all but the policies."""

    async def baseline_then_migrate(url: str) -> None:
        await apply_baseline(url)
        await migrate(url)

    name, url = await scratch(baseline_then_migrate)
    try:
        fresh = await described(url)
    finally:
        await drop_database(name)
    adopted = await described(adopted_url)
    assert set(fresh["tables"]) == set(adopted["tables"])
    for table in adopted["tables"]:
        assert fresh["tables"][table]["columns"] == adopted["tables"][table]["columns"], table
        assert fresh["tables"][table] == adopted["tables"][table], table
    assert (fresh["extensions"], fresh["functions"]) == (
        adopted["extensions"],
        adopted["functions"],
    )
    plain = await described(postgres_url)
    for table in adopted["tables"]:
        assert _without(plain["tables"][table], "policies") == _without(
            adopted["tables"][table], "policies"
        ), table


async def test_every_original_column_constraint_index_and_policy_is_kept(adopted_url):
    """What the platform built stays; marketd only adds (valid_state is widened in place)."""
    adopted = await described(adopted_url)
    for table, spec in ORIGINAL["tables"].items():
        now = adopted["tables"][table]
        for column, definition in spec["columns"].items():
            assert now["columns"][column] == definition, (table, column)
        for key in ("indexes", "policies", "triggers"):
            assert [item for item in spec[key] if item not in now[key]] == [], (table, key)
        widened = {"valid_state"} if table == "markets" else set()
        missing = [c for c in spec["constraints"] if c not in now["constraints"]]
        assert {c["name"] for c in missing} == widened, table
        assert now["row_level_security"] == spec["row_level_security"]
    state = next(
        c for c in adopted["tables"]["markets"]["constraints"] if c["name"] == "valid_state"
    )
    assert "'CANCELLED'::text" in state["definition"] and "'DISPUTED'::text" in state["definition"]


async def test_marketd_own_tables_are_locked_away_from_the_api_roles(adopted_url):
    """Guards future migrations too: every table of schema public that is not the platform's
    has row-level security on and grants the API roles nothing."""
    rows = await fetch(
        adopted_url,
        "SELECT c.relname, c.relrowsecurity,"
        " (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,"
        " bool_or(has_table_privilege(r.rolname, c.oid, 'SELECT,INSERT,UPDATE,DELETE')) AS granted"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN (VALUES ('anon'), ('authenticated'), ('service_role')) AS r(rolname)"
        " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        " GROUP BY c.relname, c.relrowsecurity, c.oid",
    )
    private = {row["relname"]: row for row in rows if row["relname"] not in ORIGINAL["tables"]}
    assert set(private) == set(PRIVATE)
    for table, row in private.items():
        assert row["relrowsecurity"] and row["policies"] == 0 and not row["granted"], table


async def as_role(
    url: str, role: str, claims: dict[str, Any], sql: str, *args: Any
) -> list[asyncpg.Record]:
    """Run `sql` as PostgREST runs a request: SET ROLE and the request's JWT claims, in one
    transaction (rolled back: nothing the checks write stays)."""
    connection = await asyncpg.connect(plain_url(url))
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute(f"SET LOCAL ROLE {role}")
            await connection.execute(
                "SELECT set_config('request.jwt.claims', $1, true)", json.dumps(claims)
            )
            return list(await connection.fetch(sql, *args))
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


ANON = ("anon", {"role": "anon"})
SIGNED_IN = ("authenticated", {"role": "authenticated", "sub": BOB})


@pytest.mark.parametrize(("role", "claims"), [ANON, SIGNED_IN], ids=["anon", "authenticated"])
@pytest.mark.parametrize("table", PRIVATE)
async def test_the_api_roles_can_neither_read_nor_write_marketd_tables(
    adopted_url, role, claims, table
):
    for sql in (f'SELECT * FROM "{table}" LIMIT 1', f'DELETE FROM "{table}"'):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_role(adopted_url, role, claims, sql)


async def test_the_platform_policies_still_serve_its_clients(adopted_url):
    markets = await as_role(adopted_url, *ANON, "SELECT id FROM markets WHERE id = $1", MARKET)
    assert [row["id"] for row in markets] == [MARKET]
    posts = await as_role(
        adopted_url, *ANON, "SELECT content FROM discussions WHERE market_id = $1", MARKET
    )
    assert "The ETF flows say yes." in [r["content"] for r in posts]
    assert "Removed by its author." not in [r["content"] for r in posts]  # soft-deleted
    events = await as_role(adopted_url, *ANON, "SELECT count(*) FROM events")
    assert events[0][0] == 0  # backend-only table: no rows for anon
    own = await as_role(
        adopted_url,
        *SIGNED_IN,
        "INSERT INTO discussions (market_id, user_wallet, content) VALUES ($1, $2, 'Mine.')"
        " RETURNING id",
        MARKET,
        BOB,
    )
    assert len(own) == 1
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await as_role(
            adopted_url,
            *SIGNED_IN,
            "INSERT INTO discussions (market_id, user_wallet, content) VALUES ($1, $2, 'Not.')",
            MARKET,
            ALICE,
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await as_role(
            adopted_url,
            *ANON,
            "INSERT INTO markets (id, on_chain_address, question, category, creator_wallet,"
            " b_parameter, initial_liquidity, created_at)"
            " VALUES ('x', 'y', 'Can anon create markets?', 'other', $1, 1, 0, now())",
            ALICE,
        )


@pytest.mark.parametrize("wallet", [ALICE, "FrontEndNewWa11et1111111111111111111111111"])
async def test_the_front_end_users_upsert_still_succeeds_after_migration(adopted_url, wallet):
    """The web front end upserts `users {wallet, last_seen_at}` with the anon key."""
    rows = await as_role(
        adopted_url,
        *ANON,
        "INSERT INTO users (wallet, last_seen_at) VALUES ($1, '2026-12-01 10:00:00+00')"
        " ON CONFLICT (wallet) DO UPDATE SET last_seen_at = excluded.last_seen_at"
        " RETURNING wallet, last_seen_at, wallet_address, created_at",
        wallet,
    )
    assert len(rows) == 1 and rows[0]["wallet"] == rows[0]["wallet_address"] == wallet
    assert rows[0]["last_seen_at"].isoformat() == "2026-12-01T10:00:00+00:00"
    assert rows[0]["created_at"] is not None


def test_the_builder_knows_only_the_trigger_functions_it_has_bodies_for():
    unknown = {"functions": {"compute_leaderboard": {"language": "sql", "returns": "integer"}}}
    with pytest.raises(ValueError, match="compute_leaderboard"):
        list(original_schema_sql(unknown | {"tables": {}}))


async def test_migrate_refuses_a_database_with_only_some_of_the_platform_tables():
    async def half_built(url: str) -> None:
        for statement in ("CREATE TABLE markets (id text PRIMARY KEY)", "CREATE TABLE users ()"):
            await fetch(url, statement)

    name, url = await scratch(half_built)
    try:
        with pytest.raises(RuntimeError, match="some of the platform's tables"):
            await migrate(url)
        tables = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert sorted(row[0] for row in tables) == ["markets", "users"]  # nothing half-done
    finally:
        await drop_database(name)
