from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ChallengeRequest(BaseModel):
    wallet: str = Field(
        min_length=32, max_length=44, examples=["9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"]
    )


class ChallengeResponse(BaseModel):
    message: str
    nonce: str
    expires_at: datetime


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "…", "signature": "5Kd…"}]}
    )

    message: str = Field(min_length=1, max_length=2000)
    signature: str = Field(min_length=64, max_length=100, description="base58 ed25519 signature")


class SessionResponse(BaseModel):
    token: str
    wallet: str
    expires_at: datetime
