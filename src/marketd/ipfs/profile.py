"""How a file becomes a DAG: the parameters that decide its CID.

The same bytes get different CIDs under different chunk sizes, widths, leaf encodings or CID
versions, so every CID marketd stores is stored with the name of the profile that made it;
anyone can then rebuild the DAG and check the CID.

- ``kubo-classic-cid-v1`` (the default): what ``ipfs add --cid-version=1`` gives with Kubo's
  classic importer settings (and js-ipfs): CIDv1, raw leaves, 256 KiB fixed chunks, balanced
  layout of at most 174 links per node. (Kubo calls this set of values ``test-cid-v1``; it is
  *not* IPIP-499's ``unixfs-v1-2025``, which uses 1 MiB chunks and 1024 links.)
- ``unixfs-v0-2015``: the historical ``ipfs add`` default: CIDv0, dag-pb leaves, 256 KiB, 174.
- ``unixfs-v1-2025``: IPIP-499's current profile: CIDv1, raw leaves, 1 MiB chunks, 1024 links.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LayoutProfile:
    name: str
    cid_version: int
    raw_leaves: bool
    chunk_size: int
    max_links: int

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError(f"unsupported CID version {self.cid_version}")
        if self.cid_version == 0 and self.raw_leaves:
            raise ValueError("CIDv0 cannot address raw leaves")
        if self.chunk_size < 1 or self.max_links < 2:
            raise ValueError("chunk_size must be >= 1 and max_links >= 2")


KUBO_CLASSIC_CID_V1 = LayoutProfile("kubo-classic-cid-v1", 1, True, 262_144, 174)
UNIXFS_V0_2015 = LayoutProfile("unixfs-v0-2015", 0, False, 262_144, 174)
UNIXFS_V1_2025 = LayoutProfile("unixfs-v1-2025", 1, True, 1_048_576, 1024)

DEFAULT_PROFILE = KUBO_CLASSIC_CID_V1
PROFILES: dict[str, LayoutProfile] = {
    p.name: p for p in (KUBO_CLASSIC_CID_V1, UNIXFS_V0_2015, UNIXFS_V1_2025)
}


def profile_by_name(name: str) -> LayoutProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown layout profile {name!r}; known: {sorted(PROFILES)}") from None
