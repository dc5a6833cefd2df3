"""The chart: OHLC buckets from the hour rollups equal the trades', and the plain series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from marketd.indexer.rollups import fold_hours
from marketd.markets import rules
from marketd.markets.rules import HourPrices, PricePoint
from marketd.markets.schemas import (
    PriceBucketOut,
    PriceHistoryOut,
    SeriesPointOut,
    price_history_json,
)

from .trading import Fill, trade, wallet

START = datetime(2026, 1, 1, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.999"), places=3)


@given(
    st.lists(st.tuples(st.integers(-600, 3000), prices, st.integers(0, 10**6)), max_size=60),
    st.sampled_from(["1h", "4h", "1d"]),
    st.integers(0, 30),
)
def test_hour_rollups_give_the_buckets_the_trades_give(raw, interval, start_hours):
    points = sorted(
        (PricePoint(START + timedelta(minutes=m), p, v) for m, p, v in raw), key=lambda p: p.at
    )
    hours = [
        HourPrices(hour, h.volume, h.trades, h.close_price, h.high_price, h.low_price)
        for hour, h in sorted(fold_hours((p.at, p.volume, p.price_yes) for p in points).items())
    ]
    step = rules.INTERVALS[interval]
    start = rules.bucket_start(START + timedelta(hours=start_hours), step)
    end = START + timedelta(hours=60)  # after every trade
    before = [p for p in points if p.at < start]
    opening = before[-1].price_yes if before else Decimal("0.5")
    before_hours = [h for h in hours if h.hour < start]
    hour_opening = before_hours[-1].close if before_hours else Decimal("0.5")
    assert hour_opening == opening
    inside = [p for p in points if p.at >= start]
    # The hours before `start` are left out: the opening price says where the first bucket opens.
    assert rules.buckets_from_hours(hours, start, end, step, hour_opening) == rules.price_buckets(
        inside, start, end, step, opening
    )


@given(
    st.lists(
        st.tuples(st.integers(-600, 3000), prices, st.integers(0, 10**6)), min_size=1, max_size=40
    ),
    st.sampled_from(["15m", "1h", "1d"]),
)
def test_the_json_body_is_price_history_outs(raw, interval):
    """`price_history_json` (plain dicts through a TypeAdapter) writes what PriceHistoryOut's
    model would: the same fields, prices as 9-place strings, times in UTC with Z."""
    points = sorted(
        (PricePoint(START + timedelta(minutes=m), p, v) for m, p, v in raw), key=lambda p: p.at
    )
    step = rules.INTERVALS[interval]
    end = points[-1].at + step
    buckets = rules.price_buckets(points, START - step, end, step, Decimal("0.5"))
    series = rules.price_series(buckets, end, points[-1].price_yes)
    body = price_history_json("m" * 64, interval, buckets, series)
    model = PriceHistoryOut(
        market_id="m" * 64,
        interval=interval,
        buckets=[PriceBucketOut.model_validate(vars(bucket)) for bucket in buckets],
        series=[SeriesPointOut.model_validate(vars(point)) for point in series],
    )
    assert body == model.model_dump_json().encode()
    assert PriceHistoryOut.model_validate_json(body) == model


def test_the_series_is_each_buckets_open_then_the_last_price():
    buckets = rules.price_buckets(
        [PricePoint(START + timedelta(minutes=30), Decimal("0.6"), 1)],
        START,
        START + timedelta(hours=2),
        timedelta(hours=1),
        Decimal("0.5"),
    )
    series = rules.price_series(buckets, START + timedelta(hours=1, minutes=5), Decimal("0.61"))
    assert [(p.t - START, p.yes, p.no) for p in series] == [
        (timedelta(0), Decimal("0.5"), Decimal("0.5")),
        (timedelta(hours=1), Decimal("0.6"), Decimal("0.4")),
        (timedelta(hours=1, minutes=5), Decimal("0.61"), Decimal("0.39")),
    ]


async def test_prices_answer_the_series_with_the_current_price_last(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    now = datetime.now(UTC)
    hour = rules.hour_of(now)
    await trade(
        api.container,
        market_id,
        Fill(wallet(), 10, "0.4", hour - timedelta(hours=3, minutes=30)),
        Fill(wallet(), 10, "0.7", hour - timedelta(hours=1, minutes=30)),
        Fill(wallet(), 10, "0.65", hour - timedelta(minutes=20)),
    )
    params = {"interval": "1h", "from": (hour - timedelta(hours=3)).isoformat()}
    body = (await api.client.get(f"/api/markets/{market_id}/prices", params=params)).json()
    assert [b["close"] for b in body["buckets"]] == [
        "0.400000000",
        "0.700000000",
        "0.650000000",
        "0.650000000",
    ]
    series = body["series"]
    assert [(p["yes"], p["no"]) for p in series] == [
        ("0.400000000", "0.600000000"),
        ("0.400000000", "0.600000000"),
        ("0.700000000", "0.300000000"),
        ("0.650000000", "0.350000000"),
        ("0.650000000", "0.350000000"),  # now: the market's current price
    ]
    assert datetime.fromisoformat(series[-1]["t"]) >= now
    # A past range that ends inside an hour reads the trades: the same figures.
    params = {
        "interval": "15m",
        "from": (hour - timedelta(hours=2)).isoformat(),
        "to": (hour - timedelta(minutes=10)).isoformat(),
    }
    body = (await api.client.get(f"/api/markets/{market_id}/prices", params=params)).json()
    assert body["series"][0]["yes"] == "0.400000000"
    assert body["series"][-1] == {
        "t": (hour - timedelta(minutes=10)).isoformat().replace("+00:00", "Z"),
        "yes": "0.650000000",
        "no": "0.350000000",
    }
