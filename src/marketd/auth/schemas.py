from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from marketd.auth.siws import SIGNATURE_MAX_CHARS, SIGNATURE_MIN_CHARS
from marketd.chain.addresses import WALLET_MAX_CHARS, WALLET_MIN_CHARS
from marketd.core.schemas import Text


class ChallengeRequest(BaseModel):
    wallet: Text = Field(
        min_length=WALLET_MIN_CHARS,
        max_length=WALLET_MAX_CHARS,
        examples=["9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"],
    )


class ChallengeResponse(BaseModel):
    message: str
    nonce: str
    expires_at: datetime


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "…", "signature": "5Kd…"}]}
    )

    message: Text = Field(min_length=1, max_length=2000)
    signature: Text = Field(
        min_length=SIGNATURE_MIN_CHARS,
        max_length=SIGNATURE_MAX_CHARS,
        description="base58 ed25519 signature",
    )


class SessionResponse(BaseModel):
    token: str
    wallet: str
    expires_at: datetime
