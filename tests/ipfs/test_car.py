"""CARv1 writing, reading and whole-DAG verification; the DAG-CBOR header codec."""

from __future__ import annotations

import io

import pytest

from marketd.ipfs.block import Block
from marketd.ipfs.builder import blocks_of_bytes, file_cid
from marketd.ipfs.car import (
    car_of_blocks,
    car_of_bytes,
    car_of_roots,
    read_car,
    verify_car,
    verify_raw_block,
    write_car,
)
from marketd.ipfs.cid import DAG_PB, RAW, Cid, cid_for_block, codec_of, parse_cid
from marketd.ipfs.dagcbor import decode_dag_cbor, encode_car_header
from marketd.ipfs.dagpb import PBLink, PBNode, decode_node, encode_node
from marketd.ipfs.errors import DecodeError, VerificationError
from marketd.ipfs.profile import UNIXFS_V0_2015, LayoutProfile
from marketd.ipfs.reader import read_file_dag
from marketd.ipfs.unixfs import DataType, UnixFSData, encode_unixfs
from marketd.ipfs.varint import encode_varint

TINY = LayoutProfile("tiny", 1, True, 4, 3)
DATA = bytes(range(40))  # 10 chunks: root -> 2 parents -> 4 parents -> leaves


def _section(cid: Cid, data: bytes) -> bytes:
    return encode_varint(len(bytes(cid)) + len(data)) + bytes(cid) + data


def _car(roots: list[Cid], blocks: list[tuple[Cid, bytes]]) -> bytes:
    header = encode_car_header(roots)
    return encode_varint(len(header)) + header + b"".join(_section(c, d) for c, d in blocks)


def _blocks(data: bytes = DATA, profile: LayoutProfile = TINY) -> list[Block]:
    return list(blocks_of_bytes(data, profile))


def _node(links: list[tuple[Cid, int]], unixfs: UnixFSData) -> Block:
    data = encode_node(
        PBNode(links=tuple(PBLink(c, "", t) for c, t in links), data=encode_unixfs(unixfs))
    )
    return Block(cid_for_block(data, DAG_PB, 1), data)


@pytest.mark.parametrize("profile", [TINY, UNIXFS_V0_2015, LayoutProfile("t0", 0, False, 4, 3)])
@pytest.mark.parametrize("data", [b"", b"hello world\n", DATA, DATA * 20])
def test_round_trip(profile: LayoutProfile, data: bytes) -> None:
    root, car = car_of_bytes(data, profile)
    assert root == file_cid(data, profile)
    assert verify_car(car, root) == data
    assert read_car(car).roots == (root,)


def test_blocks_are_written_depth_first_from_the_root() -> None:
    root, car = car_of_bytes(DATA, TINY)
    order = list(read_car(car).blocks)
    assert order[0] == root
    assert order[-1] == cid_for_block(DATA[36:], RAW, 1)  # the right-most leaf
    position = {cid: index for index, cid in enumerate(order)}
    for block in _blocks():
        if codec_of(block.cid) == DAG_PB:
            links = decode_node(block.data).links
            assert all(position[link.cid] > position[block.cid] for link in links)
            children = [position[link.cid] for link in links]
            assert children == sorted(children)


def test_streaming_writer_matches_count() -> None:
    blocks = _blocks()
    out = io.BytesIO()
    written = write_car(out, [blocks[-1].cid], blocks)
    assert written == len(out.getvalue())
    assert verify_car(out.getvalue(), blocks[-1].cid) == DATA  # any block order verifies


def test_tampered_block_is_rejected() -> None:
    root, car = car_of_bytes(DATA, TINY)
    tampered = car[:-1] + bytes([car[-1] ^ 1])
    with pytest.raises(VerificationError, match="do not hash"):
        verify_car(tampered, root)


def test_extra_block_is_rejected() -> None:
    blocks = _blocks()
    stranger = cid_for_block(b"stranger", RAW, 1)
    car = _car([blocks[-1].cid], [(b.cid, b.data) for b in blocks] + [(stranger, b"stranger")])
    with pytest.raises(VerificationError, match="outside the DAG"):
        verify_car(car, blocks[-1].cid)


def test_missing_block_is_rejected() -> None:
    blocks = _blocks()
    car = _car([blocks[-1].cid], [(b.cid, b.data) for b in blocks[1:]])
    with pytest.raises(VerificationError, match="missing block"):
        verify_car(car, blocks[-1].cid)


