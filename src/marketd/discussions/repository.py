"""Queries over discussion posts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import RowMapping, Table, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.models import Discussion

_DISCUSSIONS = cast(Table, Discussion.__table__)


class DiscussionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self, post_id: uuid.UUID, market_id: str, wallet: str, content: str, now: datetime
    ) -> None:
        """A Core insert: posting is a hot write path and needs no ORM unit of work."""
        await self.session.execute(
            insert(_DISCUSSIONS).values(
                id=post_id, market_id=market_id, user_wallet=wallet, content=content, created_at=now
            )
        )

    async def get_live(self, post_id: uuid.UUID) -> Discussion | None:
        return await self.session.scalar(
            select(Discussion).where(Discussion.id == post_id, Discussion.deleted_at.is_(None))
        )

    async def page(
        self, market_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[RowMapping]:
        """Live posts, newest first: `id`, `market_id`, `user_wallet`, `content`, `created_at`
        (Core rows: the thread's first page is a hot read)."""
        posts = _DISCUSSIONS.c
        query = select(
            posts.id, posts.market_id, posts.user_wallet, posts.content, posts.created_at
        ).where(posts.market_id == market_id, posts.deleted_at.is_(None))
        if after is not None:
            query = query.where(
                or_(
                    posts.created_at < after[0],
                    and_(posts.created_at == after[0], posts.id < uuid.UUID(after[1])),
                )
            )
        query = query.order_by(posts.created_at.desc(), posts.id.desc()).limit(limit)
        return (await self.session.execute(query)).mappings().all()
