"""Fixed-size chunking, as Kubo's ``size-N`` chunker does it.

Every chunk is exactly ``chunk_size`` bytes except the last; empty input yields one empty chunk
(IPFS encodes an empty file as one empty leaf). Reads are bounded by the chunk size, so a large
stream is never held whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO


def chunk_bytes(data: bytes | memoryview, chunk_size: int) -> Iterator[bytes]:
    """Split an in-memory buffer."""
    view = memoryview(data)
    if len(view) == 0:
        yield b""
        return
    for start in range(0, len(view), chunk_size):
        yield bytes(view[start : start + chunk_size])


def chunk_stream(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    """Split a binary file object, tolerating short reads (pipes, sockets)."""
    return rechunk(iter(lambda: stream.read(chunk_size), b""), chunk_size)


def rechunk(pieces: Iterable[bytes], chunk_size: int) -> Iterator[bytes]:
    """Regroup arbitrarily sized pieces into fixed-size chunks."""
    buffer = bytearray()
    produced = False
    for piece in pieces:
        buffer += piece
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
            produced = True
    if buffer or not produced:
        yield bytes(buffer)