def test_wrong_root_is_rejected() -> None:
    _root, car = car_of_bytes(DATA, TINY)
    other = file_cid(b"other", TINY)
    with pytest.raises(VerificationError, match="roots"):
        verify_car(car, other)


def test_duplicate_blocks_are_accepted() -> None:
    blocks = _blocks()
    sections = [(b.cid, b.data) for b in blocks]
    car = _car([blocks[-1].cid], sections + sections[:2])
    assert verify_car(car, blocks[-1].cid) == DATA


LEAF = Block(cid_for_block(b"abcd", RAW, 1), b"abcd")


@pytest.mark.parametrize(
    ("links", "unixfs", "message"),
    [
        ([(LEAF.cid, 4)], UnixFSData(DataType.FILE, filesize=4, blocksizes=(5,)), "not 5"),
        ([(LEAF.cid, 4)], UnixFSData(DataType.FILE, filesize=9, blocksizes=(4,)), "not filesize"),
        ([(LEAF.cid, 4)], UnixFSData(DataType.FILE, filesize=4), "blocksizes differ"),
        ([], UnixFSData(DataType.DIRECTORY), "DIRECTORY"),
    ],
    ids=["blocksize", "filesize", "no-sizes", "directory"],
)
def test_sizes_that_lie_are_rejected(
    links: list[tuple[Cid, int]], unixfs: UnixFSData, message: str
) -> None:
    node = _node(links, unixfs)
    car = _car([node.cid], [(node.cid, node.data), (LEAF.cid, LEAF.data)])
    with pytest.raises(VerificationError, match=message):
        verify_car(car, node.cid)


def test_data_in_an_inner_node_comes_first() -> None:
    leaf = Block(cid_for_block(b"tail", RAW, 1), b"tail")
    node = _node([(leaf.cid, 4)], UnixFSData(DataType.FILE, data=b"head", blocksizes=(4,)))
    car = _car([node.cid], [(node.cid, node.data), (leaf.cid, leaf.data)])
    assert verify_car(car, node.cid) == b"headtail"


def test_a_needlessly_deep_dag_is_refused() -> None:
    leaf = Block(cid_for_block(b"x", RAW, 1), b"x")
    chain = [leaf]
    for _ in range(40):
        below = chain[-1]
        chain.append(
            _node([(below.cid, 1)], UnixFSData(DataType.FILE, filesize=1, blocksizes=(1,)))
        )
    car = _car([chain[-1].cid], [(b.cid, b.data) for b in chain])
    with pytest.raises(VerificationError, match="too deep"):
        verify_car(car, chain[-1].cid)
    shallow = chain[20]
    assert (
        verify_car(_car([shallow.cid], [(b.cid, b.data) for b in chain[:21]]), shallow.cid) == b"x"
    )


@pytest.mark.parametrize(
    "data", [encode_node(PBNode()), encode_node(PBNode(data=b"\xff"))], ids=["empty", "not-unixfs"]
)
def test_non_unixfs_dag_pb_is_rejected(data: bytes) -> None:
    cid = cid_for_block(data, DAG_PB, 1)
    with pytest.raises(VerificationError, match="not a UnixFS file node"):
        verify_car(_car([cid], [(cid, data)]), cid)


def test_size_limit() -> None:
    root, car = car_of_bytes(DATA, TINY)
    assert verify_car(car, root, max_size=len(DATA)) == DATA
    with pytest.raises(VerificationError, match="limit"):
        verify_car(car, root, max_size=len(DATA) - 1)


def test_raw_block_verification() -> None:
    cid = file_cid(b"hello world\n")
    assert verify_raw_block(b"hello world\n", cid) == b"hello world\n"
    with pytest.raises(VerificationError):
        verify_raw_block(b"hello world!", cid)


def test_car_of_blocks_rejects_unreachable_blocks() -> None:
    blocks = _blocks()
    with pytest.raises(ValueError, match="not reachable"):
        car_of_blocks(blocks[-1].cid, [*blocks, Block(cid_for_block(b"x", RAW, 1), b"x")])


