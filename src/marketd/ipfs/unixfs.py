"""UnixFS ``Data`` message (the payload of a dag-pb node's Data field), file subset.

Schema (https://specs.ipfs.tech/unixfs/)::

    message Data {
      required DataType Type = 1;     // Raw 0, Directory 1, File 2, Metadata 3, Symlink 4, HAMT 5
      optional bytes Data = 2;
      optional uint64 filesize = 3;
      repeated uint64 blocksizes = 4;  // not packed: one field per child
      optional uint64 hashType = 5; optional uint64 fanout = 6;
      optional uint32 mode = 7; optional UnixTime mtime = 8;
    }

marketd builds and reads files only; other types decode (so the error can name them) but the
DAG reader refuses them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from marketd.ipfs.errors import DecodeError
from marketd.ipfs.protowire import bytes_field, expect_bytes, expect_int, iter_fields, varint_field


class DataType(enum.IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True, slots=True)
class UnixFSData:
    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()


def encode_unixfs(value: UnixFSData) -> bytes:
    out = varint_field(1, int(value.type))
    if value.data is not None:
        out += bytes_field(2, value.data)
    if value.filesize is not None:
        out += varint_field(3, value.filesize)
    for size in value.blocksizes:
        out += varint_field(4, size)
    return out


def decode_unixfs(buf: bytes) -> UnixFSData:
    """Decode the fields a file needs; mode/mtime/fanout/hashType are accepted and ignored."""
    kind: DataType | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    for field in iter_fields(buf):
        if field.number == 1:
            try:
                kind = DataType(expect_int(field))
            except ValueError as exc:
                raise DecodeError(f"unknown UnixFS type {field.value!r}") from exc
        elif field.number == 2:
            data = expect_bytes(field)
        elif field.number == 3:
            filesize = expect_int(field)
        elif field.number == 4:
            blocksizes.append(expect_int(field))
    if kind is None:
        raise DecodeError("UnixFS Data without Type")
    return UnixFSData(type=kind, data=data, filesize=filesize, blocksizes=tuple(blocksizes))
