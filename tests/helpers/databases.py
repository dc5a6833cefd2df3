"""The machine's PostgreSQL and Redis as the tests use them: each run creates its own database
(`marketd_test_<run>`) and key prefix (`marketd-test-<run>:`) and removes them at the end, so
concurrent runs never collide; the platform's Supabase database is rebuilt from its description."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg

from marketd.config import Settings
from marketd.core.database import create_engine
from marketd.core.migrate import upgrade
from marketd.migrations.supabase_schema import load_description, original_schema_sql

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
PG_ADMIN_URL = os.environ.get("MARKETD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("MARKETD_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]


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
