"""Tally rules (pure), including property tests of the threshold arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from marketd.votes.rules import CastVote, Tally, counted_votes, tally

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_exactly_at_threshold_passes():
    assert Tally(7, 3).passes(7000, 10)
    assert not Tally(6, 4).passes(7000, 10)
    assert not Tally(9, 0).passes(7000, 10)  # too few votes
    assert Tally(6, 4).passes(6000, 10)
    assert not Tally(59, 41).passes(6000, 10)
    assert not Tally(0, 0).passes(0, 0)
    assert Tally(7, 3).percentage() == 70
    assert Tally(0, 0).percentage() == 0
    assert Tally(2, 1).percentage() == 66


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 50))
def test_threshold_matches_exact_rational_arithmetic(yes, no, threshold, minimum):
    total = yes + no
    expected = total >= max(minimum, 1) and Fraction(yes, total) >= Fraction(threshold, 10_000)
    assert Tally(yes, no).passes(threshold, minimum) == expected


def test_one_vote_per_wallet_on_chain_wins_else_newest():
    votes = [
        CastVote("a", True, T0, on_chain=False),
        CastVote("a", False, T0 + timedelta(minutes=1), on_chain=False),
        CastVote("b", True, T0 + timedelta(minutes=5), on_chain=False),
        CastVote("b", False, T0, on_chain=True),
        CastVote("c", True, T0, on_chain=False),
    ]
    counted = counted_votes(votes)
    assert [(v.wallet, v.vote) for v in counted] == [("a", False), ("b", False), ("c", True)]
    assert tally(votes) == Tally(1, 2)


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdef"), st.booleans(), st.integers(0, 100), st.booleans()),
        max_size=30,
    )
)
def test_tally_counts_each_wallet_once(raw):
    votes = [CastVote(w, v, T0 + timedelta(seconds=s), c) for w, v, s, c in raw]
    result = tally(votes)
    assert result.total == len({w for w, *_ in raw})
    assert counted_votes(list(reversed(votes))) == counted_votes(votes) or any(
        a.voted_at == b.voted_at and a.on_chain == b.on_chain and a.wallet == b.wallet
        for a in votes
        for b in votes
        if a is not b
    )
