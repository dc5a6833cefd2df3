"""Varints and the protobuf wire pieces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketd.ipfs.errors import DecodeError
from marketd.ipfs.protowire import (
    Field,
    bytes_field,
    expect_bytes,
    expect_int,
    iter_fields,
    varint_field,
)
from marketd.ipfs.varint import decode_varint, encode_varint


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(b"\xaa" + encoded, 1) == (value, 1 + len(encoded))


@pytest.mark.parametrize(("value", "encoded"), [(0, b"\x00"), (127, b"\x7f"), (300, b"\xac\x02")])
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded


@pytest.mark.parametrize("value", [-1, 2**64])
def test_varint_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_varint(value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x80", "truncated"),
        (b"\x80\x00", "non-minimal"),
        (b"\xff" * 9 + b"\x7f", "wider than 64"),
        (b"\xff" * 11, "longer than 10"),
    ],
)
def test_varint_rejects(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_varint(raw)


def test_fields_round_trip() -> None:
    raw = varint_field(1, 2) + bytes_field(2, b"abc") + varint_field(4, 7)
    assert list(iter_fields(raw)) == [Field(1, 2), Field(2, b"abc"), Field(4, 7)]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x01", "field number 0"),
        (b"\x12\x05ab", "truncated length-delimited"),
        (b"\x09" + b"\x00" * 8, "wire type 1"),
    ],
)
def test_fields_reject(raw: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        list(iter_fields(raw))


def test_expect_types() -> None:
    assert expect_int(Field(1, 5)) == 5
    assert expect_bytes(Field(2, b"x")) == b"x"
    with pytest.raises(DecodeError, match="must be a varint"):
        expect_int(Field(1, b"x"))
    with pytest.raises(DecodeError, match="length-delimited"):
        expect_bytes(Field(2, 5))
