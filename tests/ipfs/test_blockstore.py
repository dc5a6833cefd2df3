"""``put_many``: a store's own batch upload when it has one, concurrent ``put`` calls otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from marketd.ipfs.blockstore import (
    StoredContent,
    SupportsPutMany,
    gather_all,
    put_each,
    put_many,
)
from marketd.ipfs.builder import file_cid
from marketd.ipfs.errors import BlockstoreError, CidMismatchError
from marketd.ipfs.profile import DEFAULT_PROFILE, UNIXFS_V0_2015, LayoutProfile


class PutOnly:
    """A store with ``put`` alone; counts how many uploads run at once."""

    name = "put-only"

    def __init__(self, failing: dict[bytes, Exception] | None = None) -> None:
        self.failing = failing or {}
        self.running = 0
        self.most_at_once = 0
        self.done: list[bytes] = []

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0)  # let the other uploads start
            if data in self.failing:
                raise self.failing[data]
            self.done.append(data)
            return StoredContent(file_cid(data, profile), profile, len(data))
        finally:
            self.running -= 1


class Batched(PutOnly):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[bytes]] = []

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        self.batches.append(list(documents))
        return [StoredContent(file_cid(d, profile), profile, len(d)) for d in documents]


DOCS = [f"document {i}".encode() for i in range(10)]


async def test_a_store_with_put_many_gets_the_whole_batch() -> None:
    store = Batched()
    assert isinstance(store, SupportsPutMany)
    stored = await put_many(store, DOCS, UNIXFS_V0_2015)  # type: ignore[arg-type]
    assert store.batches == [DOCS] and store.done == []
    assert [s.cid for s in stored] == [file_cid(d, UNIXFS_V0_2015) for d in DOCS]


async def test_other_stores_get_concurrent_puts_in_order() -> None:
    store = PutOnly()
    assert not isinstance(store, SupportsPutMany)
    stored = await put_many(store, DOCS, concurrency=3)  # type: ignore[arg-type]
    assert [s.cid for s in stored] == [file_cid(d) for d in DOCS]
    assert [s.size for s in stored] == [len(d) for d in DOCS]
    assert sorted(store.done) == sorted(DOCS)
    assert store.most_at_once == 3
    assert await put_many(store, []) == []  # type: ignore[arg-type]


async def test_every_put_ends_before_the_first_failure_is_raised() -> None:
    store = PutOnly({DOCS[1]: BlockstoreError("node is down")})
    with pytest.raises(BlockstoreError, match="node is down"):
        await put_each(store, DOCS, concurrency=2)  # type: ignore[arg-type]
    assert sorted(store.done) == sorted(DOCS[:1] + DOCS[2:])
    assert store.running == 0


async def test_a_cid_mismatch_outranks_other_failures() -> None:
    mismatch = CidMismatchError("liar", "bafyexpected", "bafyreported")
    store = PutOnly({DOCS[0]: BlockstoreError("flaky"), DOCS[5]: mismatch})
    with pytest.raises(CidMismatchError) as caught:
        await put_each(store, DOCS)  # type: ignore[arg-type]
    assert caught.value is mismatch


async def test_gather_all_keeps_order() -> None:
    async def value(number: int) -> int:
        await asyncio.sleep(0)
        return number

    assert await gather_all(value(n) for n in range(5)) == [0, 1, 2, 3, 4]
    assert await gather_all([]) == []
