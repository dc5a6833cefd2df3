"""Alembic environment. marketd runs migrations itself (`marketd migrate`, the demo, tests)
and hands Alembic an open connection of its async engine; see `marketd.core.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from marketd.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `marketd migrate`; it provides the connection")
_run(connection)
