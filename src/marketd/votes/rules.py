"""Vote tally rules (pure): who counts, and when a tally passes its threshold.

Integer arithmetic only: `yes * 10_000 >= threshold_bps * total` is exact where a float
ratio (0.7 * 10 = 6.999…) is not, so exactly-at-threshold always passes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

BASIS_POINTS = 10_000


class VoteKind(enum.StrEnum):
    PROPOSAL = "proposal"
    DISPUTE = "dispute"


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
