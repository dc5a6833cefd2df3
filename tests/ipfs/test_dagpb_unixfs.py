"""dag-pb and UnixFS encodings, checked against bytes IPFS produces."""

from __future__ import annotations

import pytest

from marketd.ipfs.cid import parse_cid
from marketd.ipfs.dagpb import PBLink, PBNode, decode_node, encode_link, encode_node
from marketd.ipfs.errors import DecodeError
from marketd.ipfs.protowire import bytes_field, varint_field
from marketd.ipfs.unixfs import DataType, UnixFSData, decode_unixfs, encode_unixfs

LEAF = parse_cid("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")


def test_empty_file_leaf_matches_ipfs_bytes() -> None:
    # `ipfs add` of an empty file (CIDv0) stores exactly these six bytes.
    payload = encode_unixfs(UnixFSData(DataType.FILE, filesize=0))
    assert encode_node(PBNode(data=payload)) == bytes.fromhex("0a0408021800")


def test_unixfs_round_trip() -> None:
    value = UnixFSData(DataType.FILE, data=b"abc", filesize=9, blocksizes=(3, 6))
    assert decode_unixfs(encode_unixfs(value)) == value


def test_unixfs_ignores_metadata_fields_and_rejects_bad_type() -> None:
    raw = varint_field(1, 2) + varint_field(7, 0o644)
    assert decode_unixfs(raw) == UnixFSData(DataType.FILE)
    with pytest.raises(DecodeError, match="unknown UnixFS type"):
        decode_unixfs(varint_field(1, 9))
    with pytest.raises(DecodeError, match="without Type"):
        decode_unixfs(bytes_field(2, b"x"))


def test_links_are_written_before_data() -> None:
    node = PBNode(links=(PBLink(LEAF, "", 12),), data=b"\x08\x02")
    encoded = encode_node(node)
    assert encoded[0] == 0x12  # field 2 (Links) first
    assert encoded.endswith(bytes_field(1, b"\x08\x02"))
    assert decode_node(encoded) == node


def test_empty_name_is_kept_distinct_from_absent() -> None:
    assert encode_link(PBLink(LEAF, "", 1)) != encode_link(PBLink(LEAF, None, 1))
    assert decode_node(encode_node(PBNode(links=(PBLink(LEAF, None, None),)))).links[0] == PBLink(
        LEAF, None, None
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (bytes_field(1, b"a") + bytes_field(2, b""), "link after data"),
        (bytes_field(1, b"a") + bytes_field(1, b"b"), "two data fields"),
        (varint_field(3, 1), "unknown PBNode field"),
        (bytes_field(2, varint_field(3, 1)), "without Hash"),
        (bytes_field(2, varint_field(3, 1) + varint_field(3, 1)), "out of order"),
        (bytes_field(2, bytes_field(1, b"\x01\x55")), "not a supported CID"),
        (bytes_field(2, bytes_field(1, bytes(LEAF)) + bytes_field(2, b"\xff")), "not UTF-8"),
        (bytes_field(2, bytes_field(1, bytes(LEAF)) + varint_field(4, 1)), "out of order"),
    ],
)
def test_decode_node_rejects_non_canonical(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_node(raw)
