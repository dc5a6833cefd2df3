"""A block: bytes and the CID that addresses them."""

from __future__ import annotations

from dataclasses import dataclass

from marketd.ipfs.cid import Cid


@dataclass(frozen=True, slots=True)
class Block:
    cid: Cid
    data: bytes
