"""CID parsing, canonical strings and block hashing."""

from __future__ import annotations

import hashlib

import pytest
from multiformats import CID, multihash

from marketd.ipfs.cid import (
    DAG_PB,
    RAW,
    cid_for_block,
    cid_to_str,
    codec_of,
    parse_cid,
    read_binary_cid,
    verify_block,
)
from marketd.ipfs.errors import DecodeError, InvalidCidError, VerificationError

HELLO = b"hello world\n"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


def test_raw_block_cid_is_the_known_value() -> None:
    assert cid_to_str(cid_for_block(HELLO, RAW, 1)) == HELLO_V1


def test_parse_normalises_the_text_base() -> None:
    base58 = parse_cid(HELLO_V1).encode("base58btc")
    assert base58.startswith("z")
    parsed = parse_cid(base58)
    assert str(parsed) == HELLO_V1
    assert parse_cid(bytes(parsed)) == parsed
    assert parse_cid(parsed) is not None
    assert str(parse_cid(HELLO_V0)) == HELLO_V0
    assert parse_cid(HELLO_V0).version == 0


def test_v0_and_v1_of_one_hash_differ() -> None:
    v0 = parse_cid(HELLO_V0)
    assert cid_to_str(v0.set(version=1)).startswith("bafybei")
    assert parse_cid(v0.set(version=1)) != v0


@pytest.mark.parametrize("bad", ["", "bafyNOTACID", "Qm123", 42, b"\x01\x55\x12\x20abc"])
def test_parse_rejects_garbage(bad: object) -> None:
    with pytest.raises(InvalidCidError):
        parse_cid(bad)


def test_parse_rejects_other_hashes_and_codecs() -> None:
    sha512 = multihash.wrap(hashlib.sha512(b"x").digest(), "sha2-512")
    with pytest.raises(InvalidCidError, match="multihash"):
        parse_cid(CID("base32", 1, "raw", sha512))
    sha256 = multihash.wrap(hashlib.sha256(b"x").digest(), "sha2-256")
    with pytest.raises(InvalidCidError, match="codec"):
        parse_cid(CID("base32", 1, "dag-cbor", sha256))


def test_v0_only_addresses_dag_pb() -> None:
    with pytest.raises(InvalidCidError, match="CIDv0"):
        cid_for_block(b"x", RAW, 0)
    assert codec_of(cid_for_block(b"x", DAG_PB, 0)) == DAG_PB


def test_verify_block() -> None:
    cid = parse_cid(HELLO_V1)
    verify_block(cid, HELLO)
    with pytest.raises(VerificationError):
        verify_block(cid, HELLO + b"!")


def test_read_binary_cid_v0_and_v1() -> None:
    v1, v0 = parse_cid(HELLO_V1), parse_cid(HELLO_V0)
    buf = b"#" + bytes(v1) + bytes(v0) + b"tail"
    first, offset = read_binary_cid(buf, 1)
    second, end = read_binary_cid(buf, offset)
    assert (first, second, buf[end:]) == (v1, v0, b"tail")


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"\x02\x55\x12\x20" + b"\x00" * 32, "version 2"), (b"\x01\x55\x12\x20abc", "truncated")],
)
def test_read_binary_cid_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        read_binary_cid(raw)


@pytest.mark.parametrize(
    ("codec", "version"), [(RAW, 1), (DAG_PB, 1), (DAG_PB, 0)], ids=["raw-v1", "pb-v1", "pb-v0"]
)
@pytest.mark.parametrize("size", [0, 1, 13_000])
def test_fast_paths_agree_with_multiformats(codec: int, version: int, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    cid = cid_for_block(data, codec, version)
    digest = multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")
    generic = CID("base58btc" if version == 0 else "base32", version, codec, digest)
    assert cid == generic and cid.base == generic.base
    assert cid_to_str(cid) == str(generic) == generic.encode()
    if version == 1:
        assert cid_to_str(generic.encode("base58btc")) == str(generic)
    assert cid_to_str(bytes(generic)) == str(generic)
    verify_block(cid, data)


def test_cid_to_str_refuses_unsupported_cid_objects() -> None:
    sha512 = multihash.wrap(hashlib.sha512(b"x").digest(), "sha2-512")
    with pytest.raises(InvalidCidError, match="multihash"):
        cid_to_str(CID("base32", 1, "raw", sha512))


def test_verify_block_fails_a_cid_of_another_hash_function() -> None:
    sha512 = multihash.wrap(hashlib.sha512(HELLO).digest(), "sha2-512")
    with pytest.raises(VerificationError):
        verify_block(CID("base32", 1, "raw", sha512), HELLO)
