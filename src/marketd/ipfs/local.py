"""The embedded default store: a directory of blocks named by CID string.

Layout under ``root``: ``blocks/<xy>/<cid>`` (``xy`` = the two characters before the CID's
last one, as Kubo's flatfs shards, so no directory grows huge) and ``pins/<cid>`` markers.
Every file is written to a temporary name in the same directory and renamed into place, so a
crash never leaves a partial block under a CID. ``put`` pins the root; ``gc`` removes blocks no
pin reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

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

    async def get(self, cid: Cid | str) -> bytes:
        return await asyncio.to_thread(self.get_sync, cid)

    async def has(self, cid: Cid | str) -> bool:
        return self._block_path(parse_cid(cid)).is_file()

    async def pin(self, cid: Cid | str) -> None:
        parsed = parse_cid(cid)
        if not self._block_path(parsed).is_file():
            raise ContentNotFoundError(f"{self._name} does not hold {cid_to_str(parsed)}")
        _write_atomic(self._pins / cid_to_str(parsed), b"")

    async def unpin(self, cid: Cid | str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._pins / cid_to_str(cid)).unlink()

    async def is_pinned(self, cid: Cid | str) -> bool:
        return (self._pins / cid_to_str(cid)).is_file()

    def put_sync(self, data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> StoredContent:
        root: Cid = None
        for block in blocks_of_bytes(data, profile):
            path = self._block_path(block.cid)
            if not path.is_file():
                _write_atomic(path, block.data)
            root = block.cid
        _write_atomic(self._pins / cid_to_str(root), b"")
        return StoredContent(cid=root, profile=profile, size=len(data))

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

    def _read_block(self, cid: Cid) -> bytes:
        try:
            data = self._block_path(cid).read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(f"{self._name} does not hold {cid_to_str(cid)}") from None
        verify_block(cid, data)
        return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
