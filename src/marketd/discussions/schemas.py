from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, field_validator

from marketd.core.schemas import Schema
from marketd.discussions.rules import MAX_CONTENT, normalise_content


class DiscussionCreate(Schema):
    market_id: str
    content: str = Field(
        min_length=1, max_length=MAX_CONTENT * 4, examples=["Resolution source looks solid."]
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
