"""Market state machine and price buckets (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from marketd.markets.rules import PricePoint, bucket_count, bucket_start, price_buckets
from marketd.shared.market_state import LIVE_STATES, MarketState, can_transition


def test_state_codes_follow_the_program_enum():
    assert [s.code for s in MarketState] == list(range(7))
    assert MarketState.from_code(4) is MarketState.DISPUTED
    assert MarketState.from_program_name("Resolving") is MarketState.RESOLVING


def test_lifecycle_transitions():
    assert can_transition(MarketState.PROPOSED, MarketState.APPROVED)
    assert can_transition(MarketState.RESOLVING, MarketState.FINALIZED)
    assert can_transition(MarketState.DISPUTED, MarketState.FINALIZED)
    assert can_transition(MarketState.DISPUTED, MarketState.RESOLVING)  # upheld aggregation
    assert not can_transition(MarketState.PROPOSED, MarketState.ACTIVE)
    assert not can_transition(MarketState.FINALIZED, MarketState.ACTIVE)
    assert not any(can_transition(MarketState.CANCELLED, s) for s in MarketState)
    assert {MarketState.ACTIVE, MarketState.RESOLVING, MarketState.DISPUTED} == LIVE_STATES


def test_bucket_alignment_is_epoch_based():
    moment = datetime(2026, 3, 4, 13, 47, 12, tzinfo=UTC)
    assert bucket_start(moment, timedelta(hours=1)) == datetime(2026, 3, 4, 13, tzinfo=UTC)
    assert bucket_start(moment, timedelta(minutes=15)) == datetime(2026, 3, 4, 13, 45, tzinfo=UTC)
    assert bucket_count(moment, moment + timedelta(hours=2), timedelta(hours=1)) == 3
    assert bucket_count(moment, moment - timedelta(hours=2), timedelta(hours=1)) == 0


START = datetime(2026, 1, 1, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.999"), places=3)


@given(
    st.lists(st.tuples(st.integers(0, 299), prices, st.integers(0, 10**6)), max_size=40),
    prices,
)
def test_buckets_are_consistent(raw, opening):
    points = sorted(
        (PricePoint(START + timedelta(minutes=m), p, v) for m, p, v in raw), key=lambda p: p.at
    )
    buckets = price_buckets(points, START, START + timedelta(hours=5), timedelta(hours=1), opening)
    assert len(buckets) == 5
    assert sum(b.trades for b in buckets) == len(points)
    assert sum(b.volume for b in buckets) == sum(p.volume for p in points)
    previous_close = opening
    for bucket in buckets:
        assert bucket.open == previous_close
        assert bucket.low <= min(bucket.open, bucket.close)
        assert bucket.high >= max(bucket.open, bucket.close)
        previous_close = bucket.close
    if points:
        assert buckets[-1].close == points[-1].price_yes


def test_points_before_the_window_set_the_opening_price():
    early = PricePoint(START - timedelta(minutes=5), Decimal("0.3"), 1)
    inside = PricePoint(START + timedelta(minutes=5), Decimal("0.7"), 2)
    buckets = price_buckets(
        [early, inside], START, START + timedelta(hours=1), timedelta(hours=1), Decimal("0.5")
    )
    assert buckets[0].open == Decimal("0.3")
    assert buckets[0].close == Decimal("0.7")
