"""Queries over proposal and dispute votes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import DisputeVote, ProposalVote, VoteLog
from marketd.votes.rules import Tally, VoteKind

VoteTable = type[ProposalVote] | type[DisputeVote]
TABLES: dict[VoteKind, VoteTable] = {
    VoteKind.PROPOSAL: ProposalVote,
    VoteKind.DISPUTE: DisputeVote,
}


VoteRow = Row[Any, Any, Any, Any]
"""`user_wallet`, `vote`, `voted_at`, `tx_signature` of one vote."""
_VOTE_LOG = cast(Table, VoteLog.__table__)


def _table(kind: VoteKind) -> Table:
    return cast(Table, TABLES[kind].__table__)


class VoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_off_chain(
        self, kind: VoteKind, market_id: str, wallet: str, vote: bool, now: datetime
    ) -> bool:
        """Insert or replace the wallet's off-chain vote, and log it. False when an on-chain
        vote of the wallet is already recorded (it outranks any off-chain vote).

        Core statements on the tables: this is the hottest write path, and the ORM's
        per-statement work (bulk-insert planning, a flush for the log row) costs more than
        the statements themselves."""
        table = _table(kind)
        statement = upsert_insert(self.session)(table).values(
            market_id=market_id, user_wallet=wallet, vote=vote, voted_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.market_id, table.c.user_wallet],
            set_={"vote": vote, "voted_at": now},
            where=table.c.tx_signature.is_(None),
        ).returning(table.c.id)
        inserted = (await self.session.execute(statement)).first()
        if inserted is None:
            return False
        await self.session.execute(
            insert(_VOTE_LOG).values(
                kind=kind.value,
                market_id=market_id,
                user_wallet=wallet,
                vote=vote,
                source="api",
                recorded_at=now,
            )
        )
        return True

    async def tally(self, kind: VoteKind, market_id: str) -> Tally:
        table = _table(kind)
        yes, total = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(case((table.c.vote.is_(True), 1), else_=0)), 0),
                    func.count(),
                ).where(table.c.market_id == market_id)
            )
        ).one()
        return Tally(yes=int(yes), no=int(total) - int(yes))

    async def page(
        self, kind: VoteKind, market_id: str, limit: int, after: str | None
    ) -> Sequence[VoteRow]:
        """Votes ordered by wallet: a stable order a recount can walk page by page. Rows with
        `user_wallet`, `vote`, `voted_at` and `tx_signature`."""
        table = _table(kind)
        query = select(
            table.c.user_wallet, table.c.vote, table.c.voted_at, table.c.tx_signature
        ).where(table.c.market_id == market_id)
        if after is not None:
            query = query.where(table.c.user_wallet > after)
        return (await self.session.execute(query.order_by(table.c.user_wallet).limit(limit))).all()
