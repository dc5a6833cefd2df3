"""Off-chain votes record why they were eligible

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-06 16:40:00.000000

`proposal_votes.eligibility` and `dispute_votes.eligibility` (JSON, nullable): the strategies an
off-chain vote met when it was cast and what the wallet had (marketd.votes.eligibility), shown
by `GET /api/markets/{id}/votes` so a recount can check every counted vote. An on-chain vote
(tx_signature set) needs none: it always counts. Rows written before this revision keep NULL:
they met no check, so they are not counted until the wallet votes again (docs/deploy.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VOTE_TABLES = ("proposal_votes", "dispute_votes")


def upgrade() -> None:
    for table in VOTE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("eligibility", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in VOTE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("eligibility")
