"""Reassemble a UnixFS file from its DAG, checking every block and every size on the way.

The caller supplies ``fetch(cid) -> bytes`` (a dict, a directory, a remote); each block is
hashed against its CID here, whatever the source, and the UnixFS sizes must agree with what
the children really hold, so a DAG that hashes correctly but lies about its layout is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from marketd.ipfs.cid import DAG_PB, RAW, Cid, codec_of, verify_block
from marketd.ipfs.dagpb import decode_node
from marketd.ipfs.errors import DecodeError, VerificationError
from marketd.ipfs.unixfs import DataType, decode_unixfs

MAX_DEPTH = 32  # 174**32 leaves: far beyond any file; bounds recursion on hostile DAGs

BlockFetcher = Callable[[Cid], bytes]


def read_file_dag(root: Cid, fetch: BlockFetcher, *, max_size: int | None = None) -> bytes:
    """Return the file bytes under ``root``; raise ``VerificationError`` on any inconsistency."""
    out = bytearray()
    _read(root, fetch, out, depth=0, max_size=max_size)
    return bytes(out)


def _read(cid: Cid, fetch: BlockFetcher, out: bytearray, depth: int, max_size: int | None) -> None:
    if depth > MAX_DEPTH:
        raise VerificationError("file DAG is too deep")
    block = fetch(cid)
    verify_block(cid, block)
    if codec_of(cid) == RAW:
        _append(out, block, max_size)
        return
    assert codec_of(cid) == DAG_PB  # parse_cid admits only raw and dag-pb
    try:
        node = decode_node(block)
        if node.data is None:
            raise DecodeError("dag-pb node without UnixFS data")
        unixfs = decode_unixfs(node.data)
    except DecodeError as exc:
        raise VerificationError(f"block {cid} is not a UnixFS file node: {exc}") from exc
    if unixfs.type not in (DataType.FILE, DataType.RAW):
        raise VerificationError(f"block {cid} is a UnixFS {unixfs.type.name}, not a file")
    start = len(out)
    _append(out, unixfs.data or b"", max_size)
    if node.links and len(unixfs.blocksizes) != len(node.links):
        raise VerificationError(f"block {cid}: {len(node.links)} links but blocksizes differ")
    for link, expected in zip(node.links, unixfs.blocksizes, strict=False):
        before = len(out)
        _read(link.cid, fetch, out, depth + 1, max_size)
        if len(out) - before != expected:
            raise VerificationError(f"child {link.cid} holds {len(out) - before}, not {expected}")
    if unixfs.filesize is not None and len(out) - start != unixfs.filesize:
        raise VerificationError(f"block {cid}: content is {len(out) - start}, not filesize")


def _append(out: bytearray, data: bytes, max_size: int | None) -> None:
    if max_size is not None and len(out) + len(data) > max_size:
        raise VerificationError(f"file exceeds the {max_size}-byte limit")
    out += data
