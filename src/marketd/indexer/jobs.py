"""The market monitor's background jobs, for the worker to host.

Each job holds a leader lock while it works (`core.jobs.leader_locked`), so with several
instances exactly one indexes, one checks finality, one reconciles and one sweeps transitions;
a standby takes over within a lock TTL when the leader dies. The event stream reads the chain
over the chain client's own RPC connection.
"""

from __future__ import annotations

import asyncio

from marketd.chain.client import ChainClient
from marketd.chain.outbox import OutboxRunner
from marketd.chain.stream import ProgramEventStream
from marketd.config import IndexerSettings
from marketd.core.container import Container
from marketd.core.jobs import BackgroundJob, Work, leader_locked
from marketd.indexer.indexer import Indexer
from marketd.indexer.reconcile import run_reconcile
from marketd.indexer.transitions import run_transitions

LOCK_TTL = 30.0


def _led(container: Container, name: str, work: Work) -> BackgroundJob:
    """`work` as a job named `name`, under the leader lock `job:<name>`."""
    return BackgroundJob(name, leader_locked(container.locks, f"job:{name}", LOCK_TTL, work))


def indexer_jobs(
    container: Container,
    client: ChainClient,
    runner: OutboxRunner | None,
    settings: IndexerSettings | None = None,
) -> list[BackgroundJob]:
    """Indexer, finality/fork check, reconcile and automatic transitions."""
    settings = settings or container.settings.indexer
    stream = ProgramEventStream.of_client(client, ws_url=container.settings.solana_ws_url)
    indexer = Indexer(
        container,
        client,
        stream,
        max_batch=settings.max_batch,
        missing_checks=settings.missing_checks,
        head_interval=settings.finality_interval_seconds,  # both poll the chain's progress
    )
    notify = runner.notify if runner is not None else None

    async def finality(stop: asyncio.Event) -> None:
        await indexer.run_finality(stop, settings.finality_interval_seconds)

    async def reconcile(stop: asyncio.Event) -> None:
        await run_reconcile(container, client, stop, settings.reconcile_interval_seconds)

    async def transitions(stop: asyncio.Event) -> None:
        await run_transitions(
            container.database,
            client,
            stop,
            auto_activate=settings.auto_activate,
            interval=settings.transitions_interval_seconds,
            on_enqueued=notify,
        )

    return [
        _led(container, "indexer", indexer.run),
        _led(container, "indexer-finality", finality),
        _led(container, "indexer-reconcile", reconcile),
        _led(container, "market-transitions", transitions),
    ]
