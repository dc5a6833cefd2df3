"""The activity feed's reads: the newest rows of each source after a cursor, merged by time.

Each kind has its own table (trades, the vote log, markets, indexed state-change events) and an
index on its time column, so a page costs one short ordered index scan per kind read (at most
`limit + 1` rows each), never a scan of a table."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.activity.rules import STATE_EVENTS, ActivityKind
from marketd.core.events import (
    DomainEvent,
    MarketCreated,
    MarketStateChanged,
    TradeIndexed,
    VoteCast,
)
from marketd.models import IndexedEventRow, Market, Trade, VoteLog
from marketd.shared.market_state import MarketState

TRADES = cast(Table, Trade.__table__)
VOTES = cast(Table, VoteLog.__table__)
MARKETS = cast(Table, Market.__table__)
EVENTS = cast(Table, IndexedEventRow.__table__)
PROPOSED = MarketState.PROPOSED.value


@dataclass(frozen=True)
class After:
    """A position in the feed: the last item's (at, kind, id, sub) (sub: a state change's
    event index, else 0). Items are ordered by these, newest first."""

    at: datetime
    kind: str
    id: str
    sub: int = 0


@dataclass(frozen=True)
class Row:
    kind: ActivityKind
    at: datetime
    id: str
    sub: int
    market_id: str
    fields: dict[str, Any]


def _after(
    kind: ActivityKind, time: Any, ids: Sequence[Any], after: After | None, id_of: Any
) -> ColumnElement[bool]:
    """Rows strictly after `after` in feed order, for a source of one `kind`."""
    if after is None:
        return true()
    if kind.value < after.kind:
        return time <= after.at  # type: ignore[no-any-return]
    if kind.value > after.kind:
        return time < after.at  # type: ignore[no-any-return]
    same = ids[0] < id_of(after.id)
    if len(ids) > 1:
        same = or_(same, and_(ids[0] == id_of(after.id), ids[1] < after.sub))
    return or_(time < after.at, and_(time == after.at, same))


def _uuid(text: str) -> Any:
    try:
        return uuid.UUID(text)
    except ValueError:
        return uuid.UUID(int=0)  # a malformed id: nothing sorts below it


class ActivityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, kinds: Collection[ActivityKind], limit: int, after: After | None
    ) -> list[Row]:
        """Up to `limit` rows of `kinds` after `after`, newest first."""
        rows: list[Row] = []
        if ActivityKind.TRADE in kinds:
            rows += await self._trades(limit, after)
        if ActivityKind.VOTE in kinds:
            rows += await self._votes(limit, after)
        if ActivityKind.MARKET_CREATED in kinds:
            rows += await self._markets(limit, after)
        if ActivityKind.STATE_CHANGE in kinds:
            rows += await self._state_changes(limit, after)
        # Stable: rows of one kind and time keep the order their query gave them.
        rows.sort(key=lambda row: (row.at, row.kind.value), reverse=True)
        return rows[:limit]

    async def live_row(self, event: DomainEvent) -> Row | None:
        """The feed's row for a market event that announces one (published after its
        commit), read with the same query as a page so both show the same item; None when the
        feed has no such row (a backend state change not indexed from the chain yet, a trade
        without shares)."""
        market_id = event.market_id
        rows: list[Row] = []
        if isinstance(event, TradeIndexed):
            t = TRADES.c
            rows = await self._trades(
                1, None, t.market_id == market_id, t.tx_signature == event.signature
            )
        elif isinstance(event, VoteCast):
            v = VOTES.c
            rows = await self._votes(
                1,
                None,
                v.market_id == market_id,
                v.user_wallet == event.wallet,
                v.kind == event.kind,
            )
        elif isinstance(event, MarketCreated):
            rows = await self._markets(1, None, MARKETS.c.id == market_id)
        elif isinstance(event, MarketStateChanged):
            names = [name for name, state in STATE_EVENTS.items() if state == event.new_state]
            e = EVENTS.c
            rows = await self._state_changes(1, None, e.market_id == market_id, e.name.in_(names))
        return rows[0] if rows else None

    async def questions(self, market_ids: Collection[str]) -> dict[str, str]:
        if not market_ids:
            return {}
        found = await self.session.execute(
            select(MARKETS.c.id, MARKETS.c.question).where(MARKETS.c.id.in_(list(market_ids)))
        )
        return {market_id: question for market_id, question in found.all()}

    async def _trades(
        self, limit: int, after: After | None, *where: ColumnElement[bool]
    ) -> list[Row]:
        t, kind = TRADES.c, ActivityKind.TRADE
        query = (
            select(TRADES)
            .where(_after(kind, t.block_time, [t.id], after, _uuid), *where)
            .order_by(t.block_time.desc(), t.id.desc())
            .limit(limit)
        )
        return [
            Row(
                kind,
                r.block_time,
                str(r.id),
                0,
                r.market_id,
                {
                    "wallet": r.user_wallet,
                    "trade_type": r.trade_type,
                    "outcome": "YES" if r.outcome else "NO",
                    "shares": r.shares,
                    "amount": r.cost,
                    "price_yes": r.price_after,
                    "tx_signature": r.tx_signature,
                },
            )
            for r in (await self.session.execute(query)).all()
        ]

    async def _votes(
        self, limit: int, after: After | None, *where: ColumnElement[bool]
    ) -> list[Row]:
        v, kind = VOTES.c, ActivityKind.VOTE
        query = (
            select(VOTES)
            .where(_after(kind, v.recorded_at, [v.id], after, _uuid), *where)
            .order_by(v.recorded_at.desc(), v.id.desc())
            .limit(limit)
        )
        return [
            Row(
                kind,
                r.recorded_at,
                str(r.id),
                0,
                r.market_id,
                {
                    "wallet": r.user_wallet,
                    "vote_kind": r.kind,
                    "vote": r.vote,
                    "tx_signature": r.tx_signature,
                },
            )
            for r in (await self.session.execute(query)).all()
        ]

    async def _markets(
        self, limit: int, after: After | None, *where: ColumnElement[bool]
    ) -> list[Row]:
        m, kind = MARKETS.c, ActivityKind.MARKET_CREATED
        query = (
            select(m.id, m.created_at, m.creator_wallet, m.question)
            .where(_after(kind, m.created_at, [m.id], after, str), *where)
            .order_by(m.created_at.desc(), m.id.desc())
            .limit(limit)
        )
        return [
            Row(
                kind, r.created_at, r.id, 0, r.id, {"wallet": r.creator_wallet, "state": "PROPOSED"}
            )
            for r in (await self.session.execute(query)).all()
        ]

    async def _state_changes(
        self, limit: int, after: After | None, *where: ColumnElement[bool]
    ) -> list[Row]:
        e, kind = EVENTS.c, ActivityKind.STATE_CHANGE
        ids = [e.signature, e.event_index]
        query = (
            select(e.signature, e.event_index, e.block_time, e.name, e.market_id)
            .where(
                e.name.in_(list(STATE_EVENTS)),
                e.block_time.is_not(None),
                e.market_id.is_not(None),
                _after(kind, e.block_time, ids, after, str),
                *where,
            )
            .order_by(e.block_time.desc(), e.signature.desc(), e.event_index.desc())
            .limit(limit)
        )
        return [
            Row(
                kind,
                r.block_time,
                r.signature,
                r.event_index,
                r.market_id,
                {"state": STATE_EVENTS[r.name].value, "tx_signature": r.signature},
            )
            for r in (await self.session.execute(query)).all()
        ]
