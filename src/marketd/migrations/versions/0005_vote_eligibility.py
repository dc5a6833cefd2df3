"""Off-chain votes record why they were eligible

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 16:40:00.000000

`proposal_votes.eligibility` and `dispute_votes.eligibility` (JSON, nullable): the strategies an
off-chain vote met when it was cast and what the wallet had (marketd.votes.eligibility), shown
by `GET /api/markets/{id}/votes` so a recount can check every counted vote. An on-chain vote
(tx_signature set) needs none: it always counts. Off-chain rows already there when this
revision runs (the platform's own votes, on an adopted Supabase database) are marked
`cast_before_eligibility` and keep counting: a migration must not drop users' votes. A row
without a record written later (marketd never writes one) does not count (docs/deploy.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VOTE_TABLES = ("proposal_votes", "dispute_votes")


GRANDFATHERED: dict[str, object] = {
    "strategy": "cast_before_eligibility",
    "checks": [],
    "checked_at": None,
}


def upgrade() -> None:
    for table in VOTE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("eligibility", sa.JSON(), nullable=True))
        votes = sa.table(
            table,
            sa.column("eligibility", sa.JSON()),
            sa.column("tx_signature", sa.Text()),
        )
        op.execute(
            votes.update().where(votes.c.tx_signature.is_(None)).values(eligibility=GRANDFATHERED)
        )


def downgrade() -> None:
    for table in VOTE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("eligibility")
