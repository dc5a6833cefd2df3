"""Fixtures of the scale-out and graceful-shutdown tests: a `Cluster` of real `marketd`
processes on loopback (tests/helpers/scale.py), one per module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ..helpers.scale import (
    LEADER_LOCKS,
    SCALE_SETTINGS,
    SHUTDOWN_SETTINGS,
    Cluster,
    start_cluster,
)


@pytest_asyncio.fixture(scope="module")
async def scale_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Two `serve` and two `worker` processes; every leader lock held by one of the workers."""
    cluster = await start_cluster(tmp_path_factory.mktemp("scale"), **SCALE_SETTINGS)
    try:
        async with asyncio.TaskGroup() as group:
            for name in ("serve-1", "serve-2"):
                group.create_task(cluster.start_serve(name))
            for name in ("worker-1", "worker-2"):
                group.create_task(cluster.start_worker(name))
        workers = {p.pid for p in cluster.processes if p.command == "worker"}

        async def all_led() -> bool:
            holders = await cluster.lock_holders()
            return all(holders.get(name) in workers for name in LEADER_LOCKS)

        await cluster.eventually(all_led, "every leader lock taken by a worker")
        yield cluster
    finally:
        await cluster.close()


@pytest_asyncio.fixture(scope="module")
async def shutdown_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """The shared parts, no process yet: each test starts and stops its own."""
    cluster = await start_cluster(tmp_path_factory.mktemp("shutdown"), **SHUTDOWN_SETTINGS)
    try:
        yield cluster
    finally:
        await cluster.close()
