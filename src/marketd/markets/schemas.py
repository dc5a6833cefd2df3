from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from marketd.core.schemas import Price, Schema
from marketd.markets.rules import (
    DEFAULT_CATEGORY,
    MAX_DESCRIPTION,
    QUESTION_LENGTH,
    Category,
    MarketState,
)


class MarketSort(enum.StrEnum):
    NEWEST = "newest"
    VOLUME = "volume"
    CLOSING_SOON = "closing_soon"


class MarketOut(Schema):
    id: str
    on_chain_address: str
    question: str
    description: str | None
    category: str | None
    tags: list[str]
    creator_wallet: str
    resolver_wallet: str | None
    state: MarketState
    b_parameter: int
    initial_liquidity: int
    current_liquidity: int
    shares_yes: int
    shares_no: int
    current_price_yes: Price = Field(description="Decimal string, 9 places")
    current_price_no: Price = Field(description="Decimal string, 9 places")
    total_volume: int
    proposed_outcome: bool | None
    final_outcome: bool | None
    ipfs_evidence_hash: str | None
    proposal_likes: int
    proposal_dislikes: int
    dispute_agree: int
    dispute_disagree: int
    created_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    resolution_proposed_at: datetime | None
    finalized_at: datetime | None
    is_cancelled: bool
    updated_at: datetime
    closes_at: datetime | None = None

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> MarketOut:
        """A market as the repository reads it: its columns and `closes_at`."""
        return cls.model_validate(dict(row))


class MarketCreate(Schema):
    question: str = Field(
        min_length=QUESTION_LENGTH[0],
        max_length=QUESTION_LENGTH[1] * 4,  # checked after trimming, below
        examples=["Will SOL close above $300 on 2027-01-01?"],
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    category: Category = Field(default=DEFAULT_CATEGORY, examples=["crypto"])
    tags: list[str] = Field(default_factory=list, max_length=10)
    resolver_wallet: str | None = None
    b_parameter: int = Field(default=100_000_000_000, gt=0, le=2**63 - 1)
    initial_liquidity: int = Field(default=0, ge=0, le=2**63 - 1)
    closes_at: AwareDatetime | None = None

    @field_validator("question")
    @classmethod
    def _strip(cls, value: str) -> str:
        stripped = value.strip()
        low, high = QUESTION_LENGTH
        if not low <= len(stripped) <= high:
            raise ValueError(f"question must have {low} to {high} characters")
        return stripped

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        cleaned = [tag.strip().lower() for tag in value]
        if any(not tag or len(tag) > 32 for tag in cleaned):
            raise ValueError("tags must be 1-32 characters")
        return sorted(set(cleaned))


class PriceBucketOut(Schema):
    start: datetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: int
    trades: int


class PriceHistoryOut(Schema):
    market_id: str
    interval: str
    buckets: list[PriceBucketOut]
