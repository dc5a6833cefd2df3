"""The background side of marketd: which jobs a worker process runs, built from the settings.

`marketd worker` runs these jobs alone; `marketd run` and `marketd demo` run them inside the
API process. Jobs that must run on one instance only take their own leader lock; the outbox
runner and the trade relay are safe on every instance (row claims; Solana deduplicates a
re-sent transaction by its signature).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog

from marketd.chain.client import ChainClient
from marketd.chain.keys import BackendKey, backend_key
from marketd.chain.outbox import OutboxRunner
from marketd.core.container import Container
from marketd.core.jobs import BackgroundJob
from marketd.indexer.jobs import indexer_jobs
from marketd.markets.cache import MarketCache
from marketd.snapshots.snapshotter import build_scheduler
from marketd.trades.relay import TradeRelay
from marketd.votes.aggregator import aggregator_jobs
from marketd.votes.handlers import vote_outbox_handlers

log = structlog.get_logger("marketd.worker")


@dataclass
class ChainServices:
    """The chain client and the two chain writers of this process."""

    client: ChainClient
    backend: BackendKey
    runner: OutboxRunner
    relay: TradeRelay


@contextlib.asynccontextmanager
async def chain_services(container: Container) -> AsyncIterator[ChainServices | None]:
    """The chain side, or None (logged) when no chain is configured for this process."""
    settings = container.settings
    if settings.solana_rpc_url is None:
        log.warning("no SOLANA_RPC_URL: chain jobs (outbox, relay, indexer) are off")
        yield None
        return
    client = ChainClient.from_settings(settings)
    try:
        backend = backend_key(settings)
        runner = outbox_runner(container, client, backend)
        yield ChainServices(client, backend, runner, TradeRelay(container.database, client))
    finally:
        await client.close()


def outbox_runner(
    container: Container, client: ChainClient, backend: BackendKey, **options: Any
) -> OutboxRunner:
    """The outbox runner as a worker runs it; `options` (clock, lease, waits) are the runner's
    own, for tests that drive the same runner on their own time."""
    # What happens in the database when a backend action is confirmed (or refused).
    handlers, failure_handlers = vote_outbox_handlers(container.bus, client)
    return OutboxRunner(
        container.database,
        client,
        backend,
        handlers=handlers,
        failure_handlers=failure_handlers,
        on_change=MarketCache(container.pages).drop_votes,  # the votes page shows rows
        **options,
    )


async def run_snapshot_scheduler(container: Container, stop: asyncio.Event) -> None:
    """The daily snapshot and prune crontabs (each run takes its own leader lock)."""
    scheduler = build_scheduler(container)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)


def build_jobs(container: Container, chain: ChainServices | None) -> list[BackgroundJob]:
    jobs: list[BackgroundJob] = [
        BackgroundJob("snapshot-scheduler", functools.partial(run_snapshot_scheduler, container))
    ]
    if chain is not None:
        jobs += [
            BackgroundJob("outbox", chain.runner.run),
            BackgroundJob("trade-relay", chain.relay.run),
        ]
        jobs += aggregator_jobs(container, chain.runner)
        jobs += indexer_jobs(container, chain.client, chain.runner)
    return jobs
