"""The cached read of the activity feed (`GET /api/activity`): its first pages are kept in the
markets listing group of the page cache (dropped whenever a market changes)."""

from __future__ import annotations

from collections.abc import Collection

from starlette.responses import Response

from marketd.activity.rules import ActivityKind
from marketd.activity.schemas import ActivityOut
from marketd.activity.service import ActivityService, listing_name
from marketd.core.schemas import Page
from marketd.markets.reads import CachedReads


class ActivityReads(CachedReads):
    async def feed(
        self, kinds: Collection[ActivityKind], limit: int, cursor: str | None
    ) -> Response:
        async def render() -> Page[ActivityOut]:
            return await self.read(
                lambda session: ActivityService(session).feed(kinds, limit, cursor)
            )

        hot_page = None if cursor else f"{listing_name(kinds)}|{limit}"
        return await self.cache.listing(hot_page, render)
