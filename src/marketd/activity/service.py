"""The activity feed: the newest trades, votes, new markets and state changes of all markets."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.activity.repository import ActivityRepository, After, Row
from marketd.activity.rules import ActivityKind
from marketd.activity.schemas import ActivityOut
from marketd.core.events import DomainEvent
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page

_CURSOR_TYPES = (datetime, str, str, int)


def listing_name(kinds: Collection[ActivityKind]) -> str:
    """The cursor's listing: a cursor is valid only for the kinds it was made for."""
    return "activity:" + ",".join(sorted(kind.value for kind in kinds))


def _key(row: Row) -> list[object]:
    return [row.at, row.kind.value, row.id, row.sub]


def item(row: Row, question: str) -> ActivityOut:
    """One feed item: the one builder of both the REST feed and the WebSocket channel."""
    return ActivityOut(
        kind=row.kind,
        id=f"{row.id}:{row.sub}" if row.kind is ActivityKind.STATE_CHANGE else row.id,
        at=row.at,
        market_id=row.market_id,
        question=question,
        **row.fields,
    )


class ActivityService:
    def __init__(self, session: AsyncSession) -> None:
        self.repository = ActivityRepository(session)

    async def feed(
        self, kinds: Collection[ActivityKind], limit: int, cursor: str | None
    ) -> Page[ActivityOut]:
        listing = listing_name(kinds)
        after = After(*decode_cursor(cursor, listing, _CURSOR_TYPES)) if cursor else None
        rows = await self.repository.page(kinds, limit + 1, after)
        page, next_cursor = split_page(rows, limit, listing, _key)
        questions = await self.repository.questions({row.market_id for row in page})
        items = [item(row, questions.get(row.market_id, "")) for row in page]
        return Page[ActivityOut](items=items, next_cursor=next_cursor)

    async def live_item(self, event: DomainEvent) -> ActivityOut | None:
        """The item the feed lists for a market event just published (the WebSocket's
        `activity` channel), or None when the feed does not list it."""
        row = await self.repository.live_row(event)
        if row is None:
            return None
        questions = await self.repository.questions({row.market_id})
        return item(row, questions.get(row.market_id, ""))
