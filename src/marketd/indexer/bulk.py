"""Multi-row `INSERT … ON CONFLICT` for the indexer's hot path: one statement per table and batch.

PostgreSQL: ``INSERT INTO t (…) SELECT … FROM unnest(CAST(:c0 AS TEXT[]), …) ON CONFLICT …``.
One bind parameter per column whatever the row count, so every batch runs the same statement
text (prepared once per connection), the rows travel as arrays in asyncpg's binary format and
nothing is converted row by row in Python. Arrays are cast to the columns' base types (TEXT,
NUMERIC, …, never VARCHAR(n)): an explicit cast would silently truncate, whereas the
assignment into the column rejects a value that does not fit, as a plain INSERT does.

SQLite (the embedded default): the same INSERT … ON CONFLICT built by SQLAlchemy and run as an
executemany (in-process, no round trips to save).

Values must already be the Python types of the columns (str, int, bool, Decimal, aware
datetime, uuid.UUID, and a JSON-ready object for JSON columns): this module does not run the
column types' bind processors on PostgreSQL. Likewise the columns' Python-side defaults do not
apply there: name every NOT NULL column (but `fresh_id`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import JSON, ColumnElement, Table, Text, any_, bindparam, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import dialect_of

CHUNK = 5000  # rows per statement: bounds the message size, far below any parameter limit

_PG: Any = postgresql.dialect()  # type: ignore[no-untyped-call]
_LENGTH = re.compile(r"\(.*\)$")


def _array_type(column: Any) -> str:
    """The SQL element type an array of this column's values is sent as."""
    if isinstance(column.type, JSON):
        return "TEXT"  # sent as JSON text, cast to json per element in the select list
    return _LENGTH.sub("", column.type.compile(dialect=_PG))


def _picked(table: Table, name: str, i: int) -> str:
    """The select-list expression of unnested column `c<i>` (JSON text back to JSON)."""
    return f"CAST(u.c{i} AS JSON)" if isinstance(table.c[name].type, JSON) else f"u.c{i}"


@dataclass(frozen=True)
class BulkInsert:
    """`INSERT INTO table (columns) … [ON CONFLICT (conflict) DO NOTHING | DO UPDATE SET update]
    [RETURNING returning]` for many rows at once."""

    table: Table
    columns: tuple[str, ...]
    conflict: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    returning: tuple[str, ...] = ()
    fresh_id: str | None = None
    """A UUID column not among `columns` that every new row gets a random value in:
    `gen_random_uuid()` on PostgreSQL (no Python UUID per row), `uuid4()` on SQLite."""

    @cached_property
    def postgresql_sql(self) -> str:
        quote = _PG.identifier_preparer.quote
        fresh = () if self.fresh_id is None else (self.fresh_id,)
        names = ", ".join(quote(name) for name in (*fresh, *self.columns))
        arrays = ", ".join(
            f"CAST(:c{i} AS {_array_type(self.table.c[name])}[])"
            for i, name in enumerate(self.columns)
        )
        picked = ", ".join(
            ["gen_random_uuid()"] * len(fresh)
            + [_picked(self.table, name, i) for i, name in enumerate(self.columns)]
        )
        aliases = ", ".join(f"c{i}" for i in range(len(self.columns)))
        # Only quoted identifiers of the table metadata go into the text; values are parameters.
        sql = (
            f"INSERT INTO {quote(self.table.name)} ({names}) "  # noqa: S608
            f"SELECT {picked} FROM unnest({arrays}) AS u({aliases})"
        )
        if self.conflict:
            target = ", ".join(quote(name) for name in self.conflict)
            if self.update:
                sets = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in self.update)
                sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            else:
                sql += f" ON CONFLICT ({target}) DO NOTHING"
        if self.returning:
            sql += " RETURNING " + ", ".join(quote(name) for name in self.returning)
        return sql

    def sqlite_statement(self) -> Any:
        statement: Any = sqlite.insert(self.table)
        if self.conflict and self.update:
            statement = statement.on_conflict_do_update(
                index_elements=list(self.conflict),
                set_={name: statement.excluded[name] for name in self.update},
            )
        elif self.conflict:
            statement = statement.on_conflict_do_nothing(index_elements=list(self.conflict))
        if self.returning:
            statement = statement.returning(*(self.table.c[name] for name in self.returning))
        return statement

    async def execute(
        self, session: AsyncSession, rows: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, ...]]:
        """Insert `rows` (value sequences in `columns` order); the RETURNING rows, if any."""
        out: list[tuple[Any, ...]] = []
        postgres = dialect_of(session) == "postgresql"
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            if postgres:
                arrays = _arrays(self.table, self.columns, chunk)
                result = await session.execute(text(self.postgresql_sql), arrays)
            else:
                params = [dict(zip(self.columns, row, strict=True)) for row in chunk]
                if self.fresh_id is not None:
                    for values in params:
                        values[self.fresh_id] = uuid.uuid4()
                result = await session.execute(self.sqlite_statement(), params)
            if self.returning:
                out.extend(tuple(row) for row in result.all())
        return out


