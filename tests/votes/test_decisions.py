"""Aggregation rules (pure): proposal approval, dispute verdicts, evidence, thresholds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from marketd.chain.client import GlobalConfigAccount
from marketd.chain.errors import RpcUnavailable
from marketd.config import Settings
from marketd.votes.evidence import evidence_votes, tally_evidence
from marketd.votes.rules import (
    CastVote,
    DisputeVerdict,
    Tally,
    VoteKind,
    counted_votes,
    dispute_period_end,
    dispute_verdict,
    final_outcome,
    proposal_approved,
    tally,
)
from marketd.votes.thresholds import DEFAULT_DISPUTE_PERIOD_SECONDS, ThresholdSource

T0 = datetime(2026, 1, 1, tzinfo=UTC)
counts = st.integers(0, 5_000)
bps = st.integers(0, 10_000)


def test_proposal_examples_from_the_issue():
    assert proposal_approved(Tally(7, 3), 7000, 10)  # exactly at the threshold
    assert not proposal_approved(Tally(6, 4), 7000, 10)
    assert not proposal_approved(Tally(9, 0), 7000, 10)  # 9 votes: below the minimum
    assert proposal_approved(Tally(10, 0), 7000, 10)


@given(counts, counts, bps, st.integers(0, 100))
def test_proposal_approval_is_exact_rational_arithmetic(yes, no, threshold, minimum):
    total = yes + no
    expected = total >= max(minimum, 1) and Fraction(yes, total) >= Fraction(threshold, 10_000)
    assert proposal_approved(Tally(yes, no), threshold, minimum) == expected


def test_dispute_examples_from_the_issue():
    end = T0
    assert dispute_verdict(Tally(6, 4), 6000, 10, end, T0) is DisputeVerdict.SUCCEEDED
    assert dispute_verdict(Tally(59, 41), 6000, 10, end, T0) is DisputeVerdict.FAILED
    assert dispute_verdict(Tally(6, 4), 6000, 10, end, T0 - timedelta(seconds=1)) is (
        DisputeVerdict.PERIOD_OPEN
    )
    assert dispute_verdict(Tally(3, 0), 6000, 10, end, T0) is DisputeVerdict.AWAITING_QUORUM
    assert dispute_verdict(Tally(1, 2), 6000, 10, end, T0) is DisputeVerdict.FAILED
    # The program refuses a tally without votes (NoVotesRecorded): it waits for one.
    assert dispute_verdict(Tally(0, 0), 6000, 10, end, T0) is DisputeVerdict.NO_VOTES
    assert dispute_verdict(Tally(0, 0), 6000, 0, end, T0) is DisputeVerdict.NO_VOTES


@given(counts, counts, bps, st.integers(0, 100), st.integers(-10, 10))
def test_dispute_verdict_properties(yes, no, threshold, minimum, offset):
    end = T0 + timedelta(seconds=offset)
    verdict = dispute_verdict(Tally(yes, no), threshold, minimum, end, T0)
    if offset > 0:
        assert verdict is DisputeVerdict.PERIOD_OPEN
        return
    total = yes + no
    meets = total > 0 and Fraction(yes, total) >= Fraction(threshold, 10_000)
    # What the program computes from the counts alone (no minimum):
    program_flips = meets
    if verdict is DisputeVerdict.SUCCEEDED:
        assert meets and total >= minimum and program_flips
    elif verdict is DisputeVerdict.FAILED:
        # Sending the counts is safe: the program keeps the proposed outcome too.
        assert not program_flips and total > 0
    elif verdict is DisputeVerdict.NO_VOTES:
        assert total == 0
    else:
        assert verdict is DisputeVerdict.AWAITING_QUORUM
        assert meets and total < minimum


def test_dispute_period_end_and_final_outcome():
    assert dispute_period_end(T0, 3600) == T0 + timedelta(hours=1)
    assert final_outcome(True, True) is False
    assert final_outcome(True, False) is True
    assert final_outcome(False, True) is True
    assert final_outcome(None, True) is None


wallets = st.sampled_from([str(Pubkey.new_unique()) for _ in range(8)])
votes = st.lists(
    st.builds(
        CastVote,
        wallets,
        st.booleans(),
        st.integers(0, 10_000).map(lambda s: T0 + timedelta(seconds=s)),
        st.booleans(),
    ),
    max_size=30,
)


@given(votes)
def test_evidence_reproduces_the_tally(raw):
    counted = counted_votes(raw)
    sent = tally(counted)
    payload = tally_evidence(
        VoteKind.PROPOSAL,
        counted,
        sent,
        threshold_bps=7000,
        min_votes=10,
        threshold_source="chain",
        decision="approved",
        tallied_at=T0,
    )
    recounted = evidence_votes(payload)
    assert recounted == counted
    assert tally(recounted) == sent
    assert payload["tally"] == {"yes": sent.yes, "no": sent.no, "total": sent.total}
    assert [v["wallet"] for v in payload["votes"]] == sorted({v.wallet for v in raw})


def test_evidence_of_a_payload_without_votes_is_empty():
    assert evidence_votes(None) == []
    assert evidence_votes({"votes": "nope"}) == []


# ----------------------------------------------------------------------------- thresholds


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def config_account(proposal: int, dispute: int, period: int) -> GlobalConfigAccount:
    key = Pubkey.new_unique()
    return GlobalConfigAccount(key, key, key, key, proposal, dispute, {"dispute_period": period})


class FakeReader:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def global_config(self) -> GlobalConfigAccount | None:
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_thresholds_come_from_the_chain_and_are_cached():
    clock = Clock()
    reader = FakeReader(config_account(6500, 5500, 60), config_account(8000, 5000, 120))
    source = ThresholdSource(settings(), reader, ttl_seconds=10, monotonic=clock)
    first = await source.get()
    assert (first.proposal_approval_bps, first.dispute_success_bps) == (6500, 5500)
    assert (first.dispute_period_seconds, first.source) == (60, "chain")
    clock.now = 9.9
    assert await source.get() == first and reader.calls == 1
    clock.now = 10.0
    assert (await source.get()).proposal_approval_bps == 8000


async def test_thresholds_fall_back_to_settings_only_without_a_global_config():
    configured = settings(proposal_approval_threshold_bps=7500, dispute_success_threshold_bps=6100)
    no_chain = await ThresholdSource(configured, None).get()
    assert (no_chain.proposal_approval_bps, no_chain.dispute_success_bps) == (7500, 6100)
    assert no_chain.dispute_period_seconds == DEFAULT_DISPUTE_PERIOD_SECONDS
    assert no_chain.source == "config"
    uninitialized = await ThresholdSource(configured, FakeReader(None)).get()
    assert uninitialized == no_chain


async def test_rpc_failure_uses_the_last_chain_value_or_raises():
    clock = Clock()
    reader = FakeReader(RpcUnavailable("down"), config_account(6600, 5000, 60), RpcUnavailable("x"))
    source = ThresholdSource(settings(), reader, ttl_seconds=1, monotonic=clock)
    with pytest.raises(RpcUnavailable):
        await source.get()  # never a silent switch to the configured values
    known = await source.get()
    clock.now = 5
    assert await source.get() == known
    assert reader.calls == 3
