"""The snapshot routes' parts as FastAPI dependencies: their settings, their stores (built
once per process and held by the container) and the snapshot use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.config import SnapshotSettings
from marketd.core.container import Container
from marketd.core.deps import ContainerDep
from marketd.snapshots.service import SnapshotService
from marketd.snapshots.stores import SnapshotStores, build_stores


async def get_snapshot_config(container: ContainerDep) -> SnapshotSettings:
    """The process's snapshot settings (``settings.snapshots``, parsed once with the rest);
    tests override it (``app.dependency_overrides``)."""
    return container.settings.snapshots


class RouteStores:
    """The stores the snapshot routes read, held by the container (`Container.shared`): built
    on first use for the snapshot settings in force (again only if those change, as a test's
    override does), on the process's shared HTTP client, and closed with the container.
    Building them per request cost a new client and TLS context (~0.8 MB) per call."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._built: tuple[SnapshotSettings, SnapshotStores] | None = None

    def stores(self, config: SnapshotSettings) -> SnapshotStores:
        if self._built is None or self._built[0] != config:
            stores = build_stores(self.container.settings, config, client=self.container.http)
            self.container.on_close(stores.aclose)
            self._built = (config, stores)
        return self._built[1]


async def snapshot_service(
    container: ContainerDep,
    config: Annotated[SnapshotSettings, Depends(get_snapshot_config)],
) -> SnapshotService:
    """Async so that it runs on the event loop, never twice at once in the thread pool."""
    stores = container.shared(RouteStores).stores(config)
    return SnapshotService(container.database, container.bus, stores, config)


SnapshotServiceDep = Annotated[SnapshotService, Depends(snapshot_service)]
