"""What every content store offers, and the record ``put`` returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from marketd.ipfs.cid import Cid, cid_to_str
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A CID computed locally, with the profile that produced it (store both: the profile is
    what lets anyone rebuild the DAG and check the CID) and the file size."""

    cid: Cid
    profile: LayoutProfile
    size: int

    @property
    def cid_str(self) -> str:
        return cid_to_str(self.cid)


@runtime_checkable
class Blockstore(Protocol):
    """A place that keeps file DAGs.

    ``put`` computes the CID locally before (or while) storing, and a store whose idea of the
    CID differs raises ``CidMismatchError``; ``get`` returns bytes verified against the CID,
    raising ``ContentNotFoundError`` when the store does not hold them. ``pin`` / ``unpin``
    protect content from / expose it to garbage collection; ``unpin`` of an unpinned CID is a
    no-op.
    """

    @property
    def name(self) -> str: ...

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent: ...

    async def get(self, cid: Cid | str) -> bytes: ...

    async def has(self, cid: Cid | str) -> bool: ...

    async def pin(self, cid: Cid | str) -> None: ...

    async def unpin(self, cid: Cid | str) -> None: ...
