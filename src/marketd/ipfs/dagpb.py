"""dag-pb (``PBNode`` / ``PBLink``) encoding and strict decoding.

Schema (https://ipld.io/specs/codecs/dag-pb/spec/)::

    message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
    message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }

The canonical encoding writes every link *before* the data field (field order 2 then 1), links
in their list order, and inside a link Hash, Name, Tsize. Both Kubo and js-ipfs write ``Name``
as an empty string for file chunks, and an empty name changes the bytes (``0x12 0x00``), so a
name of ``""`` is kept distinct from an absent one.
"""

from __future__ import annotations

from dataclasses import dataclass

from marketd.ipfs.cid import Cid, parse_cid
from marketd.ipfs.errors import DecodeError, InvalidCidError
from marketd.ipfs.protowire import bytes_field, expect_bytes, expect_int, iter_fields, varint_field


@dataclass(frozen=True, slots=True)
class PBLink:
    cid: Cid
    name: str | None = ""
    tsize: int | None = None


@dataclass(frozen=True, slots=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_link(link: PBLink) -> bytes:
    out = bytes_field(1, bytes(link.cid))
    if link.name is not None:
        out += bytes_field(2, link.name.encode("utf-8"))
    if link.tsize is not None:
        out += varint_field(3, link.tsize)
    return out


def encode_node(node: PBNode) -> bytes:
    parts = [bytes_field(2, encode_link(link)) for link in node.links]
    if node.data is not None:
        parts.append(bytes_field(1, node.data))
    return b"".join(parts)


def decode_link(buf: bytes) -> PBLink:
    cid: Cid = None
    name: str | None = None
    tsize: int | None = None
    last = 0
    for field in iter_fields(buf):
        if field.number <= last or field.number > 3:
            raise DecodeError(f"PBLink field {field.number} out of order or unknown")
        last = field.number
        if field.number == 1:
            try:
                cid = parse_cid(expect_bytes(field))
            except InvalidCidError as exc:
                raise DecodeError(f"PBLink hash is not a supported CID: {exc}") from exc
        elif field.number == 2:
            try:
                name = expect_bytes(field).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError("PBLink name is not UTF-8") from exc
        else:
            tsize = expect_int(field)
    if cid is None:
        raise DecodeError("PBLink without Hash")
    return PBLink(cid=cid, name=name, tsize=tsize)


def decode_node(buf: bytes) -> PBNode:
    """Decode a dag-pb block, rejecting anything a canonical encoder would not produce."""
    links: list[PBLink] = []
    data: bytes | None = None
    for field in iter_fields(buf):
        if field.number == 2:
            if data is not None:
                raise DecodeError("PBNode link after data")
            links.append(decode_link(expect_bytes(field)))
        elif field.number == 1:
            if data is not None:
                raise DecodeError("PBNode has two data fields")
            data = expect_bytes(field)
        else:
            raise DecodeError(f"unknown PBNode field {field.number}")
    return PBNode(links=tuple(links), data=data)
