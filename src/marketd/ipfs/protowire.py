"""The few protobuf wire-format pieces dag-pb and UnixFS need (no protobuf library).

Only wire types 0 (varint) and 2 (length-delimited) occur in those schemas; anything else is
rejected as malformed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from marketd.ipfs.errors import DecodeError
from marketd.ipfs.varint import decode_varint, encode_varint

WIRE_VARINT = 0
WIRE_BYTES = 2


def varint_field(number: int, value: int) -> bytes:
    """Encode field ``number`` as a varint."""
    return encode_varint(number << 3 | WIRE_VARINT) + encode_varint(value)


def bytes_field(number: int, value: bytes) -> bytes:
    """Encode field ``number`` as length-delimited bytes."""
    return encode_varint(number << 3 | WIRE_BYTES) + encode_varint(len(value)) + value


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded field: an ``int`` for varints, ``bytes`` for length-delimited values."""

    number: int
    value: int | bytes


def iter_fields(buf: bytes) -> Iterator[Field]:
    """Yield the fields of a message in wire order."""
    offset = 0
    while offset < len(buf):
        key, offset = decode_varint(buf, offset)
        number, wire_type = key >> 3, key & 0x7
        if number == 0:
            raise DecodeError("protobuf field number 0")
        if wire_type == WIRE_VARINT:
            value, offset = decode_varint(buf, offset)
            yield Field(number, value)
        elif wire_type == WIRE_BYTES:
            length, offset = decode_varint(buf, offset)
            end = offset + length
            if end > len(buf):
                raise DecodeError("truncated length-delimited field")
            yield Field(number, bytes(buf[offset:end]))
            offset = end
        else:
            raise DecodeError(f"unsupported protobuf wire type {wire_type}")


def expect_int(field: Field) -> int:
    if not isinstance(field.value, int):
        raise DecodeError(f"field {field.number} must be a varint")
    return field.value


def expect_bytes(field: Field) -> bytes:
    if not isinstance(field.value, bytes):
        raise DecodeError(f"field {field.number} must be length-delimited")
    return field.value
