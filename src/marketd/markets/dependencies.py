"""The markets domain's parts as FastAPI dependencies, each built from the container: the
market cache (one per process, held by the container), the market use cases (in the request's
session) and the market routes' cached reads (a session only on a miss)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.core.container import Container
from marketd.core.deps import ContainerDep, SessionDep
from marketd.markets.cache import MarketCache
from marketd.markets.reads import MarketReads
from marketd.markets.service import MarketService


def market_cache_of(container: Container) -> MarketCache:
    """What the page cache holds about markets (`Container.shared(market_cache_of)`)."""
    return MarketCache(container.pages)


async def market_cache(container: ContainerDep) -> MarketCache:
    return container.shared(market_cache_of)


MarketCacheDep = Annotated[MarketCache, Depends(market_cache)]


async def market_service(
    session: SessionDep, container: ContainerDep, cache: MarketCacheDep
) -> MarketService:
    return MarketService(session, container.settings, container.bus, cache)


MarketServiceDep = Annotated[MarketService, Depends(market_service)]


async def market_reads(container: ContainerDep, cache: MarketCacheDep) -> MarketReads:
    return MarketReads(container.database, container.settings, container.bus, cache)


MarketReadsDep = Annotated[MarketReads, Depends(market_reads)]
