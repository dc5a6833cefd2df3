"""marketd's additions to the platform's tables; its own tables kept from the REST API

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 16:20:00.000000

Runs the same on an adopted platform database and on one 0001 built, so both end in one
schema. Every platform column, default and constraint stays; what marketd adds
(docs/deploy.md, "Supabase", lists each):

* `markets.valid_state` also allows CANCELLED (the program's seventh state); every existing
  row satisfies the wider rule.
* `users.display_name`; `positions.id` and `positions.created_at`; `proposal_votes.id` and
  `dispute_votes.id` (unique, filled for existing rows by their defaults): marketd addresses
  these rows by id. The platform's keys (`(market_id, user_wallet)`) stay the primary keys.
* `markets (state, created_at)`: the listing's index.
* marketd's own tables (and `alembic_version`) get row-level security with no policy and
  lose the API roles' privileges (see `supabase_schema.private_table_sql`).
* the platform's rows written before marketd: NULL counters, prices, flags and tags of
  `markets` become the values marketd writes for a new market (0, 0.5, false, empty), which
  every reader of the table takes them to mean.

The embedded SQLite database got its tables in this form from 0001.
"""

from collections.abc import Sequence

from alembic import op

from marketd.migrations.supabase_schema import private_table_sql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORM_STATES = ("PROPOSED", "APPROVED", "ACTIVE", "RESOLVING", "DISPUTED", "FINALIZED")
MARKETD_STATES = (*PLATFORM_STATES, "CANCELLED")
PRIVATE_TABLES = (
    "alembic_version",
    "auth_nonces",
    "auth_sessions",
    "chain_events",
    "chain_outbox",
    "indexer_checkpoints",
    "market_schedules",
    "snapshot_pins",
    "trade_submissions",
    "vote_log",
)
VOTE_TABLES = ("proposal_votes", "dispute_votes")
MARKET_NULLS = {
    "current_liquidity": "initial_liquidity",
    "shares_yes": "0",
    "shares_no": "0",
    "current_price_yes": "0.5",
    "current_price_no": "0.5",
    "total_volume": "0",
    "proposal_likes": "0",
    "proposal_dislikes": "0",
    "dispute_agree": "0",
    "dispute_disagree": "0",
    "is_cancelled": "false",
    "tags": "'{}'",
    "updated_at": "created_at",
}


def _states(states: Sequence[str]) -> str:
    return "CHECK (state IN (" + ", ".join(f"'{state}'" for state in states) + "))"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE markets DROP CONSTRAINT valid_state")
    op.execute(f"ALTER TABLE markets ADD CONSTRAINT valid_state {_states(MARKETD_STATES)}")
    op.execute("CREATE INDEX ix_markets_state_created ON markets (state, created_at)")
    assignments = ", ".join(f"{c} = coalesce({c}, {v})" for c, v in MARKET_NULLS.items())
    nulls = " OR ".join(f"{c} IS NULL" for c in MARKET_NULLS)
    op.execute(f"UPDATE markets SET {assignments} WHERE {nulls}")  # noqa: S608
    op.execute("ALTER TABLE users ADD COLUMN display_name varchar(64)")
    op.execute("ALTER TABLE positions ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid()")
    op.execute("ALTER TABLE positions ADD CONSTRAINT positions_id_key UNIQUE (id)")
    op.execute("ALTER TABLE positions ADD COLUMN created_at timestamptz DEFAULT now()")
    for table in VOTE_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN id uuid NOT NULL DEFAULT gen_random_uuid()")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_id_key UNIQUE (id)")
    # 0002 sized these for UUIDs; the platform's market ids are 64 hex characters.
    for table in ("chain_events", "chain_outbox", "snapshot_pins"):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN market_id TYPE text")
    for table in PRIVATE_TABLES:
        for statement in private_table_sql(bind, table):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in PRIVATE_TABLES:
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in VOTE_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN id")
    op.execute("ALTER TABLE positions DROP COLUMN created_at")
    op.execute("ALTER TABLE positions DROP COLUMN id")
    op.execute("ALTER TABLE users DROP COLUMN display_name")
    op.execute("DROP INDEX ix_markets_state_created")
    op.execute("ALTER TABLE markets DROP CONSTRAINT valid_state")
    op.execute(f"ALTER TABLE markets ADD CONSTRAINT valid_state {_states(PLATFORM_STATES)}")
