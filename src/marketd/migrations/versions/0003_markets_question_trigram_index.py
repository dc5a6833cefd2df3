"""markets.question trigram index (PostgreSQL)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 05:40:00.000000

The market search (`?q=`) is `question ILIKE '%text%'`, which a b-tree cannot serve: without
this index every search reads the whole table (~6 ms of PostgreSQL CPU at 10,000 markets). A
pg_trgm GIN index answers it for any text of three characters or more. SQLite (the embedded
default) keeps the scan. On Supabase pg_trgm is available to the `postgres` role.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_markets_question_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        INDEX,
        "markets",
        ["question"],
        postgresql_using="gin",
        postgresql_ops={"question": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="markets")
