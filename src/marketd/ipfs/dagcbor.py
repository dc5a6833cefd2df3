"""The DAG-CBOR subset a CARv1 header needs, by hand.

A header is ``{"roots": [CID, ...], "version": 1}``; CIDs are CBOR tag 42 around a byte string of
``0x00`` + the binary CID. The decoder reads any strict DAG-CBOR value (so an unusual header is
reported precisely) but refuses floats, indefinite lengths and tags other than 42, which a CAR
header never contains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marketd.ipfs.cid import Cid, parse_cid
from marketd.ipfs.errors import DecodeError, InvalidCidError

CID_TAG = 42
_SIMPLE = {20: False, 21: True, 22: None}


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | info]) + value.to_bytes(width, "big")
    raise ValueError("CBOR integer too large")


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(3, len(raw)) + raw


def encode_car_header(roots: Sequence[Cid], version: int = 1) -> bytes:
    """Encode the header map with keys in DAG-CBOR order (shorter key first)."""
    out = _head(5, 2) + _text("roots") + _head(4, len(roots))
    for root in roots:
        link = b"\x00" + bytes(root)
        out += _head(6, CID_TAG) + _head(2, len(link)) + link
    return out + _text("version") + _head(0, version)


def decode_dag_cbor(buf: bytes) -> Any:
    """Decode one complete DAG-CBOR value; trailing bytes are an error."""
    value, end = _decode(buf, 0, depth=0)
    if end != len(buf):
        raise DecodeError("trailing bytes after CBOR value")
    return value


def _argument(buf: bytes, offset: int) -> tuple[int, int, int]:
    if offset >= len(buf):
        raise DecodeError("truncated CBOR")
    initial = buf[offset]
    major, info = initial >> 5, initial & 0x1F
    offset += 1
    if info < 24:
        return major, info, offset
    widths = {24: 1, 25: 2, 26: 4, 27: 8}
    if info not in widths:
        raise DecodeError("indefinite-length or reserved CBOR item")
    width = widths[info]
    if offset + width > len(buf):
        raise DecodeError("truncated CBOR")
    value = int.from_bytes(buf[offset : offset + width], "big")
    if value < (24 if width == 1 else 1 << (8 * width // 2)):
        raise DecodeError("non-minimal CBOR integer")
    return major, value, offset + width


def _decode(buf: bytes, offset: int, depth: int) -> tuple[Any, int]:
    if depth > 32:
        raise DecodeError("CBOR nested too deeply")
    initial = buf[offset] if offset < len(buf) else None
    if initial is not None and initial >> 5 == 7:
        if initial & 0x1F in _SIMPLE:
            return _SIMPLE[initial & 0x1F], offset + 1
        raise DecodeError("unsupported CBOR simple value or float")
    major, arg, offset = _argument(buf, offset)
    if major == 0:
        return arg, offset
    if major == 1:
        return -1 - arg, offset
    if major in (2, 3):
        end = offset + arg
        if end > len(buf):
            raise DecodeError("truncated CBOR string")
        raw = buf[offset:end]
        if major == 2:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise DecodeError("CBOR text is not UTF-8") from exc
    if major == 4:
        items = []
        for _ in range(arg):
            item, offset = _decode(buf, offset, depth + 1)
            items.append(item)
        return items, offset
    if major == 5:
        mapping: dict[str, Any] = {}
        for _ in range(arg):
            key, offset = _decode(buf, offset, depth + 1)
            if not isinstance(key, str) or key in mapping:
                raise DecodeError("CBOR map keys must be unique strings")
            mapping[key], offset = _decode(buf, offset, depth + 1)
        return mapping, offset
    # major 6: a tag
    if arg != CID_TAG:
        raise DecodeError(f"unsupported CBOR tag {arg}")
    link, offset = _decode(buf, offset, depth + 1)
    if not isinstance(link, bytes) or not link.startswith(b"\x00"):
        raise DecodeError("CBOR tag 42 must wrap 0x00 + binary CID")
    try:
        return parse_cid(link[1:]), offset
    except InvalidCidError as exc:
        raise DecodeError(f"bad CID in CBOR: {exc}") from exc