def test_header_matches_go_car_bytes() -> None:
    # As written by `ipfs dag export` for QmT78z... (hello world, CIDv0).
    root = parse_cid("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    header = encode_car_header([root])
    assert header.hex().startswith("a265726f6f747381d82a582300" + "1220")
    assert header.endswith(b"gversion\x01")
    assert decode_dag_cbor(header) == {"roots": [root], "version": 1}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"\xa1\x67version\x01", "exactly"),
        (b"\xa2\x65roots\x80\x67version\x01", "non-empty list"),
        (b"\xa2\x65roots\x81\x01\x67version\x01", "non-empty list"),
        (b"\xa2\x65roots\x81\x01\x67version\x02", "version 2"),
        (b"\x82\x01\x02", "exactly"),
    ],
)
def test_bad_headers(header: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        read_car(encode_varint(len(header)) + header)


def test_truncation_and_framing_errors() -> None:
    _root, car = car_of_bytes(DATA, TINY)
    with pytest.raises(DecodeError, match="truncated CAR section"):
        read_car(car[:-1])
    with pytest.raises(DecodeError, match="implausible"):
        read_car(b"\x00")
    with pytest.raises(DecodeError, match="truncated CAR header"):
        read_car(car[:10])
    header_end = car.index(b"version") + 8
    bad_cid = encode_varint(5) + b"\x01\x55\x13\x01\x00"
    with pytest.raises(DecodeError, match="bad CID"):
        read_car(car[:header_end] + bad_cid)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"\x00", 0),
        (b"\x18\x18", 24),
        (b"\x19\x01\x00", 256),
        (b"\x1a\x00\x01\x00\x00", 65536),
        (b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00", 2**32),
        (b"\x20", -1),
        (b"\x43abc", b"abc"),
        (b"\x63abc", "abc"),
        (b"\x82\xf4\xf5", [False, True]),
        (b"\xf6", None),
    ],
)
def test_cbor_values(raw: bytes, value: object) -> None:
    assert decode_dag_cbor(raw) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "truncated"),
        (b"\x18", "truncated"),
        (b"\x18\x01", "non-minimal"),
        (b"\x19\x00\x01", "non-minimal"),
        (b"\x1f", "indefinite"),
        (b"\x43ab", "truncated CBOR string"),
        (b"\x62\xff\xfe", "not UTF-8"),
        (b"\xa1\x01\x01", "unique strings"),
        (b"\xa2\x61a\x01\x61a\x02", "unique strings"),
        (b"\xc1\x01", "tag 1"),
        (b"\xd8\x2a\x41\x01", "0x00"),
        (b"\xd8\x2a\x43\x00\x01\x02", "bad CID"),
        (b"\xfb" + b"\x00" * 8, "float"),
        (b"\x01\x02", "trailing"),
        (b"\x81" * 40 + b"\x01", "deeply"),
    ],
)
def test_cbor_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_dag_cbor(raw)


def test_cbor_head_range() -> None:
    assert decode_dag_cbor(encode_car_header([], version=2**40))["version"] == 2**40
    with pytest.raises(ValueError, match="too large"):
        encode_car_header([], version=2**64)


def test_a_car_of_several_files() -> None:
    files = [DATA, DATA[:9], b"another file", DATA]  # the last repeats the first
    dags = [_blocks(data) for data in files]
    roots = [dag[-1].cid for dag in dags]
    car = car_of_roots(roots, [block for dag in dags for block in dag])
    contents = read_car(car)
    assert contents.roots == tuple(dict.fromkeys(roots))  # each root once, in order
    assert len(contents.roots) == 3
    # Shared blocks (DATA[:9] shares two leaves with DATA) are written once.
    unique = {block.cid: block.data for dag in dags for block in dag}
    assert contents.blocks == unique
    assert len(car) == len(_car(list(contents.roots), list(unique.items())))
    for root, data in zip(roots, files, strict=True):
        assert read_file_dag(root, contents.blocks.__getitem__) == data


def test_car_of_roots_rejects_blocks_no_root_reaches() -> None:
    blocks = _blocks()
    stray = Block(cid_for_block(b"x", RAW, 1), b"x")
    with pytest.raises(ValueError, match="not reachable from the roots"):
        car_of_roots([blocks[-1].cid], [*blocks, stray])
    assert read_car(car_of_roots([blocks[-1].cid, stray.cid], [*blocks, stray])).roots == (
        blocks[-1].cid,
        stray.cid,
    )
