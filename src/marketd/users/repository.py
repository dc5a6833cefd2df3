"""Queries over users and their activity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import DisputeVote, Market, Position, ProposalVote, Trade, User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, wallet: str) -> User | None:
        return await self.session.get(User, wallet)

    async def upsert_seen(self, wallet: str, now: datetime) -> None:
        """Create the user on first sight; otherwise move last_seen_at forward."""
        users = cast(Table, User.__table__)  # Core: runs on every write; no ORM planning
        statement = upsert_insert(self.session)(users).values(
            wallet=wallet, created_at=now, last_seen_at=now
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[users.c.wallet], set_={"last_seen_at": now}
            )
        )

    async def stats(self, wallet: str) -> dict[str, int]:
        trades = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Trade.cost), 0)).where(
                    Trade.user_wallet == wallet
                )
            )
        ).one()
        markets_created = await self.session.scalar(
            select(func.count()).where(Market.creator_wallet == wallet)
        )
        votes = 0
        for table in (ProposalVote, DisputeVote):
            votes += (
                await self.session.scalar(
                    select(func.count()).select_from(table).where(table.user_wallet == wallet)
                )
                or 0
            )
        return {
            "trades_count": int(trades[0]),
            "trade_volume": int(trades[1]),
            "markets_created": int(markets_created or 0),
            "votes_count": votes,
        }

    async def trades(
        self, wallet: str, limit: int, after: tuple[datetime, Any] | None
    ) -> Sequence[Trade]:
        query = select(Trade).where(Trade.user_wallet == wallet)
        if after is not None:
            query = query.where(
                (Trade.block_time < after[0])
                | ((Trade.block_time == after[0]) & (Trade.id < after[1]))
            )
        query = query.order_by(Trade.block_time.desc(), Trade.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()

    async def votes(
        self, wallet: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[Any]:
        def branch(table: type[ProposalVote] | type[DisputeVote], kind: str) -> Any:
            return select(
                literal(kind).label("kind"),
                table.market_id,
                table.vote,
                table.voted_at,
                table.tx_signature,
                (literal(kind + ":") + table.market_id).label("sort_key"),
            ).where(table.user_wallet == wallet)

        combined = union_all(
            branch(ProposalVote, "proposal"), branch(DisputeVote, "dispute")
        ).subquery()
        query = select(combined)
        if after is not None:
            query = query.where(
                (combined.c.voted_at < after[0])
                | ((combined.c.voted_at == after[0]) & (combined.c.sort_key < after[1]))
            )
        query = query.order_by(combined.c.voted_at.desc(), combined.c.sort_key.desc()).limit(limit)
        return (await self.session.execute(query)).all()

    async def positions(self, wallet: str, limit: int, after: str | None) -> Sequence[Position]:
        query = select(Position).where(Position.user_wallet == wallet)
        if after is not None:
            query = query.where(Position.market_id > after)
        return (await self.session.scalars(query.order_by(Position.market_id).limit(limit))).all()
