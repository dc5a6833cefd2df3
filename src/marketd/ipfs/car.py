"""CARv1: write a file DAG as a CAR, and read / verify one against an expected root.

Layout: ``varint(len(header)) header`` then sections ``varint(len(cid)+len(data)) cid data``;
the header is DAG-CBOR ``{"roots": [root, ...], "version": 1}``
(https://ipld.io/specs/transport/car/carv1/). A CAR may have several roots: a batch of files
goes to a Kubo RPC node as one CAR (``car_of_roots``).

Verification is all-or-nothing: every block must hash to its CID, the DAG walked from the root
must find every block it links to (none missing) and use every block the CAR holds (none
extra), and the UnixFS sizes must add up. Only then are the file bytes returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from multiformats import CID

from marketd.ipfs.block import Block
from marketd.ipfs.builder import blocks_of_bytes
from marketd.ipfs.cid import DAG_PB, Cid, codec_of, read_binary_cid, verify_block
from marketd.ipfs.dagcbor import decode_dag_cbor, encode_car_header
from marketd.ipfs.dagpb import decode_node
from marketd.ipfs.errors import DecodeError, InvalidCidError, VerificationError
from marketd.ipfs.profile import DEFAULT_PROFILE, LayoutProfile
from marketd.ipfs.reader import read_file_dag
from marketd.ipfs.varint import decode_varint, encode_varint

MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CarContents:
    roots: tuple[Cid, ...]
    blocks: dict[Cid, bytes]


def write_car(out: BinaryIO, roots: list[Cid], blocks: Iterable[Block]) -> int:
    """Stream a CAR to ``out``; return the number of bytes written."""
    header = encode_car_header(roots)
    written = out.write(encode_varint(len(header)) + header)
    for block in blocks:
        cid = bytes(block.cid)
        written += out.write(encode_varint(len(cid) + len(block.data)) + cid)
        written += out.write(block.data)
    return written


def car_of_blocks(root: Cid, blocks: Iterable[Block]) -> bytes:
    """A one-root CAR with the blocks in depth-first order from the root (as ``dag export``
    and trustless gateways write them); every block must be reachable from the root."""
    return car_of_roots([root], blocks)


def car_of_roots(roots: Sequence[Cid], blocks: Iterable[Block]) -> bytes:
    """A CAR of several DAGs: the header lists ``roots`` (duplicates dropped, order kept), and
    each block appears once, depth-first from the first root that reaches it. Every block must
    be reachable from a root."""
    by_cid = {block.cid: block for block in blocks}
    unique_roots = list(dict.fromkeys(roots))
    ordered: list[Block] = []
    seen: set[Cid] = set()
    for root in unique_roots:
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            block = by_cid[cid]
            ordered.append(block)
            if codec_of(cid) == DAG_PB:
                stack.extend(reversed([link.cid for link in decode_node(block.data).links]))
    if len(ordered) != len(by_cid):
        raise ValueError("blocks not reachable from the roots")
    return _car_bytes(unique_roots, ordered)


def car_of_bytes(data: bytes, profile: LayoutProfile = DEFAULT_PROFILE) -> tuple[Cid, bytes]:
    """Build the file DAG of ``data`` and return ``(root, CAR bytes)``."""
    blocks = list(blocks_of_bytes(data, profile))
    root = blocks[-1].cid
    return root, car_of_blocks(root, blocks)


def _car_bytes(roots: Sequence[Cid], blocks: list[Block]) -> bytes:
    header = encode_car_header(roots)
    parts = [encode_varint(len(header)), header]
    for block in blocks:
        cid = bytes(block.cid)
        parts += [encode_varint(len(cid) + len(block.data)), cid, block.data]
    return b"".join(parts)


def read_car(car: bytes) -> CarContents:
    """Parse a CARv1 and check each block against its CID (duplicates must be identical)."""
    view = memoryview(car)
    header_length, offset = decode_varint(view, 0)
    if header_length == 0 or header_length > MAX_HEADER_BYTES:
        raise DecodeError(f"implausible CAR header length {header_length}")
    header_end = offset + header_length
    if header_end > len(view):
        raise DecodeError("truncated CAR header")
    header = decode_dag_cbor(bytes(view[offset:header_end]))
    roots = _check_header(header)
    blocks: dict[Cid, bytes] = {}
    offset = header_end
    while offset < len(view):
        section_length, offset = decode_varint(view, offset)
        section_end = offset + section_length
        if section_end > len(view):
            raise DecodeError("truncated CAR section")
        try:
            cid, data_start = read_binary_cid(view[:section_end], offset)
        except InvalidCidError as exc:
            raise DecodeError(f"bad CID in CAR section: {exc}") from exc
        data = bytes(view[data_start:section_end])
        verify_block(cid, data)
        blocks[cid] = data
        offset = section_end
    return CarContents(roots=roots, blocks=blocks)


def _check_header(header: object) -> tuple[Cid, ...]:
    if not isinstance(header, dict) or set(header) != {"roots", "version"}:
        raise DecodeError("CAR header must be exactly {roots, version}")
    if header["version"] != 1:
        raise DecodeError(f"unsupported CAR version {header['version']!r}")
    roots = header["roots"]
    if not isinstance(roots, list) or not roots or not all(isinstance(r, CID) for r in roots):
        raise DecodeError("CAR header roots must be a non-empty list of CIDs")
    return tuple(roots)


def verify_car(car: bytes, root: Cid, *, max_size: int | None = None) -> bytes:
    """Verify a CAR holding exactly the file DAG of ``root``; return the file bytes."""
    contents = read_car(car)
    if contents.roots != (root,):
        raise VerificationError(f"CAR roots {contents.roots} are not [{root}]")
    used: set[Cid] = set()

    def fetch(cid: Cid) -> bytes:
        try:
            data = contents.blocks[cid]
        except KeyError:
            raise VerificationError(f"CAR is missing block {cid}") from None
        used.add(cid)
        return data

    content = read_file_dag(root, fetch, max_size=max_size)
    extra = set(contents.blocks) - used
    if extra:
        raise VerificationError(f"CAR holds {len(extra)} block(s) outside the DAG of {root}")
    return content


def verify_raw_block(data: bytes, cid: Cid) -> bytes:
    """Verify a single block served for ``cid`` (``?format=raw``); return the file bytes."""
    return read_file_dag(cid, lambda _cid: data)
