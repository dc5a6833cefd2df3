"""Real servers for WebSocket tests: the app under uvicorn on 127.0.0.1, one per instance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
import uvicorn

from marketd.app import create_app
from marketd.config import RealtimeSettings, Settings
from marketd.core.container import Container
from marketd.core.migrate import upgrade
from marketd.realtime.service import Realtime

from ..helpers.realtime import (
    Instance,
    InstanceFactory,
    free_socket,
)


@pytest_asyncio.fixture
async def instance_factory(
    make_settings: Callable[..., Settings], redis_prefix: str
) -> AsyncIterator[InstanceFactory]:
    """`await instance_factory(**realtime_settings)` -> a running Instance. Instances of one
    test share the database and (with the postgres backend) Redis and its key prefix."""
    started: list[tuple[Instance, asyncio.Task[None]]] = []
    prefix = redis_prefix + "realtime:" + str(id(started)) + ":"

    async def start(*, metrics: bool = False, **ws_settings: Any) -> Instance:
        settings = make_settings(
            redis_prefix=prefix,
            metrics_port=0 if metrics else None,
            realtime=RealtimeSettings(**ws_settings),
        )
        container = Container.build(settings)
        if settings.is_embedded_database:
            await upgrade(container.database.engine)
        app = create_app(container=container)
        realtime: Realtime = app.state.realtime  # started and stopped by the app's lifespan
        sock = free_socket()
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws_ping_interval=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        metrics_server = getattr(app.state, "metrics_server", None)
        instance = Instance(
            container,
            realtime,
            server,
            sock.getsockname()[1],
            metrics_server.port if metrics_server is not None else None,
        )
        started.append((instance, task))
        return instance

    yield start
    for instance, task in started:
        instance.server.should_exit = True
        await task
        await instance.container.close()
