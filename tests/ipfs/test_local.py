"""The embedded directory blockstore."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketd.ipfs.blockstore import Blockstore
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
    assert isinstance(store, Blockstore)
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
