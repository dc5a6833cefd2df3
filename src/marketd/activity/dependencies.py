"""The activity feed's cached read as a FastAPI dependency, built from the container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.activity.reads import ActivityReads
from marketd.core.deps import ContainerDep
from marketd.markets.dependencies import MarketCacheDep


async def activity_reads(container: ContainerDep, cache: MarketCacheDep) -> ActivityReads:
    return ActivityReads(container.database, cache)


ActivityReadsDep = Annotated[ActivityReads, Depends(activity_reads)]
