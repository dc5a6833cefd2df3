"""The votes domain's parts as FastAPI dependencies, each built from the container: the vote
use cases (in the request's session), the cached read of a market's votes, and the
eligibility checker with the process's chain reader."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.chain.client import ChainClient
from marketd.core.container import Container
from marketd.core.deps import ContainerDep, SessionDep
from marketd.markets.dependencies import MarketCacheDep
from marketd.votes.eligibility_service import EligibilityChecker
from marketd.votes.reads import VoteReads
from marketd.votes.service import VoteService


def chain_reader(container: Container) -> ChainClient | None:
    """The process's chain client for the reads a vote needs (eligibility), held by the
    container (`Container.shared`) and closed with it; None without SOLANA_RPC_URL."""
    if container.settings.solana_rpc_url is None:
        return None
    client = ChainClient.from_settings(container.settings)
    container.on_close(client.close)
    return client


async def eligibility_checker(container: ContainerDep) -> EligibilityChecker:
    return EligibilityChecker(
        container.settings, container.cache, container.database, container.shared(chain_reader)
    )


EligibilityDep = Annotated[EligibilityChecker, Depends(eligibility_checker)]


async def vote_service(
    session: SessionDep, container: ContainerDep, cache: MarketCacheDep
) -> VoteService:
    return VoteService(session, container.bus, cache)


VoteServiceDep = Annotated[VoteService, Depends(vote_service)]


async def vote_reads(container: ContainerDep, cache: MarketCacheDep) -> VoteReads:
    return VoteReads(container.database, container.bus, cache)


VoteReadsDep = Annotated[VoteReads, Depends(vote_reads)]
