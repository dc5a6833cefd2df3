"""Where a relayed trade submission stands (`trade_submissions.status`).

One enum for the three writers of the column: the trades service accepts a submission as
PENDING, the relay fails it when the chain refuses it, and the indexer confirms it when it
indexes the transaction (or fails it when the transaction failed on chain, and puts it back to
PENDING when a fork dropped it). The API answers with the same words.
"""

from __future__ import annotations

from enum import StrEnum


class SubmissionStatus(StrEnum):
    """Where a relayed trade stands: pending, confirmed (indexed) or failed (`error` says why)."""

    PENDING = "pending"  # accepted; the relay sends it until it lands or cannot any more
    CONFIRMED = "confirmed"  # the indexer indexed its transaction
    FAILED = "failed"  # the chain refused it or it can no longer land; `error` says why
