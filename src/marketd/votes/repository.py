"""Queries over proposal and dispute votes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import DisputeVote, ProposalVote, VoteLog
from marketd.votes.rules import Tally, VoteKind

VoteTable = type[ProposalVote] | type[DisputeVote]
TABLES: dict[VoteKind, VoteTable] = {
    VoteKind.PROPOSAL: ProposalVote,
    VoteKind.DISPUTE: DisputeVote,
}


class VoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_off_chain(
        self, kind: VoteKind, market_id: str, wallet: str, vote: bool, now: datetime
    ) -> bool:
        """Insert or replace the wallet's off-chain vote. False when an on-chain vote of the
        wallet is already recorded (it outranks any off-chain vote)."""
        table = TABLES[kind]
        statement = upsert_insert(self.session)(table).values(
            market_id=market_id, user_wallet=wallet, vote=vote, voted_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.market_id, table.user_wallet],
            set_={"vote": vote, "voted_at": now},
            where=table.tx_signature.is_(None),
        ).returning(table.id)
        inserted = (await self.session.execute(statement)).first()
        if inserted is None:
            return False
        self.session.add(
            VoteLog(
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
        table = TABLES[kind]
        yes, total = (
            await self.session.execute(
                select(
                    func.coalesce(func.sum(case((table.vote.is_(True), 1), else_=0)), 0),
                    func.count(),
                ).where(table.market_id == market_id)
            )
        ).one()
        return Tally(yes=int(yes), no=int(total) - int(yes))

    async def page(
        self, kind: VoteKind, market_id: str, limit: int, after: str | None
    ) -> Sequence[ProposalVote | DisputeVote]:
        """Votes ordered by wallet: a stable order a recount can walk page by page."""
        table = TABLES[kind]
        query = select(table).where(table.market_id == market_id)
        if after is not None:
            query = query.where(table.user_wallet > after)
        result = await self.session.scalars(query.order_by(table.user_wallet).limit(limit))
        return [row for row in result.all() if isinstance(row, ProposalVote | DisputeVote)]
