"""The evidence kept with a tally sent on chain (the outbox row's payload), and reading it back.

The payload holds the exact list of counted votes (one per wallet, sorted by wallet, as
`rules.counted_votes` returns it), the counts derived from it and the threshold used, so
anyone can recount from `GET /api/markets/{id}/votes` and get the numbers that went on chain.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from marketd.votes.rules import CastVote, Tally, VoteKind

EVIDENCE_VERSION = 1


def tally_evidence(
    kind: VoteKind,
    counted: Sequence[CastVote],
    tally: Tally,
    *,
    threshold_bps: int,
    min_votes: int,
    threshold_source: str,
    decision: str,
    tallied_at: datetime,
) -> dict[str, Any]:
    return {
        "version": EVIDENCE_VERSION,
        "kind": kind.value,
        "decision": decision,
        "tally": {"yes": tally.yes, "no": tally.no, "total": tally.total},
        "threshold_bps": threshold_bps,
        "threshold_source": threshold_source,
        "min_votes": min_votes,
        "tallied_at": tallied_at.isoformat(),
        "votes": [
            {
                "wallet": vote.wallet,
                "vote": vote.vote,
                "voted_at": vote.voted_at.isoformat(),
                "on_chain": vote.on_chain,
            }
            for vote in counted
        ],
    }


def evidence_votes(payload: Mapping[str, Any] | None) -> list[CastVote]:
    """The counted votes stored by `tally_evidence` (empty for a payload without them)."""
    raw = (payload or {}).get("votes")
    if not isinstance(raw, list):
        return []
    return [
        CastVote(
            wallet=str(item["wallet"]),
            vote=bool(item["vote"]),
            voted_at=datetime.fromisoformat(str(item["voted_at"])),
            on_chain=bool(item["on_chain"]),
        )
        for item in raw
    ]
