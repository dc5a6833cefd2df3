"""Async engine and session factory for PostgreSQL (asyncpg) or the embedded SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from marketd.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    dsn = settings.database_dsn
    # No pre-ping (a round trip per checkout); recycle connections instead, and let a request
    # that meets a dead connection fail once rather than pay for every healthy one.
    kwargs: dict[str, Any] = {"pool_recycle": 1800}
    if dsn.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(dsn, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if not settings.database_statement_cache:
        # Supabase's transaction pooler (PgBouncer) cannot keep prepared statements.
        kwargs["connect_args"] = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    # Exactly DATABASE_POOL_SIZE connections, kept open: overflow connections are closed as
    # soon as they are returned, so under bursts they were opened (connect, authenticate,
    # prepare every statement again) and closed over and over, and the process held up to
    # twice the connections its budget allowed.
    return create_async_engine(dsn, pool_size=settings.database_pool_size, max_overflow=0, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine; hands out sessions. Services own the transaction boundaries.

    Read-only sessions run in autocommit: each statement is its own snapshot, and the
    BEGIN/ROLLBACK pair a transaction costs (two round trips for a one-query read) is saved.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self.read_sessionmaker = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        maker = self.read_sessionmaker if read_only else self.sessionmaker
        async with maker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def upsert_insert(session: AsyncSession) -> Any:
    """`INSERT … ON CONFLICT` constructor for the session's dialect (PostgreSQL or SQLite)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
