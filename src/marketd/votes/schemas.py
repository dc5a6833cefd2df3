from __future__ import annotations

from datetime import datetime

from pydantic import Field

from marketd.core.schemas import Schema
from marketd.votes.rules import VoteKind


class VoteCreate(Schema):
    market_id: str = Field(examples=["3f1c6a4e-2b7d-4c55-9a0e-6f7d2b1c9e10"])
    vote: bool = Field(description="Proposal: true = like. Dispute: true = agree with the dispute.")


class TallyOut(Schema):
    yes: int
    no: int
    total: int


class VoteAccepted(Schema):
    market_id: str
    kind: VoteKind
    wallet: str
    vote: bool
    voted_at: datetime
    tally: TallyOut


class VoteOut(Schema):
    wallet: str
    vote: bool
    voted_at: datetime
    tx_signature: str | None


class MarketVotesOut(Schema):
    market_id: str
    kind: VoteKind
    tally: TallyOut
    items: list[VoteOut]
    next_cursor: str | None
