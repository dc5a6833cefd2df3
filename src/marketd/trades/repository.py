"""Queries over trades and relayed trade submissions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import Trade, TradeSubmission

_SUBMISSIONS = cast(Table, TradeSubmission.__table__)
_TRADES = cast(Table, Trade.__table__)
_COLUMNS = _TRADES.c
_OF_MARKET = select(_TRADES).where(_COLUMNS.market_id == bindparam("market_id"))
_OLDER = or_(
    _COLUMNS.block_time < bindparam("after_at"),
    and_(_COLUMNS.block_time == bindparam("after_at"), _COLUMNS.id < bindparam("after_id")),
)
_NEWEST = (_COLUMNS.block_time.desc(), _COLUMNS.id.desc())
_FIRST_PAGE = _OF_MARKET.order_by(*_NEWEST).limit(bindparam("limit"))
"""A market's newest trades, prebuilt in Core (see markets.repository): rows, not ORM objects
to track, for a read-only page."""
_NEXT_PAGE = _OF_MARKET.where(_OLDER).order_by(*_NEWEST).limit(bindparam("limit"))


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
        self, market_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[Row[Any]]:
        params: dict[str, Any] = {"market_id": market_id, "limit": limit}
        if after is None:
            return (await self.session.execute(_FIRST_PAGE, params)).all()
        params |= {"after_at": after[0], "after_id": uuid.UUID(after[1])}
        return (await self.session.execute(_NEXT_PAGE, params)).all()
