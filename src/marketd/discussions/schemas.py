from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, field_validator

from marketd.core.schemas import MarketId, Schema, Text, length_limits
from marketd.discussions.rules import MAX_CONTENT, MIN_CONTENT, normalise_content


class DiscussionCreate(Schema):
    market_id: MarketId
    content: Text = Field(
        description=f"{MIN_CONTENT}-{MAX_CONTENT:,} characters after trimming surrounding space",
        json_schema_extra=length_limits(MIN_CONTENT, MAX_CONTENT),
        examples=["Resolution source looks solid."],
    )

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        return normalise_content(value)


class DiscussionOut(Schema):
    id: uuid.UUID
    market_id: str
    user_wallet: str
    content: str
    created_at: datetime
