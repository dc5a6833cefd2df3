"""The embedded directory blockstore."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketd.ipfs import local
from marketd.ipfs.blockstore import Blockstore, SupportsPutMany
from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str
from marketd.ipfs.errors import ContentNotFoundError, VerificationError
from marketd.ipfs.local import LocalBlockstore
from marketd.ipfs.profile import UNIXFS_V0_2015, LayoutProfile

TINY = LayoutProfile("tiny", 1, True, 4, 3)


def _files(root: Path) -> list[str]:
    return sorted(path.name for path in root.rglob("*") if path.is_file())


async def test_put_get_round_trip(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    assert isinstance(store, Blockstore) and isinstance(store, SupportsPutMany)
    data = b"discussion snapshot " * 50
    stored = await store.put(data, TINY)
    assert stored.cid == file_cid(data, TINY)
    assert stored.cid_str == cid_to_str(stored.cid)
    assert (stored.profile, stored.size) == (TINY, len(data))
    assert await store.get(stored.cid_str) == data
    assert await store.has(stored.cid)
    assert await store.is_pinned(stored.cid)
    assert store.name == "local"


async def test_v0_and_v1_content_coexist(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    v0 = await store.put(b"same bytes", UNIXFS_V0_2015)
    v1 = await store.put(b"same bytes")
    assert v0.cid != v1.cid
    assert await store.get(v0.cid) == await store.get(v1.cid) == b"same bytes"


async def test_put_is_idempotent(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    first = await store.put(b"x" * 100, TINY)
    files = _files(tmp_path)
    second = await store.put(b"x" * 100, TINY)
    assert first == second
    assert _files(tmp_path) == files
    assert not [name for name in files if name.startswith(".tmp-")], "no temporary file is left"


async def test_missing_content(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    absent = file_cid(b"never stored")
    assert not await store.has(absent)
    with pytest.raises(ContentNotFoundError):
        await store.get(absent)
    with pytest.raises(ContentNotFoundError):
        await store.pin(absent)


async def test_corrupted_block_is_detected(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    stored = await store.put(b"abcdefgh", TINY)
    victim = next(p for p in (tmp_path / "blocks").glob("*/*") if p.read_bytes() == b"efgh")
    victim.write_bytes(b"EFGH")
    with pytest.raises(VerificationError):
        await store.get(stored.cid)


async def test_pin_unpin_and_gc(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    kept = await store.put(b"keep me, I am pinned", TINY)
    dropped = await store.put(b"drop me, unpinned", TINY)
    shared = await store.put(b"keep", TINY)  # a leaf that `kept` also uses
    await store.unpin(dropped.cid)
    await store.unpin(shared.cid)
    await store.unpin(shared.cid)  # unpinning twice is a no-op
    assert not await store.is_pinned(dropped.cid)
    deleted = store.gc()
    assert deleted > 0
    assert await store.get(kept.cid) == b"keep me, I am pinned"
    assert await store.has(shared.cid), "reachable from a pin, so kept"
    assert not await store.has(dropped.cid)
    await store.pin(shared.cid)
    assert await store.is_pinned(shared.cid)
    assert store.gc() == 0


async def test_gc_tolerates_a_damaged_pin(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    stored = await store.put(b"abcdefghijkl", TINY)
    root_path = next(p for p in (tmp_path / "blocks").rglob(stored.cid_str))
    root_path.unlink()
    assert store.gc() == 3  # the root is gone, so its leaves are unreachable
    assert await store.is_pinned(stored.cid)


async def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlockstore(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("marketd.ipfs.local.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        await store.put(b"will not land")
    assert _files(tmp_path) == []


async def test_put_many_stores_and_pins_every_document(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    documents = [b"snapshot one " * 10, b"snapshot two", b"snapshot one " * 10, b""]
    stored = await store.put_many(documents, TINY)
    assert [s.cid for s in stored] == [file_cid(d, TINY) for d in documents]
    assert [s.size for s in stored] == [len(d) for d in documents]
    for content, data in zip(stored, documents, strict=True):
        assert await store.get(content.cid) == data
        assert await store.is_pinned(content.cid)
    assert await store.put_many([]) == []
    assert not [name for name in _files(tmp_path) if name.startswith(".tmp-")]


async def test_one_flush_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flushed: list[int] = []
    monkeypatch.setattr(local, "_SYNCFS", lambda fd: flushed.append(fd) or 0)
    store = LocalBlockstore(tmp_path)
    await store.put_many([f"document {i}".encode() * 3 for i in range(20)], TINY)
    assert len(flushed) == 1
    stored = await store.put(b"alone")
    assert len(flushed) == 2
    await store.unpin(stored.cid)
    await store.pin(stored.cid)
    assert len(flushed) == 3, "a new pin marker is flushed too"


@pytest.mark.parametrize("syncfs", [None, lambda fd: -1], ids=["no syncfs", "syncfs fails"])
async def test_without_syncfs_the_flush_is_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: object
) -> None:
    synced: list[bool] = []
    monkeypatch.setattr(local, "_SYNCFS", syncfs)
    monkeypatch.setattr(local.os, "sync", lambda: synced.append(True))
    await LocalBlockstore(tmp_path).put(b"durable all the same")
    assert synced == [True]


def test_syncfs_is_found_on_linux_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert callable(local._load_syncfs())  # these machines run Linux

    class NoSyncfs:
        def __init__(self, name: object, use_errno: bool) -> None:
            pass

    monkeypatch.setattr(local.ctypes, "CDLL", NoSyncfs)
    assert local._load_syncfs() is None


async def test_a_block_torn_by_a_crash_is_rewritten_by_the_next_put(tmp_path: Path) -> None:
    """A crash before the flush can leave a block empty or partial under its name; the next
    put of the same content must not take it for stored."""
    store = LocalBlockstore(tmp_path)
    data = b"abcdefghijkl"
    stored = await store.put(data, TINY)
    leaf = next(p for p in (tmp_path / "blocks").glob("*/*") if p.read_bytes() == b"efgh")
    leaf.write_bytes(b"ef")  # torn
    root = next((tmp_path / "blocks").rglob(stored.cid_str))
    root.write_bytes(b"")  # empty
    with pytest.raises(VerificationError):
        await store.get(stored.cid)
    assert (await store.put_many([data], TINY))[0] == stored
    assert await store.get(stored.cid) == data


async def test_gc_removes_temporary_files_left_by_a_crash(tmp_path: Path) -> None:
    store = LocalBlockstore(tmp_path)
    stored = await store.put(b"kept", TINY)
    shard = next((tmp_path / "blocks").glob("*"))
    (shard / ".tmp-0123456789abcdef").write_bytes(b"half a blo")
    assert store.gc() == 1
    assert await store.get(stored.cid) == b"kept"
