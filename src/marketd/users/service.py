"""User use cases: first-seen registration and profile reads."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.errors import NotFound
from marketd.core.memo import Throttle
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page
from marketd.trades.schemas import TradeOut
from marketd.trades.service import trade_cursor_key
from marketd.users.repository import UserRepository
from marketd.users.schemas import PositionOut, UserOut, UserStats, UserVoteOut


class SeenRecently(Throttle):
    """The wallets whose `last_seen_at` this process moved in the last `window` seconds
    (`due(wallet)`).

    Every vote and post would otherwise write the user row too (a statement on the hottest
    write paths) to move `last_seen_at` by a few seconds; with this memo it moves at most once
    a window per process. The row itself always exists: sign-in creates it and is not gated.
    """

    def __init__(self, window: float = 60.0, capacity: int = 100_000, jitter: float = 0.0) -> None:
        super().__init__(window, capacity, jitter)


SEEN_RECENTLY = SeenRecently(jitter=0.25)


class UserService:
    def __init__(self, session: AsyncSession, seen: SeenRecently = SEEN_RECENTLY) -> None:
        self.session = session
        self.repository = UserRepository(session)
        self.seen = seen

    async def touch(self, wallet: str, now: datetime) -> None:
        """Record activity (sign-in: creates the user); the caller commits."""
        await self.repository.upsert_seen(wallet, now)

    async def touch_active(self, wallet: str, now: datetime) -> None:
        """Record activity of a signed-in wallet, at most once a `SeenRecently` window."""
        if self.seen.due(wallet):
            await self.repository.upsert_seen(wallet, now)


class UserReadService:
    """Profile and history reads for `/api/users/{wallet}`."""

    def __init__(self, session: AsyncSession) -> None:
        self.repository = UserRepository(session)

    async def profile(self, wallet: str) -> UserOut:
        row = await self.repository.profile(wallet)
        if row is None:
            raise NotFound(f"No user with wallet {wallet}.")
        return UserOut(
            wallet=row["wallet"],
            display_name=row["display_name"],
            avatar_url=row["avatar_url"],
            bio=row["bio"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            stats=UserStats(
                trades_count=row["trades_count"],
                trade_volume=int(row["trade_volume"]),
                markets_created=row["markets_created"],
                votes_count=row["votes_count"],
            ),
        )

    async def trades(self, wallet: str, limit: int, cursor: str | None) -> Page[TradeOut]:
        after = None
        if cursor:
            moment, trade_id = decode_cursor(cursor, "user-trades", (datetime, uuid.UUID))
            after = (moment, trade_id)
        rows = await self.repository.trades(wallet, limit + 1, after)
        page, next_cursor = split_page(rows, limit, "user-trades", trade_cursor_key)
        return Page[TradeOut](items=[TradeOut.of(t) for t in page], next_cursor=next_cursor)

    async def votes(self, wallet: str, limit: int, cursor: str | None) -> Page[UserVoteOut]:
        after = None
        if cursor:
            moment, key = decode_cursor(cursor, "user-votes", (datetime, str))
            after = (moment, key)
        rows = await self.repository.votes(wallet, limit + 1, after)
        page, next_cursor = split_page(
            rows, limit, "user-votes", lambda row: [row.voted_at, row.sort_key]
        )
        items = [
            UserVoteOut(
                kind=row.kind,
                market_id=row.market_id,
                vote=row.vote,
                voted_at=row.voted_at,
                tx_signature=row.tx_signature,
            )
            for row in page
        ]
        return Page[UserVoteOut](items=items, next_cursor=next_cursor)

    async def positions(self, wallet: str, limit: int, cursor: str | None) -> Page[PositionOut]:
        after = decode_cursor(cursor, "positions", (str,))[0] if cursor else None
        rows = await self.repository.positions(wallet, limit + 1, after)
        page, next_cursor = split_page(rows, limit, "positions", lambda p: [p.market_id])
        return Page[PositionOut](
            items=[PositionOut.model_validate(p) for p in page], next_cursor=next_cursor
        )
