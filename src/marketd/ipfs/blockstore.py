"""What every content store offers, the record ``put`` returns, and batched uploads.

``put_many(store, documents)`` is how callers store a batch: a store that can do better than
one ``put`` per document (one flush for the batch, one request for the batch) implements
``SupportsPutMany``; any other store gets the default, concurrent ``put`` calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from marketd.ipfs.cid import Cid, cid_to_str
from marketd.ipfs.errors import CidMismatchError
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


@runtime_checkable
class SupportsPutMany(Protocol):
    """A store with a batched upload.

    ``put_many`` stores (and pins) every document and returns their records in the order given,
    or raises when any of them could not be stored; then some may have been stored and some
    not, and storing the batch again is safe (``put`` is idempotent). A store whose idea of a
    CID differs from the locally computed one raises ``CidMismatchError``, as ``put`` does.
    """

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]: ...


DEFAULT_PUT_CONCURRENCY = 8


async def put_many(
    store: Blockstore,
    documents: Sequence[bytes],
    profile: LayoutProfile = DEFAULT_PROFILE,
    *,
    concurrency: int = DEFAULT_PUT_CONCURRENCY,
) -> list[StoredContent]:
    """The store's own ``put_many`` when it has one, else ``put`` for each document,
    ``concurrency`` at a time, with the ``SupportsPutMany`` contract."""
    if isinstance(store, SupportsPutMany):
        return await store.put_many(documents, profile)
    return await put_each(store, documents, profile, concurrency=concurrency)


async def put_each(
    store: Blockstore,
    documents: Sequence[bytes],
    profile: LayoutProfile = DEFAULT_PROFILE,
    *,
    concurrency: int = DEFAULT_PUT_CONCURRENCY,
) -> list[StoredContent]:
    """``put`` of every document, ``concurrency`` at a time. Every upload runs to its end
    (nothing half-done is cancelled); then the first failure, if any, is raised."""
    limit = asyncio.Semaphore(concurrency)

    async def one(data: bytes) -> StoredContent:
        async with limit:
            return await store.put(data, profile)

    return await gather_all(one(data) for data in documents)


T = TypeVar("T")


async def gather_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Await every one to its end (no request is left running when this returns or raises),
    then raise the most telling failure: a ``CidMismatchError`` before any other (it must not
    be mistaken for a retryable one), else the first."""
    results = await asyncio.gather(*awaitables, return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        mismatches = [f for f in failures if isinstance(f, CidMismatchError)]
        raise (mismatches or failures)[0]
    return [result for result in results if not isinstance(result, BaseException)]
