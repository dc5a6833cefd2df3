"""Queries over trades and relayed trade submissions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.models import Trade, TradeSubmission


class TradeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def submission(self, signature: str) -> TradeSubmission | None:
        return await self.session.get(TradeSubmission, signature)

    def add_submission(self, submission: TradeSubmission) -> None:
        self.session.add(submission)

    async def market_page(
        self, market_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[Trade]:
        query = select(Trade).where(Trade.market_id == market_id)
        if after is not None:
            query = query.where(
                or_(
                    Trade.block_time < after[0],
                    and_(Trade.block_time == after[0], Trade.id < uuid.UUID(after[1])),
                )
            )
        query = query.order_by(Trade.block_time.desc(), Trade.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()
