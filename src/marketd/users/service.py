"""User use cases: first-seen registration and profile reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.errors import NotFound
from marketd.core.memo import Throttle
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page
from marketd.users import portfolio
from marketd.users.repository import UserRepository
from marketd.users.schemas import PortfolioOut, PositionOut, UserOut, UserStats, UserVoteOut


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
        page, next_cursor = split_page(rows, limit, "positions", lambda p: [p["market_id"]])
        return Page[PositionOut](items=await self._valued(wallet, page), next_cursor=next_cursor)

    async def portfolio(self, wallet: str) -> PortfolioOut:
        """Totals over every position of the wallet."""
        items = await self._valued(wallet, await self.repository.positions(wallet, None, None))
        invested = sum(item.total_invested for item in items)
        realized = sum(item.realized_profit for item in items)
        unrealized = sum(item.unrealized_profit for item in items)
        spent = sum(item.cost_basis for item in items)
        claimable = [item for item in items if item.claimable]
        return PortfolioOut(
            wallet=wallet,
            positions=len(items),
            open_positions=sum(1 for item in items if item.current_value > 0),
            current_value=sum(item.current_value for item in items),
            total_invested=invested,
            cost_basis=spent,
            unrealized_profit=unrealized,
            realized_profit=realized,
            roi=_ratio(realized + unrealized, invested),
            claimable=len(claimable),
            claimable_value=sum(item.current_value for item in claimable),
        )

    async def _valued(self, wallet: str, rows: Sequence[RowMapping]) -> list[PositionOut]:
        ids = [row["market_id"] for row in rows]
        fills = await self.repository.fills(wallet, ids)
        items = []
        for row in rows:
            market_id, claimed = row["market_id"], bool(row["has_claimed"])
            value = portfolio.current_value(
                row["state"],
                row["final_outcome"],
                row["shares_yes"],
                row["shares_no"],
                Decimal(row["current_price_yes"]),
                Decimal(row["current_price_no"]),
                claimed,
            )
            winning = (
                0
                if row["final_outcome"] is None
                else row["shares_yes"]
                if row["final_outcome"]
                else row["shares_no"]
            )
            valuation = portfolio.evaluate(
                (portfolio.Fill(*fill) for fill in fills.get(market_id, [])),
                value,
                (row["claimed_amount"] or 0) if claimed else None,
                row["state"],
                row["final_outcome"],
                winning,
            )
            items.append(
                PositionOut.model_validate(
                    dict(row)
                    | {
                        "current_value": valuation.current_value,
                        "cost_basis": valuation.cost_basis,
                        "unrealized_profit": valuation.unrealized_pnl,
                        "realized_profit": valuation.realized_pnl,
                        "roi": valuation.roi,
                        "claimable": valuation.claimable,
                        "claimed": valuation.claimed,
                    }
                )
            )
        return items


def _ratio(numerator: int, denominator: int) -> Decimal:
    if not denominator:
        return Decimal(0)
    return (Decimal(numerator) / denominator).quantize(Decimal("0.0001"))
