"""The discussions domain's parts as FastAPI dependencies, each built from the container: the
discussion use cases (in the request's session) and the cached read of a thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.core.deps import ContainerDep, SessionDep
from marketd.discussions.reads import DiscussionReads
from marketd.discussions.service import DiscussionService
from marketd.markets.dependencies import MarketCacheDep


async def discussion_service(
    session: SessionDep, container: ContainerDep, cache: MarketCacheDep
) -> DiscussionService:
    return DiscussionService(session, container.bus, cache)


DiscussionServiceDep = Annotated[DiscussionService, Depends(discussion_service)]


async def discussion_reads(container: ContainerDep, cache: MarketCacheDep) -> DiscussionReads:
    return DiscussionReads(container.database, container.bus, cache)


DiscussionReadsDep = Annotated[DiscussionReads, Depends(discussion_reads)]
