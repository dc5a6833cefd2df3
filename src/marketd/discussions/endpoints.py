from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from marketd.auth.dependencies import CurrentWallet
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.schemas import Page
from marketd.discussions.schemas import DiscussionCreate, DiscussionOut
from marketd.discussions.service import DiscussionService

router = APIRouter(prefix="/api/discussions", tags=["discussions"])


@router.get("/{market_id}", response_model=Page[DiscussionOut])
async def market_thread(
    market_id: str,
    session: SessionDep,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[DiscussionOut]:
    """A market's posts, newest first (deleted posts are left out)."""
    return await DiscussionService(session, container.bus).thread(market_id, limit, cursor)


@router.post("", response_model=DiscussionOut, status_code=status.HTTP_201_CREATED)
async def post_discussion(
    body: DiscussionCreate, wallet: CurrentWallet, session: SessionDep, container: ContainerDep
) -> DiscussionOut:
    """Post to a market's discussion (1-5,000 characters after trimming)."""
    return await DiscussionService(session, container.bus).post(wallet, body)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_discussion(
    post_id: uuid.UUID, wallet: CurrentWallet, session: SessionDep, container: ContainerDep
) -> None:
    """Soft-delete your own post (403 for anyone else's)."""
    await DiscussionService(session, container.bus).delete(wallet, post_id)
