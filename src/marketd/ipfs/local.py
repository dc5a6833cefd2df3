"""The embedded default store: a directory of blocks named by CID string.

Layout under ``root``: ``blocks/<xy>/<cid>`` (``xy`` = the two characters before the CID's
last one, as Kubo's flatfs shards, so no directory grows huge) and ``pins/<cid>`` markers.
``put`` pins the root; ``gc`` removes blocks no pin reaches.

Crash safety at the cost of one flush per batch, not one per file: every block is written to a
temporary name in its shard directory and renamed into place (no reader ever finds a partial
block under a CID), the pin markers are created, and then the whole batch is made durable with
one ``syncfs(2)`` of the store's filesystem (``os.sync()`` where there is no ``syncfs``) before
``put`` / ``put_many`` return, so a caller that records content as stored after the call
never records something a power loss can take back. A crash *before* that flush may leave a
block torn or empty under its name, so a block already present is re-verified by the next
``put`` (never trusted for existing) and rewritten when damaged; reads always verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

from marketd.ipfs.block import Block
from marketd.ipfs.blockstore import StoredContent
from marketd.ipfs.builder import blocks_of_bytes
from marketd.ipfs.cid import DAG_PB, Cid, cid_to_str, codec_of, parse_cid, verify_block
from marketd.ipfs.dagpb import decode_node
from marketd.ipfs.errors import ContentNotFoundError, DecodeError, VerificationError
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile
from marketd.ipfs.reader import read_file_dag


class LocalBlockstore:
    def __init__(self, root: Path | str, *, name: str = "local") -> None:
        self._root = Path(root)
        self._name = name
        self._blocks = self._root / "blocks"
        self._pins = self._root / "pins"

    @property
    def name(self) -> str:
        return self._name

    async def put(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        return await asyncio.to_thread(self.put_sync, data, profile)

    async def put_many(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        return await asyncio.to_thread(self.put_many_sync, documents, profile)

    async def get(self, cid: Cid | str) -> bytes:
        return await asyncio.to_thread(self.get_sync, cid)

    async def has(self, cid: Cid | str) -> bool:
        return self._block_path(parse_cid(cid)).is_file()

    async def pin(self, cid: Cid | str) -> None:
        parsed = parse_cid(cid)
        if not self._block_path(parsed).is_file():
            raise ContentNotFoundError(f"{self._name} does not hold {cid_to_str(parsed)}")
        _create_empty(self._pins / cid_to_str(parsed))
        _flush(self._root)

    async def unpin(self, cid: Cid | str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._pins / cid_to_str(cid)).unlink()

    async def is_pinned(self, cid: Cid | str) -> bool:
        return (self._pins / cid_to_str(cid)).is_file()

    def put_sync(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        (stored,) = self.put_many_sync([data], profile)
        return stored

    def put_many_sync(
        self, documents: Sequence[bytes], profile: LayoutProfile = DEFAULT_PROFILE
    ) -> list[StoredContent]:
        """Store and pin every document, then flush once (see the module docstring)."""
        if not documents:
            return []
        stored: list[StoredContent] = []
        for data in documents:
            root: Cid = None
            for block in blocks_of_bytes(data, profile):
                self._store_block(block)
                root = block.cid
            stored.append(StoredContent(cid=root, profile=profile, size=len(data)))
        for item in stored:
            _create_empty(self._pins / item.cid_str)
        _flush(self._root)
        return stored

    def get_sync(self, cid: Cid | str) -> bytes:
        return read_file_dag(parse_cid(cid), self._read_block)

    def gc(self) -> int:
        """Delete every block not reachable from a pin; return how many were deleted.

        Not safe concurrently with ``put`` (whose blocks are unpinned until its last step):
        callers run it under the retention job's lock.
        """
        live: set[str] = set()
        pending = [parse_cid(path.name) for path in self._pins.glob("*")]
        while pending:
            cid = pending.pop()
            key = cid_to_str(cid)
            if key in live:
                continue
            live.add(key)
            if codec_of(cid) == DAG_PB:
                try:
                    node = decode_node(self._read_block(cid))
                except (ContentNotFoundError, DecodeError, VerificationError):
                    continue  # a damaged pin keeps what it still reaches
                pending.extend(link.cid for link in node.links)
        deleted = 0
        for path in self._blocks.glob("*/*"):
            if path.name not in live:
                path.unlink()
                deleted += 1
        return deleted

    def _block_path(self, cid: Cid) -> Path:
        key = cid_to_str(cid)
        return self._blocks / key[-3:-1] / key

    def _store_block(self, block: Block) -> None:
        """Write the block unless an intact copy is there already."""
        path = self._block_path(block.cid)
        try:
            verify_block(block.cid, path.read_bytes())
        except (FileNotFoundError, VerificationError):
            _write_atomic(path, block.data)

    def _read_block(self, cid: Cid) -> bytes:
        try:
            data = self._block_path(cid).read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(f"{self._name} does not hold {cid_to_str(cid)}") from None
        verify_block(cid, data)
        return data


def _open_creating_parent(path: Path, flags: int) -> int:
    """``os.open`` that creates a missing parent directory (a new shard) on first use, instead
    of a ``mkdir`` call before every write."""
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write under a temporary name in the same directory, then rename into place (not flushed:
    see ``_flush``)."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(8)}")
    fd = _open_creating_parent(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _create_empty(path: Path) -> None:
    """Create an empty marker file, or leave an existing one alone (nothing in it to tear)."""
    os.close(_open_creating_parent(path, os.O_WRONLY | os.O_CREAT))


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        syncfs: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):  # not Linux
        return None
    return syncfs


_SYNCFS = _load_syncfs()


def _flush(directory: Path) -> None:
    """Make everything written so far under ``directory`` durable, renames included: one
    ``syncfs`` of its filesystem (one journal commit for a whole batch, where an ``fsync`` per
    file and directory costs one each), else ``os.sync()``."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
