"""Snapshot records as the API shows them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from marketd.core.schemas import Schema


class SnapshotOut(Schema):
    """One market's snapshot of one UTC day; its content is at ``GET /api/snapshots/{cid}``."""

    cid: str = Field(examples=["bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"])
    market_id: str
    snapshot_date: date
    window_start: datetime
    window_end: datetime
    previous_cid: str | None = Field(description="The market's previous snapshot (hash chain).")
    discussions_count: int
    layout_profile: str = Field(description="How the CID was built from the bytes.")
    size: int
    status: Literal["pending", "pinned", "pruned"]
    created_at: datetime
    pinned_at: datetime | None
    pruned_at: datetime | None