@dataclass(frozen=True)
class BulkUpdate:
    """`UPDATE table SET columns WHERE key = …` for many rows, each with its own values.

    PostgreSQL: one ``UPDATE … FROM unnest(…)`` (cheaper than an upsert for rows known to
    exist); SQLite: an executemany of the single-row UPDATE."""

    table: Table
    key: str
    columns: tuple[str, ...]

    @cached_property
    def postgresql_sql(self) -> str:
        quote = _PG.identifier_preparer.quote
        names = (self.key, *self.columns)
        arrays = ", ".join(
            f"CAST(:c{i} AS {_array_type(self.table.c[name])}[])" for i, name in enumerate(names)
        )
        aliases = ", ".join(f"c{i}" for i in range(len(names)))
        sets = ", ".join(
            f"{quote(name)} = {_picked(self.table, name, i)}"
            for i, name in enumerate(names)
            if i > 0
        )
        table = quote(self.table.name)
        # Only quoted identifiers of the table metadata go into the text; values are parameters.
        return (
            f"UPDATE {table} SET {sets} FROM unnest({arrays}) AS u({aliases}) "  # noqa: S608
            f"WHERE {table}.{quote(self.key)} = u.c0"
        )

    async def execute(self, session: AsyncSession, rows: Sequence[Sequence[Any]]) -> None:
        """Update with `rows`: value sequences of (key, *columns)."""
        if dialect_of(session) == "postgresql":
            names = (self.key, *self.columns)
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start : start + CHUNK]
                await session.execute(text(self.postgresql_sql), _arrays(self.table, names, chunk))
        elif rows:
            statement = (
                update(self.table)
                .where(self.table.c[self.key] == bindparam("target_key"))
                .values({name: bindparam(f"new_{name}") for name in self.columns})
            )
            params = [
                {"target_key": row[0]}
                | {f"new_{name}": value for name, value in zip(self.columns, row[1:], strict=True)}
                for row in rows
            ]
            await session.execute(statement, params)


def _arrays(
    table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> dict[str, list[Any]]:
    """The rows as one array per column (`c0`, `c1`, …); JSON values as JSON text."""
    arrays: dict[str, list[Any]] = {}
    for i, values in enumerate(zip(*rows, strict=True)):
        if isinstance(table.c[names[i]].type, JSON):
            arrays[f"c{i}"] = [None if v is None else json.dumps(v) for v in values]
        else:
            arrays[f"c{i}"] = list(values)
    return arrays


def member_of(session: AsyncSession, column: Any, values: Collection[str]) -> ColumnElement[bool]:
    """`column IN values` for a text column; on PostgreSQL `= ANY(array)`, one parameter, so
    the statement text does not change with the number of values."""
    if dialect_of(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(Text)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]
