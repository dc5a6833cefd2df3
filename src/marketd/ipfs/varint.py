"""Unsigned LEB128 varints, as used by protobuf, multiformats and CAR framing."""

from __future__ import annotations

from marketd.ipfs.errors import DecodeError

MAX_VARINT_BYTES = 10  # enough for any uint64


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer below 2**64."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(buf: bytes | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode the varint at ``offset``; return ``(value, offset just past it)``.

    Rejects truncated input, values wider than 64 bits and non-minimal encodings (a trailing
    zero byte), because two encodings of one value would give one block two hashes.
    """
    value = 0
    shift = 0
    for index in range(MAX_VARINT_BYTES):
        position = offset + index
        if position >= len(buf):
            raise DecodeError("truncated varint")
        byte = buf[position]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise DecodeError("non-minimal varint")
            if value >= 1 << 64:
                raise DecodeError("varint wider than 64 bits")
            return value, position + 1
        shift += 7
    raise DecodeError("varint longer than 10 bytes")
