from __future__ import annotations

from datetime import datetime

from pydantic import Field

from marketd.core.schemas import MarketId, Schema
from marketd.votes.rules import VoteKind


class VoteCreate(Schema):
    market_id: MarketId = Field(examples=["3f1c6a4e-2b7d-4c55-9a0e-6f7d2b1c9e10"])
    vote: bool = Field(
        strict=True,
        description="Proposal: true = like. Dispute: true = agree with the dispute. A JSON "
        'boolean: `"yes"`, `1` and the like are refused.',
    )


class TallyOut(Schema):
    yes: int
    no: int
    total: int


class EligibilityCheckOut(Schema):
    strategy: str = Field(
        examples=["min_balance"],
        description="allowlist | position | min_balance | min_wallet_age | min_transactions | any",
    )
    required: str = Field(examples=["0.05 SOL"])
    value: str = Field(examples=["0.12 SOL"], description="What the wallet had when checked")


class EligibilityOut(Schema):
    """Why a vote counts, so a recount can check it."""

    strategy: str = Field(
        description="on_chain: cast on chain (submit_proposal_vote / submit_dispute_vote), "
        "always counts; all_of: met every strategy in `checks` when cast; any: cast while "
        "every signed-in wallet could vote; cast_before_eligibility: stored before marketd "
        "checked eligibility (migration 0005), kept counting"
    )
    checks: list[EligibilityCheckOut] = Field(
        description="The strategies met and what the wallet had, when it was checked"
    )
    checked_at: datetime | None = Field(description="When the wallet was checked (off-chain)")


class VoteAccepted(Schema):
    market_id: str
    kind: VoteKind
    wallet: str
    vote: bool
    voted_at: datetime
    tally: TallyOut
    eligibility: EligibilityOut = Field(
        description="Why this vote counts, as the votes page shows it"
    )


class VoteOut(Schema):
    wallet: str
    vote: bool
    voted_at: datetime
    tx_signature: str | None
    eligibility: EligibilityOut


class CountedVoteOut(Schema):
    wallet: str
    vote: bool
    voted_at: datetime
    on_chain: bool


class SubmittedTallyOut(Schema):
    """The tally sent on chain, with the exact list of votes it counted (recount it)."""

    intent: str = Field(description="approve_market | resolve_dispute")
    status: str = Field(description="pending | sent | confirmed | failed")
    outcome: str | None = Field(
        description="approved | awaiting_admin_approval | finalized, once confirmed"
    )
    awaiting_admin_approval: bool = Field(
        description="The tally is recorded on chain; the market waits for the admin's approval."
    )
    signature: str | None = Field(description="The transaction's signature once signed")
    error: str | None
    decision: str = Field(description="approved | succeeded | failed (dispute)")
    tally: TallyOut
    threshold_bps: int
    threshold_source: str = Field(description="chain (GlobalConfig) | config (fallback)")
    min_votes: int
    tallied_at: datetime
    confirmed_at: datetime | None
    votes: list[CountedVoteOut]


class MarketVotesOut(Schema):
    market_id: str
    kind: VoteKind
    tally: TallyOut
    items: list[VoteOut]
    next_cursor: str | None
    submitted: SubmittedTallyOut | None = Field(
        default=None, description="The tally sent on chain for this market and kind, if any."
    )
    waiting: str | None = Field(
        default=None,
        description="Why a disputed market is not being decided, e.g. no_votes: the program "
        "refuses a dispute tally without votes (NoVotesRecorded), so it waits for the first vote.",
    )
