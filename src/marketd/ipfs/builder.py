"""Build a UnixFS file DAG exactly as ``ipfs add`` does (balanced layout, fixed-size chunks).

Leaves are raw blocks (``raw_leaves``) or dag-pb nodes holding ``UnixFS{File, Data, filesize}``.
Leaves are grouped ``max_links`` at a time under dag-pb parents holding
``UnixFS{File, filesize, blocksizes}``, level by level, until one node remains; a file of one
chunk is that chunk's leaf alone. A link's Tsize is the block's size plus its children's Tsizes.
This bottom-up grouping yields the same tree as Kubo's and js-ipfs's balanced builders.

Blocks come out as soon as they are complete, so a file of any size is built with memory for
one chunk plus ``max_links`` pending links per level.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from marketd.ipfs.block import Block
from marketd.ipfs.chunker import chunk_bytes, chunk_stream
from marketd.ipfs.cid import DAG_PB, RAW, Cid, cid_for_block
from marketd.ipfs.dagpb import PBLink, PBNode, encode_node
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile
from marketd.ipfs.unixfs import DataType, UnixFSData, encode_unixfs


@dataclass(frozen=True, slots=True)
class _Child:
    cid: Cid
    tsize: int
    filesize: int


class FileDagBuilder:
    """Incremental builder: ``add_chunk`` for each chunk, then ``finish``.

    Each call returns the blocks completed by it; the last block ``finish`` returns is the root.
    """

    def __init__(self, profile: LayoutProfile = DEFAULT_PROFILE) -> None:
        self.profile = profile
        self._levels: list[list[_Child]] = [[]]
        self._chunks = 0
        self._root: Block | None = None
        # The newest leaf / parent: the root when finish() has nothing left to flush.
        self._last_leaf: Block | None = None
        self._last_parent: Block | None = None

    @property
    def root(self) -> Block:
        if self._root is None:
            raise RuntimeError("finish() has not been called")
        return self._root

    def add_chunk(self, chunk: bytes) -> list[Block]:
        if self._root is not None:
            raise RuntimeError("builder already finished")
        if len(chunk) > self.profile.chunk_size:
            raise ValueError(f"chunk of {len(chunk)} bytes exceeds {self.profile.chunk_size}")
        self._chunks += 1
        leaf = self._leaf(chunk)
        blocks = [leaf]
        self._levels[0].append(_Child(leaf.cid, len(leaf.data), len(chunk)))
        level = 0
        while len(self._levels[level]) == self.profile.max_links:
            blocks.append(self._flush(level))
            level += 1
        return blocks

    def finish(self) -> list[Block]:
        """Close every partial level; the returned list ends with the root block."""
        if self._root is not None:
            raise RuntimeError("builder already finished")
        blocks: list[Block] = []
        if self._chunks == 0:
            blocks.extend(self.add_chunk(b""))
        if self._chunks == 1:
            self._root = self._last_leaf
            return blocks
        level = 0
        while not (level == len(self._levels) - 1 and len(self._levels[level]) == 1):
            if self._levels[level]:
                blocks.append(self._flush(level))
            level += 1
        # Nothing flushed means the last add_chunk's cascade made the single top node.
        self._root = blocks[-1] if blocks else self._last_parent
        return blocks

    def _leaf(self, chunk: bytes) -> Block:
        if self.profile.raw_leaves:
            data = chunk
            block = Block(cid_for_block(data, RAW, self.profile.cid_version), data)
        else:
            payload = UnixFSData(DataType.FILE, data=chunk or None, filesize=len(chunk))
            data = encode_node(PBNode(data=encode_unixfs(payload)))
            block = Block(cid_for_block(data, DAG_PB, self.profile.cid_version), data)
        self._last_leaf = block
        return block

    def _flush(self, level: int) -> Block:
        children = self._levels[level]
        payload = UnixFSData(
            DataType.FILE,
            filesize=sum(child.filesize for child in children),
            blocksizes=tuple(child.filesize for child in children),
        )
        node = PBNode(
            links=tuple(PBLink(child.cid, "", child.tsize) for child in children),
            data=encode_unixfs(payload),
        )
        data = encode_node(node)
        block = Block(cid_for_block(data, DAG_PB, self.profile.cid_version), data)
        if level + 1 == len(self._levels):
            self._levels.append([])
        self._levels[level + 1].append(
            _Child(block.cid, len(data) + sum(c.tsize for c in children), payload.filesize or 0)
        )
        self._levels[level] = []
        self._last_parent = block
        return block


def iter_file_blocks(
    chunks: Iterable[bytes], profile: LayoutProfile = DEFAULT_PROFILE
) -> Iterator[Block]:
    """Every block of the file DAG, children before parents; the last one is the root."""
    builder = FileDagBuilder(profile)
    for chunk in chunks:
        yield from builder.add_chunk(chunk)
    yield from builder.finish()


def blocks_of_bytes(data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> Iterator[Block]:
    return iter_file_blocks(chunk_bytes(data, profile.chunk_size), profile)


def blocks_of_stream(stream: BinaryIO, profile: LayoutProfile = DEFAULT_PROFILE) -> Iterator[Block]:
    return iter_file_blocks(chunk_stream(stream, profile.chunk_size), profile)


def root_of(blocks: Iterable[Block]) -> Cid:
    """Drain a block iterator (as from ``iter_file_blocks``) and return the root CID."""
    root: Block | None = None
    for block in blocks:
        root = block
    if root is None:
        raise ValueError("no blocks")
    return root.cid


def file_cid(data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> Cid:
    """The CID ``ipfs add --only-hash`` would print for ``data`` under ``profile``."""
    return root_of(blocks_of_bytes(data, profile))


def stream_cid(stream: BinaryIO, profile: LayoutProfile = DEFAULT_PROFILE) -> Cid:
    """Like ``file_cid`` for a file object, reading one chunk at a time."""
    return root_of(blocks_of_stream(stream, profile))
