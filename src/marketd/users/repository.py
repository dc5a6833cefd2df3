"""Queries over users and their activity."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import RowMapping, String, Table, bindparam, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.database import upsert_insert
from marketd.models import DisputeVote, Market, Position, ProposalVote, Trade, User

_WALLET = bindparam("wallet", type_=String)
_POSITIONS = cast(Table, Position.__table__)


def _count(table: Any, *where: Any) -> Any:
    return select(func.count()).select_from(table).where(*where).scalar_subquery()


_PROFILE = select(
    User.wallet,
    User.display_name,
    User.avatar_url,
    User.bio,
    User.created_at,
    User.last_seen_at,
    _count(Trade, Trade.user_wallet == _WALLET).label("trades_count"),
    select(func.coalesce(func.sum(Trade.cost), 0))
    .where(Trade.user_wallet == _WALLET)
    .scalar_subquery()
    .label("trade_volume"),
    _count(Market, Market.creator_wallet == _WALLET).label("markets_created"),
    (
        _count(ProposalVote, ProposalVote.user_wallet == _WALLET)
        + _count(DisputeVote, DisputeVote.user_wallet == _WALLET)
    ).label("votes_count"),
).where(User.wallet == _WALLET)
"""A profile in one round trip (it was five: the user, then four counts), prebuilt with its
wallet as a bind parameter (see markets.repository)."""


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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

    async def ensure(self, wallet: str, now: datetime) -> None:
        """Create the user if absent, not seen yet (a market's resolver: the platform's
        `markets.resolver_wallet` references `users`)."""
        users = cast(Table, User.__table__)
        statement = upsert_insert(self.session)(users).values(wallet=wallet, created_at=now)
        await self.session.execute(statement.on_conflict_do_nothing(index_elements=["wallet"]))

    async def profile(self, wallet: str) -> RowMapping | None:
        """The user's columns and activity counts (`_PROFILE`), None for an unknown wallet."""
        return (await self.session.execute(_PROFILE, {"wallet": wallet})).mappings().first()

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

    async def positions(
        self, wallet: str, limit: int | None, after: str | None
    ) -> Sequence[RowMapping]:
        """The wallet's positions by market id, each with its market's question, state,
        prices and final outcome (None limit: all of them)."""
        query = select(
            *(column for column in _POSITIONS.c if column.name != "id"),
            Market.question,
            Market.state,
            Market.current_price_yes,
            Market.current_price_no,
            Market.final_outcome,
        ).join(Market, Market.id == _POSITIONS.c.market_id)
        query = query.where(_POSITIONS.c.user_wallet == wallet)
        if after is not None:
            query = query.where(_POSITIONS.c.market_id > after)
        query = query.order_by(_POSITIONS.c.market_id)
        if limit is not None:
            query = query.limit(limit)
        return (await self.session.execute(query)).mappings().all()

    async def fills(
        self, wallet: str, market_ids: Collection[str]
    ) -> dict[str, list[tuple[bool, bool, int, int]]]:
        """The wallet's trades in these markets, in order: (outcome, buy, shares, amount)."""
        if not market_ids:
            return {}
        rows = await self.session.execute(
            select(Trade.market_id, Trade.outcome, Trade.trade_type, Trade.shares, Trade.cost)
            .where(Trade.user_wallet == wallet, Trade.market_id.in_(list(market_ids)))
            .order_by(Trade.block_time, Trade.tx_signature)
        )
        out: dict[str, list[tuple[bool, bool, int, int]]] = {}
        for market_id, outcome, trade_type, shares, cost in rows.all():
            out.setdefault(market_id, []).append((outcome, trade_type == "buy", shares, cost))
        return out
