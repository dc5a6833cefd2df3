"""Several stores behind one: write to all, succeed on the first *required* confirmation.

Each store's upload is retried with exponential backoff (tenacity) on ``BlockstoreError``;
a ``CidMismatchError`` is never retried. ``put`` (one document) and ``put_many`` (a batch, sent
with each store's own ``put_many`` when it has one) return as soon as one required store has
confirmed; the other uploads go on in the background and can be awaited with ``drain()``
(shutdown, tests). When no store is marked required, any confirmation counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from marketd.ipfs.blockstore import Blockstore, StoredContent, put_many
from marketd.ipfs.cid import Cid
from marketd.ipfs.errors import (
    BlockstoreError,
    ContentNotFoundError,
    ContentUnavailableError,
    IpfsError,
)
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoreEntry:
    store: Blockstore
    required: bool = True


class MultiBlockstore:
    def __init__(
        self,
        entries: Sequence[StoreEntry],
        *,
        attempts: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        name: str = "multi",
    ) -> None:
        if not entries:
            raise ValueError("MultiBlockstore needs at least one store")
        self._entries = list(entries)
        self._attempts = attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._name = name
        self._background: set[asyncio.Task[object]] = set()

    @property
    def name(self) -> str:
        return self._name

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        return await self._first_confirmation(lambda store: store.put(data, profile))

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        return await self._first_confirmation(lambda store: put_many(store, documents, profile))

    async def _first_confirmation(self, upload: Callable[[Blockstore], Awaitable[T]]) -> T:
        """Run ``upload`` on every store (each retried); return the first required store's
        result, leaving the other uploads to finish in the background."""
        tasks: dict[asyncio.Task[T], StoreEntry] = {
            asyncio.create_task(self._retried(entry.store, upload)): entry
            for entry in self._entries
        }
        waiting: set[asyncio.Task[T]] = {t for t, e in tasks.items() if e.required} or set(tasks)
        errors: list[str] = []
        try:
            while waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        return task.result()
                    errors.append(f"{tasks[task].store.name}: {error}")
                    if not isinstance(error, BlockstoreError):
                        raise error
            raise BlockstoreError(f"no required store accepted the upload: {'; '.join(errors)}")
        finally:
            for task in tasks:
                if not task.done():
                    self._background.add(task)
                    task.add_done_callback(self._finished)

    async def drain(self) -> None:
        """Wait for background uploads to end (their failures are logged, not raised)."""
        while self._background:
            await asyncio.wait(set(self._background))

    async def get(self, cid: Cid | str) -> bytes:
        failures: list[str] = []
        for entry in self._entries:
            try:
                return await entry.store.get(cid)
            except IpfsError as exc:
                if not isinstance(exc, ContentNotFoundError):
                    log.warning(
                        "store failed to serve",
                        store=entry.store.name,
                        cid=str(cid),
                        error=repr(exc),
                    )
                failures.append(f"{entry.store.name}: {exc}")
        raise ContentUnavailableError(f"no store served {cid}: {'; '.join(failures)}")

    async def has(self, cid: Cid | str) -> bool:
        for entry in self._entries:
            if await entry.store.has(cid):
                return True
        return False

    async def pin(self, cid: Cid | str) -> None:
        await self._on_all("pin", cid)

    async def unpin(self, cid: Cid | str) -> None:
        await self._on_all("unpin", cid)

    async def _on_all(self, operation: str, cid: Cid | str) -> None:
        """Run on every store; raise if a required store (or, with none required, every
        store) failed."""
        results = await asyncio.gather(
            *(getattr(e.store, operation)(cid) for e in self._entries), return_exceptions=True
        )
        failed = [(e, r) for e, r in zip(self._entries, results, strict=True) if r is not None]
        for entry, error in failed:
            log.warning(
                "store operation failed",
                operation=operation,
                cid=str(cid),
                store=entry.store.name,
                error=repr(error),
            )
        if any(e.required for e in self._entries):
            fatal = [error for entry, error in failed if entry.required]
        else:
            fatal = [error for _, error in failed] if len(failed) == len(self._entries) else []
        if fatal:
            raise BlockstoreError(f"{operation} {cid} failed: {fatal[0]}") from fatal[0]

    async def _retried(self, store: Blockstore, upload: Callable[[Blockstore], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_initial, max=self._backoff_max),
            retry=retry_if_exception_type(BlockstoreError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await upload(store)
        log.info("upload confirmed", store=store.name)
        return result

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background upload failed", error=repr(task.exception()))
