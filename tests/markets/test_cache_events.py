"""Which pages an event published by the API makes stale."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketd.core.events import (
    DiscussionPosted,
    DomainEvent,
    MarketCreated,
    MarketStateChanged,
    VoteCast,
)
from marketd.markets.cache import (
    LISTING_GROUP,
    MarketCache,
    discussion_group,
    market_group,
    votes_group,
)

NOW = datetime(2026, 3, 14, tzinfo=UTC)


class Pages:
    """Records what is dropped (MarketCache only drops here)."""

    def __init__(self) -> None:
        self.dropped: list[str] = []

    async def drop(self, *groups: str) -> list[str]:
        self.dropped += groups
        return ["v"] * len(groups)


@pytest.mark.parametrize(
    ("event", "dropped"),
    [
        (
            VoteCast(market_id="m", kind="proposal", vote=True, wallet="w", likes=1, dislikes=0),
            [votes_group("m"), market_group("m")],
        ),
        (
            DiscussionPosted(market_id="m", post_id="p", wallet="w", content="c", created_at=NOW),
            [discussion_group("m")],
        ),
        (MarketCreated(market_id="m", state="PROPOSED"), [LISTING_GROUP]),
        # The indexer refreshes what its batches touch: nothing to drop here.
        (MarketStateChanged(market_id="m", old_state="A", new_state="B", at=NOW), []),
    ],
    ids=lambda value: getattr(value, "type", ""),
)
async def test_drop_for_drops_what_the_event_makes_stale(
    event: DomainEvent, dropped: list[str]
) -> None:
    pages = Pages()
    await MarketCache(pages).drop_for(event)  # type: ignore[arg-type]
    assert pages.dropped == dropped
