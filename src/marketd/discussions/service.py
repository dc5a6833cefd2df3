"""Discussion use cases: read a market's thread, post, delete your own post."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from marketd.core.bus import EventBus
from marketd.core.errors import Conflict, Forbidden, NotFound
from marketd.core.events import DiscussionPosted, publish
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page
from marketd.discussions.repository import DiscussionRepository
from marketd.discussions.schemas import DiscussionCreate, DiscussionOut
from marketd.markets.cache import MarketCache
from marketd.markets.repository import MarketRepository
from marketd.users.service import UserService


class DiscussionClosed(Conflict):
    slug, title = "discussion-closed", "Discussion closed"


class DiscussionService:
    def __init__(self, session: AsyncSession, bus: EventBus, cache: MarketCache) -> None:
        self.session = session
        self.bus = bus
        self.cache = cache
        self.repository = DiscussionRepository(session)

    async def _require_market(self, market_id: str) -> None:
        if not await MarketRepository(self.session).exists(market_id):
            raise NotFound(f"No market with id {market_id}.")

    async def _refuse_post(self, market_id: str) -> NoReturn:
        """Why a post was not inserted: no such market (404), or it takes no posts (409)."""
        state = await MarketRepository(self.session).state(market_id)
        if state is None:
            raise NotFound(f"No market with id {market_id}.")
        raise DiscussionClosed(
            f"The market is {state}: its discussion takes no new posts.", state=state
        )

    async def thread(self, market_id: str, limit: int, cursor: str | None) -> Page[DiscussionOut]:
        after = None
        if cursor:
            created_at, post_id = decode_cursor(cursor, "discussions", (datetime, uuid.UUID))
            after = (created_at, post_id)
        rows = await self.repository.page(market_id, limit + 1, after)
        if not rows:  # a market with posts exists: look it up only for an empty page
            await self._require_market(market_id)
        items, next_cursor = split_page(
            rows, limit, "discussions", lambda post: [post["created_at"], str(post["id"])]
        )
        return Page[DiscussionOut](
            items=[DiscussionOut.model_validate(dict(row)) for row in items],
            next_cursor=next_cursor,
        )

    async def post(self, wallet: str, body: DiscussionCreate) -> DiscussionOut:
        out = DiscussionOut(
            id=uuid.uuid4(),
            market_id=body.market_id,
            user_wallet=wallet,
            content=body.content,
            created_at=datetime.now(UTC),
        )
        if not await self.repository.insert(
            out.id, out.market_id, wallet, out.content, out.created_at
        ):
            await self._refuse_post(body.market_id)
        await UserService(self.session).touch_active(wallet, out.created_at)
        await self.session.commit()
        await self.cache.drop_discussion(body.market_id)
        await publish(
            self.bus,
            DiscussionPosted(
                market_id=body.market_id,
                post_id=str(out.id),
                wallet=wallet,
                content=out.content,
                created_at=out.created_at,
            ),
        )
        return out

    async def delete(self, wallet: str, post_id: uuid.UUID) -> None:
        post = await self.repository.get_live(post_id)
        if post is None:
            raise NotFound("No such post, or it was already deleted.")
        if post.user_wallet != wallet:
            raise Forbidden("Only the author can delete a post.")
        post.deleted_at = datetime.now(UTC)
        await self.session.commit()
        await self.cache.drop_discussion(post.market_id)
