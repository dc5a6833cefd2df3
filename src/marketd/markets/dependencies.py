"""The market cache as a FastAPI dependency (reads and the writes that drop its pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.core.deps import ContainerDep
from marketd.markets.cache import MarketCache


async def market_cache(container: ContainerDep) -> MarketCache:
    return MarketCache(container.pages)


MarketCacheDep = Annotated[MarketCache, Depends(market_cache)]
