"""UnixFS file DAG building: known CIDs, the balanced layout, streaming."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterator

import pytest

from marketd.ipfs.block import Block
from marketd.ipfs.builder import (
    FileDagBuilder,
    blocks_of_bytes,
    file_cid,
    iter_file_blocks,
    root_of,
    stream_cid,
)
from marketd.ipfs.chunker import chunk_bytes, chunk_stream, rechunk
from marketd.ipfs.cid import DAG_PB, RAW, Cid, cid_to_str, codec_of
from marketd.ipfs.dagpb import decode_node
from marketd.ipfs.profile import (
    DEFAULT_PROFILE,
    KUBO_CLASSIC_CID_V1,
    UNIXFS_V0_2015,
    LayoutProfile,
    profile_by_name,
)
from marketd.ipfs.unixfs import DataType, decode_unixfs

TINY_V1 = LayoutProfile("tiny-v1", 1, True, 4, 3)
TINY_V0 = LayoutProfile("tiny-v0", 0, False, 4, 3)


# Values printed by `ipfs add` (Kubo and js-ipfs agree); see TESTBED.md.
@pytest.mark.parametrize(
    ("data", "profile", "expected"),
    [
        (
            b"hello world\n",
            KUBO_CLASSIC_CID_V1,
            "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
        ),
        (b"hello world\n", UNIXFS_V0_2015, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
        (b"", KUBO_CLASSIC_CID_V1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        (b"", UNIXFS_V0_2015, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
    ],
)
def test_known_cids(data: bytes, profile: LayoutProfile, expected: str) -> None:
    assert cid_to_str(file_cid(data, profile)) == expected


def test_default_profile_is_cid_v1_raw_leaves_256k_174() -> None:
    assert (DEFAULT_PROFILE.cid_version, DEFAULT_PROFILE.raw_leaves) == (1, True)
    assert (DEFAULT_PROFILE.chunk_size, DEFAULT_PROFILE.max_links) == (262_144, 174)


def test_single_chunk_is_one_raw_block() -> None:
    data = bytes(range(256)) * 1024  # exactly 256 KiB
    blocks = list(blocks_of_bytes(data))
    assert len(blocks) == 1
    assert codec_of(blocks[0].cid) == RAW
    assert blocks[0].data == data
    assert cid_to_str(blocks[0].cid).startswith("bafkrei")


def _tree(blocks: list[Block]) -> dict[Cid, bytes]:
    return {block.cid: block.data for block in blocks}


def _depth_and_leaves(store: dict[Cid, bytes], cid: Cid) -> tuple[int, list[bytes], int]:
    """(depth, leaf payloads in order, tsize) of a subtree, checking its UnixFS sizes."""
    data = store[cid]
    if codec_of(cid) == RAW:
        return 0, [data], len(data)
    node = decode_node(data)
    assert node.data is not None
    unixfs = decode_unixfs(node.data)
    assert unixfs.type == DataType.FILE
    if not node.links:
        return 0, [unixfs.data or b""], len(data)
    depths, leaves, tsize = set(), [], len(data)
    for link, size in zip(node.links, unixfs.blocksizes, strict=True):
        depth, child_leaves, child_tsize = _depth_and_leaves(store, link.cid)
        assert link.name == ""
        assert link.tsize == child_tsize
        assert sum(map(len, child_leaves)) == size
        depths.add(depth)
        leaves += child_leaves
        tsize += child_tsize
    assert len(depths) == 1, "a balanced DAG has every leaf at one depth"
    assert unixfs.filesize == sum(map(len, leaves))
    return depths.pop() + 1, leaves, tsize


@pytest.mark.parametrize("profile", [TINY_V1, TINY_V0])
@pytest.mark.parametrize(
    ("chunks", "depth", "root_links"),
    [(1, 0, 0), (2, 1, 2), (3, 1, 3), (4, 2, 2), (9, 2, 3), (10, 3, 2), (27, 3, 3), (28, 4, 2)],
)
def test_balanced_layout(profile: LayoutProfile, chunks: int, depth: int, root_links: int) -> None:
    data = bytes(i % 251 for i in range(4 * chunks - 1))
    blocks = list(blocks_of_bytes(data, profile))
    root = blocks[-1].cid
    store = _tree(blocks)
    got_depth, leaves, _ = _depth_and_leaves(store, root)
    assert got_depth == depth
    assert b"".join(leaves) == data
    assert len(leaves) == chunks
    if root_links:
        assert codec_of(root) == DAG_PB
        assert len(decode_node(store[root]).links) == root_links
    assert root.version == profile.cid_version


def test_full_levels_fill_left_first() -> None:
    # 4 chunks with width 3: root -> [node(3 leaves), node(1 leaf)]
    blocks = list(blocks_of_bytes(b"x" * 16, TINY_V1))
    store = _tree(blocks)
    root = decode_node(store[blocks[-1].cid])
    assert [len(decode_node(store[link.cid]).links) for link in root.links] == [3, 1]


def test_v0_leaves_are_dag_pb_file_nodes() -> None:
    blocks = list(blocks_of_bytes(b"abcdefgh", TINY_V0))
    leaves = [b for b in blocks if not decode_node(b.data).links]
    assert len(leaves) == 2
    for leaf in leaves:
        unixfs = decode_unixfs(decode_node(leaf.data).data or b"")
        assert (unixfs.type, unixfs.filesize) == (DataType.FILE, 4)
        assert leaf.cid.version == 0


def test_stream_and_bytes_agree_even_with_short_reads() -> None:
    data = bytes(range(256)) * 4

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self.inner.read(min(size, 7))

    assert stream_cid(Trickle(), TINY_V1) == file_cid(data, TINY_V1)  # type: ignore[arg-type]
    assert stream_cid(io.BytesIO(data)) == file_cid(data)


def test_chunkers() -> None:
    assert list(chunk_bytes(b"", 4)) == [b""]
    assert list(chunk_bytes(b"abcdefghi", 4)) == [b"abcd", b"efgh", b"i"]
    assert list(chunk_stream(io.BytesIO(b"abcdefgh"), 4)) == [b"abcd", b"efgh"]
    assert list(rechunk([b"ab", b"cdefg", b"", b"h"], 4)) == [b"abcd", b"efgh"]
    assert list(rechunk([], 4)) == [b""]


def test_builder_misuse() -> None:
    builder = FileDagBuilder(TINY_V1)
    with pytest.raises(RuntimeError, match="finish"):
        _ = builder.root
    with pytest.raises(ValueError, match="exceeds"):
        builder.add_chunk(b"12345")
    builder.add_chunk(b"1234")
    assert builder.finish() == []
    assert builder.root.data == b"1234"
    with pytest.raises(RuntimeError, match="already finished"):
        builder.add_chunk(b"x")
    with pytest.raises(RuntimeError, match="already finished"):
        builder.finish()
    with pytest.raises(ValueError, match="no blocks"):
        root_of([])


def test_finishing_without_chunks_gives_the_empty_file() -> None:
    builder = FileDagBuilder()
    (leaf,) = builder.finish()
    assert builder.root == leaf
    assert leaf.cid == file_cid(b"")


def test_profiles() -> None:
    assert profile_by_name("unixfs-v0-2015") is UNIXFS_V0_2015
    with pytest.raises(ValueError, match="unknown layout profile"):
        profile_by_name("nope")
    with pytest.raises(ValueError, match="CID version"):
        LayoutProfile("x", 2, True, 4, 3)
    with pytest.raises(ValueError, match="raw leaves"):
        LayoutProfile("x", 0, True, 4, 3)
    with pytest.raises(ValueError, match="chunk_size"):
        LayoutProfile("x", 1, True, 0, 3)


def test_50_mib_builds_in_bounded_memory() -> None:
    chunk_size = KUBO_CLASSIC_CID_V1.chunk_size

    def chunks() -> Iterator[bytes]:
        for i in range(200):  # 50 MiB, generated one chunk at a time
            yield hashlib.sha256(i.to_bytes(4, "big")).digest() * (chunk_size // 32)

    tracemalloc.start()
    try:
        root = root_of(iter_file_blocks(chunks()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert codec_of(root) == DAG_PB
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the builder must not hold the file"
