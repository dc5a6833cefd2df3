"""Several stores behind one: the first required confirmation wins, others retry."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from marketd.ipfs.blockstore import StoredContent
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import Cid, cid_to_str
from marketd.ipfs.errors import (
    BlockstoreError,
    CidMismatchError,
    ContentNotFoundError,
    ContentUnavailableError,
    VerificationError,
)
from marketd.ipfs.multi import MultiBlockstore, StoreEntry
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile


class FakeStore:
    """In-memory store whose failures and pace the test scripts."""

    def __init__(self, name: str, *, failures: int = 0, error: Exception | None = None) -> None:
        self._name = name
        self.failures = failures
        self.error = error or BlockstoreError(f"{name} is down")
        self.gate = asyncio.Event()
        self.gate.set()
        self.put_calls = 0
        self.failed = asyncio.Queue[int]()  # receives put_calls after each failed attempt
        self.content: dict[str, bytes] = {}
        self.pinned: set[str] = set()
        self.fail_pins = False
        self.get_error: Exception | None = None

    @property
    def name(self) -> str:
        return self._name

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        self.put_calls += 1
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            self.failed.put_nowait(self.put_calls)
            raise self.error
        cid = file_cid(data, profile)
        self.content[cid_to_str(cid)] = data
        return StoredContent(cid, profile, len(data))

    async def get(self, cid: Cid | str) -> bytes:
        if self.get_error:
            raise self.get_error
        try:
            return self.content[cid_to_str(cid)]
        except KeyError:
            raise ContentNotFoundError(str(cid)) from None

    async def has(self, cid: Cid | str) -> bool:
        return cid_to_str(cid) in self.content

    async def pin(self, cid: Cid | str) -> None:
        if self.fail_pins:
            raise BlockstoreError("pin failed")
        self.pinned.add(cid_to_str(cid))

    async def unpin(self, cid: Cid | str) -> None:
        if self.fail_pins:
            raise BlockstoreError("unpin failed")
        self.pinned.discard(cid_to_str(cid))


def multi(*entries: StoreEntry, attempts: int = 3) -> MultiBlockstore:
    return MultiBlockstore(entries, attempts=attempts, backoff_initial=0, backoff_max=0)


async def test_returns_on_first_required_confirmation_while_others_continue() -> None:
    slow_optional = FakeStore("optional")
    slow_optional.gate.clear()
    required = FakeStore("required")
    store = multi(StoreEntry(required), StoreEntry(slow_optional, required=False))
    stored = await store.put(b"snapshot")
    assert stored.cid == file_cid(b"snapshot")
    assert await required.has(stored.cid)
    assert not await slow_optional.has(stored.cid), "still uploading in the background"
    slow_optional.gate.set()
    await store.drain()
    assert await slow_optional.has(stored.cid)
    assert store.name == "multi"


async def test_required_store_is_retried_with_backoff() -> None:
    flaky = FakeStore("flaky", failures=2)
    store = multi(StoreEntry(flaky), attempts=3)
    stored = await store.put(b"data")
    assert flaky.put_calls == 3
    assert await store.get(stored.cid) == b"data"


async def test_fails_when_every_required_store_fails() -> None:
    down = FakeStore("down", failures=10)
    fine_but_optional = FakeStore("optional")
    store = multi(StoreEntry(down), StoreEntry(fine_but_optional, required=False))
    with pytest.raises(BlockstoreError, match="no required store accepted"):
        await store.put(b"data")
    assert down.put_calls == 3
    await store.drain()


async def test_cid_mismatch_is_not_retried_and_propagates() -> None:
    liar = FakeStore("liar", failures=1, error=CidMismatchError("liar", "bafy1", "bafy2"))
    store = multi(StoreEntry(liar))
    with pytest.raises(CidMismatchError):
        await store.put(b"data")
    assert liar.put_calls == 1


async def test_without_required_stores_any_confirmation_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = FakeStore("down", failures=10)
    up = FakeStore("up")
    up.gate.clear()
    store = multi(StoreEntry(down, required=False), StoreEntry(up, required=False))
    task = asyncio.create_task(store.put(b"data"))
    while await down.failed.get() < 3:  # let the failing store exhaust its retries first
        pass
    up.gate.set()
    stored = await task
    assert await up.has(stored.cid)
    await store.drain()


async def test_background_failures_are_logged() -> None:
    optional = FakeStore("optional", failures=10)
    optional.gate.clear()
    store = multi(StoreEntry(FakeStore("required")), StoreEntry(optional, required=False))
    await store.put(b"data")
    optional.gate.set()
    with capture_logs() as logs:
        await store.drain()
    assert "background upload failed" in [e["event"] for e in logs if e["log_level"] == "error"]


async def test_get_falls_through_stores() -> None:
    empty, broken, holder = FakeStore("empty"), FakeStore("broken"), FakeStore("holder")
    broken.get_error = VerificationError("bad bytes")
    stored = await holder.put(b"data")
    store = multi(StoreEntry(empty), StoreEntry(broken), StoreEntry(holder))
    assert await store.get(stored.cid) == b"data"
    assert await store.has(stored.cid)
    holder.content.clear()
    assert not await store.has(stored.cid)
    with pytest.raises(ContentUnavailableError, match="no store served"):
        await store.get(stored.cid)


async def test_pin_and_unpin_reach_every_store() -> None:
    a, b = FakeStore("a"), FakeStore("b")
    store = multi(StoreEntry(a), StoreEntry(b, required=False))
    cid = file_cid(b"x")
    await store.pin(cid)
    assert a.pinned == b.pinned == {cid_to_str(cid)}
    b.fail_pins = True
    await store.unpin(cid)  # an optional store's failure is only logged
    assert a.pinned == set()
    a.fail_pins = True
    with pytest.raises(BlockstoreError, match="pin"):
        await store.pin(cid)


async def test_pin_without_required_stores_fails_only_when_all_fail() -> None:
    a, b = FakeStore("a"), FakeStore("b")
    store = multi(StoreEntry(a, required=False), StoreEntry(b, required=False))
    a.fail_pins = True
    await store.pin(file_cid(b"x"))
    b.fail_pins = True
    with pytest.raises(BlockstoreError):
        await store.pin(file_cid(b"x"))


def test_needs_a_store() -> None:
    with pytest.raises(ValueError, match="at least one"):
        MultiBlockstore([])


class BatchStore(FakeStore):
    """A FakeStore with its own put_many (which fails ``failures`` times, then stores)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.batches: list[list[bytes]] = []

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        self.batches.append(list(documents))
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise self.error
        stored = []
        for data in documents:
            cid = file_cid(data, profile)
            self.content[cid_to_str(cid)] = data
            stored.append(StoredContent(cid, profile, len(data)))
        return stored


