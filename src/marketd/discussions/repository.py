"""Queries over discussion posts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, RowMapping, Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.keyset import NewestFirst
from marketd.discussions.rules import CLOSED_STATES
from marketd.models import Discussion, Market

_DISCUSSIONS = cast(Table, Discussion.__table__)
_MARKETS = cast(Table, Market.__table__)
_POSTS = _DISCUSSIONS.c
_INSERT_IF_OPEN = insert(_DISCUSSIONS).from_select(
    ["id", "market_id", "user_wallet", "content", "created_at"],
    select(
        bindparam("id", type_=_POSTS.id.type),
        _MARKETS.c.id,
        bindparam("user_wallet", type_=_POSTS.user_wallet.type),
        bindparam("content", type_=_POSTS.content.type),
        bindparam("created_at", type_=_POSTS.created_at.type),
    ).where(
        _MARKETS.c.id == bindparam("market_id"),
        _MARKETS.c.state.not_in(sorted(state.value for state in CLOSED_STATES)),
    ),
)
"""The post, inserted only when its market exists and takes posts: one statement, no look-up
first (posting is a hot write path)."""
_LIVE = select(
    _POSTS.id, _POSTS.market_id, _POSTS.user_wallet, _POSTS.content, _POSTS.created_at
).where(_POSTS.market_id == bindparam("market_id"), _POSTS.deleted_at.is_(None))
_PAGES = NewestFirst.of(_LIVE, _POSTS.created_at, _POSTS.id)
"""The thread's pages (the first one is the hot read)."""


class DiscussionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(
        self, post_id: uuid.UUID, market_id: str, wallet: str, content: str, now: datetime
    ) -> bool:
        """Whether the post was inserted (False: no such market, or it takes no posts). A Core
        statement: posting is a hot write path and needs no ORM unit of work."""
        result = await self.session.execute(
            _INSERT_IF_OPEN,
            {
                "id": post_id,
                "market_id": market_id,
                "user_wallet": wallet,
                "content": content,
                "created_at": now,
            },
        )
        return bool(cast(CursorResult[Any], result).rowcount)

    async def get_live(self, post_id: uuid.UUID) -> Discussion | None:
        return await self.session.scalar(
            select(Discussion).where(Discussion.id == post_id, Discussion.deleted_at.is_(None))
        )

    async def page(
        self, market_id: str, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[RowMapping]:
        """Live posts, newest first: `id`, `market_id`, `user_wallet`, `content`, `created_at`
        (Core rows: the thread's first page is a hot read)."""
        query, params = _PAGES.page(limit, after, market_id=market_id)
        rows: Sequence[RowMapping] = (await self.session.execute(query, params)).mappings().all()
        return rows
