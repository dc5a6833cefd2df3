"""Vote tally rules (pure): who counts, and when a tally passes its threshold.

Integer arithmetic only: `yes * 10_000 >= threshold_bps * total` is exact where a float
ratio (0.7 * 10 = 6.999…) is not, so exactly-at-threshold always passes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from marketd.shared.market_state import VOTING_STATES, MarketState

BASIS_POINTS = 10_000


class VoteKind(enum.StrEnum):
    PROPOSAL = "proposal"
    DISPUTE = "dispute"


VOTING_STATE: dict[VoteKind, MarketState] = dict(zip(VoteKind, VOTING_STATES, strict=True))
"""The state in which a market takes votes of each kind (proposal: PROPOSED, dispute:
DISPUTED); `marketd.markets.rules.VOTING_STATES` lists them in this order."""


@dataclass(frozen=True)
class Tally:
    yes: int
    no: int

    @property
    def total(self) -> int:
        return self.yes + self.no

    def passes(self, threshold_bps: int, min_votes: int) -> bool:
        if self.total == 0 or self.total < min_votes:
            return False
        return self.yes * BASIS_POINTS >= threshold_bps * self.total

    def percentage(self) -> int:
        """Whole percent of yes votes, rounded down (the program's u8 field)."""
        return 0 if self.total == 0 else self.yes * 100 // self.total


@dataclass(frozen=True)
class CastVote:
    wallet: str
    vote: bool
    voted_at: datetime
    on_chain: bool


def counted_votes(votes: Iterable[CastVote]) -> list[CastVote]:
    """One vote per wallet: an on-chain vote outranks an off-chain one, else the newest wins.
    The result is sorted by wallet so a recount reproduces it byte for byte."""
    chosen: dict[str, CastVote] = {}
    for vote in votes:
        current = chosen.get(vote.wallet)
        if current is None or (vote.on_chain, vote.voted_at) > (current.on_chain, current.voted_at):
            chosen[vote.wallet] = vote
    return [chosen[wallet] for wallet in sorted(chosen)]


def tally(votes: Iterable[CastVote]) -> Tally:
    counted = counted_votes(votes)
    yes = sum(1 for vote in counted if vote.vote)
    return Tally(yes=yes, no=len(counted) - yes)


# --------------------------------------------------------------------------- aggregation
# What the aggregator decides from a tally (still pure: the caller supplies thresholds, times).


def proposal_approved(tally: Tally, threshold_bps: int, min_votes: int) -> bool:
    """A PROPOSED market is approved at >= `min_votes` counted votes and likes at or above
    the threshold (GlobalConfig.proposal_approval_threshold, basis points)."""
    return tally.passes(threshold_bps, min_votes)


class DisputeVerdict(enum.StrEnum):
    PERIOD_OPEN = "period_open"  # the dispute period has not ended: nothing to decide yet
    NO_VOTES = "no_votes"  # over, but no vote: the program refuses it (NoVotesRecorded)
    AWAITING_QUORUM = "awaiting_quorum"  # would succeed, but on fewer than the minimum votes
    SUCCEEDED = "succeeded"  # finalize with the counts; the program flips the outcome
    FAILED = "failed"  # finalize with the counts; the proposed outcome stands


NO_VOTES_REASON = DisputeVerdict.NO_VOTES.value


def dispute_period_end(resolution_proposed_at: datetime, dispute_period_seconds: int) -> datetime:
    return resolution_proposed_at + timedelta(seconds=dispute_period_seconds)


def dispute_verdict(
    tally: Tally, threshold_bps: int, min_votes: int, period_end: datetime, now: datetime
) -> DisputeVerdict:
    """The dispute's fate once its period is over.

    The rule: a dispute succeeds at >= threshold agree of at least `min_votes` votes. The
    program, though, decides from the counts alone (no minimum), and the counts we send must
    be the true ones. So a tally that meets the threshold on fewer than the minimum votes is
    NOT sent (sending it would flip the outcome on too few votes): it waits for the quorum,
    the dispute votes staying open. A tally below the threshold is sent as it is, whatever
    its size: the program then keeps the proposed outcome, which is what the rule says.
    A tally without any vote cannot be sent at all (finalize_market fails NoVotesRecorded):
    the dispute waits for its first vote (NO_VOTES).
    """
    if now < period_end:
        return DisputeVerdict.PERIOD_OPEN
    if tally.total == 0:
        return DisputeVerdict.NO_VOTES
    if tally.passes(threshold_bps, min_votes):
        return DisputeVerdict.SUCCEEDED
    if tally.passes(threshold_bps, 0):
        return DisputeVerdict.AWAITING_QUORUM
    return DisputeVerdict.FAILED


def final_outcome(proposed_outcome: bool | None, dispute_succeeded: bool) -> bool | None:
    """The program's final outcome: the proposed one, flipped by a successful dispute."""
    if proposed_outcome is None:
        return None
    return not proposed_outcome if dispute_succeeded else proposed_outcome