DOCS = [b"first", b"second", b"third"]


async def test_put_many_returns_on_the_first_required_confirmation() -> None:
    required = BatchStore("required", failures=1)  # retried once
    optional = FakeStore("optional")  # no put_many: one put per document
    optional.gate.clear()
    store = multi(StoreEntry(required), StoreEntry(optional, required=False))
    stored = await store.put_many(DOCS)
    assert [s.cid for s in stored] == [file_cid(d) for d in DOCS]
    assert required.batches == [DOCS, DOCS]
    assert [await required.has(s.cid) for s in stored] == [True] * 3
    assert not optional.content, "still uploading in the background"
    optional.gate.set()
    await store.drain()
    assert optional.put_calls == 3
    assert [await optional.has(s.cid) for s in stored] == [True] * 3


async def test_put_many_fails_loudly_on_a_mismatch_and_after_the_retries() -> None:
    liar = BatchStore("liar", failures=1, error=CidMismatchError("liar", "bafy1", "bafy2"))
    with pytest.raises(CidMismatchError):
        await multi(StoreEntry(liar)).put_many(DOCS)
    assert len(liar.batches) == 1, "a mismatch is not retried"

    down = BatchStore("down", failures=10)
    with pytest.raises(BlockstoreError, match="no required store accepted"):
        await multi(StoreEntry(down), attempts=2).put_many(DOCS)
    assert len(down.batches) == 2
