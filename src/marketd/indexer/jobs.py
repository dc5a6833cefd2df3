"""The market monitor's background jobs, for the worker to host.

Each job holds a leader lock while it works, so with several instances exactly one indexes,
one checks finality, one reconciles and one sweeps transitions; a standby takes over within a
lock TTL when the leader dies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from marketd.chain.client import ChainClient
from marketd.chain.outbox import OutboxRunner
from marketd.chain.stream import ProgramEventStream
from marketd.config import IndexerSettings
from marketd.core.container import Container
from marketd.core.jobs import Job
from marketd.indexer.indexer import Indexer
from marketd.indexer.reconcile import run_reconcile
from marketd.indexer.transitions import run_transitions

LOCK_TTL = 30.0


def _led(container: Container, name: str, work: Callable[[asyncio.Event], Awaitable[None]]) -> Job:
    async def run(stop: asyncio.Event) -> None:
        async with container.locks.leadership(f"job:{name}", LOCK_TTL, stop) as lease:
            if lease is None:
                return
            lost = asyncio.Event()
            # Stop working when shutting down or when the lock was lost to another instance.
            watcher = asyncio.create_task(_either(stop, lease.lost, lost))
            try:
                await work(lost)
            finally:
                watcher.cancel()

    return Job(name, run)


async def _either(first: asyncio.Event, second: asyncio.Event, out: asyncio.Event) -> None:
    waits = [asyncio.create_task(first.wait()), asyncio.create_task(second.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        out.set()
    finally:
        for task in waits:
            task.cancel()


def rpc_url_of(container: Container, client: ChainClient) -> str:
    configured = container.settings.solana_rpc_url
    return configured or str(client.rpc._provider.endpoint_uri)


def indexer_jobs(
    container: Container,
    client: ChainClient,
    runner: OutboxRunner | None,
    settings: IndexerSettings | None = None,
) -> list[Job]:
    """Indexer, finality/fork check, reconcile and automatic transitions."""
    settings = settings or container.settings.indexer
    stream = ProgramEventStream(
        http_url=rpc_url_of(container, client),
        ws_url=container.settings.solana_ws_url,
        program_id=client.program_id,
        coder=client.coder,
    )
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
