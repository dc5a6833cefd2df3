"""Queries over trades and relayed trade submissions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.core.keyset import NewestFirst
from marketd.models import Trade, TradeSubmission

_SUBMISSIONS = cast(Table, TradeSubmission.__table__)
_TRADES = cast(Table, Trade.__table__)
_COLUMNS = _TRADES.c
_OF_MARKET = select(_TRADES).where(_COLUMNS.market_id == bindparam("market_id"))
_PAGES = NewestFirst.of(_OF_MARKET, _COLUMNS.block_time, _COLUMNS.id)
"""A market's trades, newest first, in Core: rows, not ORM objects to track, for a read-only
page."""


class TradeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def submission(self, signature: str) -> TradeSubmission:
        """A stored submission (submissions are never deleted: a known signature has one)."""
        return await self.session.get_one(TradeSubmission, signature)

    async def add_submission(self, fields: dict[str, Any]) -> bool:
        """Insert a submission unless its signature is known; whether it was new. One Core
        statement (no ORM unit of work), and two clients sending the same bytes at once cannot
        both insert it."""
        statement = (
            upsert_insert(self.session)(_SUBMISSIONS)
            .values(fields)
            .on_conflict_do_nothing(index_elements=[_SUBMISSIONS.c.signature])
            .returning(_SUBMISSIONS.c.signature)
        )
        return (await self.session.execute(statement)).first() is not None

    async def market_page(
        self, market_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[Row[Any]]:
        query, params = _PAGES.page(limit, after, market_id=market_id)
        rows: Sequence[Row[Any]] = (await self.session.execute(query, params)).all()
        return rows

    async def wallet_page(
        self, wallet: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[Trade]:
        query = select(Trade).where(Trade.user_wallet == wallet)
        if after is not None:
            query = query.where(
                (Trade.block_time < after[0])
                | ((Trade.block_time == after[0]) & (Trade.id < after[1]))
            )
        query = query.order_by(Trade.block_time.desc(), Trade.id.desc()).limit(limit)
        return (await self.session.scalars(query)).all()
