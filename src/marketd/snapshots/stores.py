"""The blockstores and gateway list of snapshots, built from the settings.

- Nothing remote configured: the local store in ``data_dir/ipfs`` (the embedded default).
- ``IPFS_API_URL`` (Kubo RPC; ``IPFS_API_AUTHORIZATION`` as its Authorization header) and/or
  ``PINNING_SERVICE_URL`` + ``PINNING_SERVICE_TOKEN``: those stores, all *required*: an upload
  succeeds only when one of them confirms. The local store may be kept beside them as a copy
  (``IPFS_LOCAL_COPY``), never as a fallback: a remote that fails fails the upload.
- ``IPFS_GATEWAYS``: the ordered gateway list for verified reads of content not held locally.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from marketd.config import Settings, SnapshotSettings
from marketd.ipfs.blockstore import Blockstore
from marketd.ipfs.cid import Cid, cid_to_str
from marketd.ipfs.errors import ContentNotFoundError, ContentUnavailableError
from marketd.ipfs.gateway import GatewayReader
from marketd.ipfs.kubo import KuboBlockstore
from marketd.ipfs.local import LocalBlockstore
from marketd.ipfs.multi import MultiBlockstore, StoreEntry
from marketd.ipfs.pinning_service import PinningServiceStore


@dataclass
class SnapshotStores:
    """Where snapshots are written (``store``) and read from (``local``, then ``reader``)."""

    store: Blockstore
    names: list[str]
    local: LocalBlockstore | None = None
    reader: GatewayReader | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def fetch(self, cid: Cid | str) -> bytes:
        """Verified bytes of ``cid``: the local copy when there is one, else the gateways."""
        tried: list[str] = []
        if self.local is not None:
            try:
                return await self.local.get(cid)
            except ContentNotFoundError:
                tried.append("local store: not held")
        if self.reader is None:
            tried.append("no gateway configured (IPFS_GATEWAYS is empty)")
            raise ContentUnavailableError(f"no source for {cid_to_str(cid)}: {'; '.join(tried)}")
        return await self.reader.fetch(cid)

    async def aclose(self) -> None:
        """Wait for background copies to land, then close the HTTP clients."""
        if isinstance(self.store, MultiBlockstore):
            await self.store.drain()
        for close in self._closers:
            await close()


def build_stores(
    settings: Settings, config: SnapshotSettings, *, client: httpx.AsyncClient | None = None
) -> SnapshotStores:
    """Stores as configured. ``client`` (shared, owned by the caller) is for tests and for
    processes that keep one connection pool."""
    closers: list[Callable[[], Awaitable[None]]] = []
    reader: GatewayReader | None = None
    if config.ipfs_gateways:
        reader = GatewayReader(
            config.ipfs_gateways, client=client, timeout=config.ipfs_gateway_timeout_seconds
        )
        closers.append(reader.aclose)
    local = LocalBlockstore(settings.data_dir / "ipfs")
    if not config.has_remote_store:
        return SnapshotStores(local, [local.name], local, reader, closers)

    entries: list[StoreEntry] = []
    if config.ipfs_api_url:
        headers = {}
        if config.ipfs_api_authorization is not None:
            headers["Authorization"] = config.ipfs_api_authorization.get_secret_value()
        kubo = KuboBlockstore(
            config.ipfs_api_url,
            client=client,
            headers=headers,
            upload=config.ipfs_api_upload,
            timeout=config.ipfs_timeout_seconds,
        )
        closers.append(kubo.aclose)
        entries.append(StoreEntry(kubo, required=True))
    if config.pinning_service_url:
        assert config.pinning_service_token is not None  # checked by SnapshotSettings
        pinning = PinningServiceStore(
            config.pinning_service_url,
            config.pinning_service_token.get_secret_value(),
            client=client,
            reader=reader,
            origins=config.pinning_service_origins,
            timeout=config.ipfs_timeout_seconds,
        )
        closers.append(pinning.aclose)
        entries.append(StoreEntry(pinning, required=True))
    kept_local: LocalBlockstore | None = None
    if config.ipfs_local_copy:
        kept_local = local
        entries.append(StoreEntry(local, required=False))
    multi = MultiBlockstore(
        entries,
        attempts=config.ipfs_upload_attempts,
        backoff_initial=config.ipfs_upload_backoff_seconds,
    )
    names = [entry.store.name for entry in entries]
    return SnapshotStores(multi, names, kept_local, reader, closers)
