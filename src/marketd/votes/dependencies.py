"""The votes domain's parts as FastAPI dependencies, built from the container."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.chain.client import ChainClient
from marketd.core.container import Container
from marketd.core.deps import ContainerDep
from marketd.votes.eligibility_service import EligibilityChecker


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


Eligibility = Annotated[EligibilityChecker, Depends(eligibility_checker)]
