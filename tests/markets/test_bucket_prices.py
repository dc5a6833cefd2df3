"""The hour rollups grouped into chart buckets in SQL (`MarketRepository.bucket_prices`) are the
rules' grouping (`rules.group_hours`) of the same hours, on both backends: brute force over
where hours fall against bucket edges, the hour's time zone as given, ranges of a year and
more, and prices whose SQLite text does not sort as the number (0 is '0E-9', 0.0000001 is
'1.00E-7').

Why (the NULL `high` once seen in a clean-clone run of an earlier version): the groups must
never carry NULL, and every hour must land in the bucket the rules put it in. The stored hour
must be text strftime('%s') reads on SQLite (SQLAlchemy's '2026-01-01 05:00:00.000000'), at
the same instant whatever offset it was given in."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from marketd.indexer.rollups import HOURS
from marketd.markets import rules
from marketd.markets.repository import MarketRepository
from marketd.markets.rules import HourPrices

from .trading import Fill, trade, wallet


@pytest.fixture(params=["postgres", "embedded"])
def backend(request: pytest.FixtureRequest) -> str:
    """PostgreSQL and SQLite: the two dialects of the grouped statement."""
    return str(request.param)


ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
ODD_PRICES = [
    Decimal("0"),
    Decimal("0.000000001"),
    Decimal("0.0000001"),
    Decimal("0.000000999"),
    Decimal("0.5"),
    Decimal("0.999999999"),
    Decimal("1"),
]
ORIGINS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # a daylight-saving change in Europe: no effect
    datetime(2028, 2, 29, tzinfo=UTC),
]


def _price(rng: random.Random) -> Decimal:
    if rng.random() < 0.3:
        return rng.choice(ODD_PRICES)
    return Decimal(rng.randint(0, 10**9)) / 10**9


def _hours(rng: random.Random, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Hours in [start - 2 buckets, end + 2 buckets): on every bucket's first and last hour,
    just outside the range, and random ones."""
    span = int((end - start) / rules.HOUR)
    chosen: set[datetime] = set()
    for edge in range(-2, int((end - start) / step) + 3):
        bucket = start + edge * step
        if rng.random() < 0.5:
            chosen.add(bucket)
        if rng.random() < 0.5:
            chosen.add(bucket + step - rules.HOUR)
    chosen.update(
        start + rng.randint(-48, span + 48) * rules.HOUR for _ in range(rng.randint(0, 60))
    )
    return sorted(chosen)


def cases() -> Iterator[tuple[datetime, datetime, timedelta, list[HourPrices]]]:
    """(start, end, interval, hours): every interval from each origin, and random ranges of up
    to 420 days (1,000 buckets of a day, as the route allows)."""
    rng = random.Random(21)
    for origin in ORIGINS:
        for name in ("1h", "4h", "1d"):
            step = rules.INTERVALS[name]
            for length in (1, 2, 7, rng.randint(3, 420 if name == "1d" else 200)):
                start = rules.bucket_start(origin + rng.randint(0, 40) * rules.HOUR, step)
                end = start + length * step
                if rng.random() < 0.5:  # a range that ends now: inside the last bucket
                    end -= rng.randint(0, int(step / rules.HOUR) - 1) * rules.HOUR
                hours = []
                for hour in _hours(rng, start, end, step):
                    prices = sorted(_price(rng) for _ in range(3))
                    low, close, high = prices[0], prices[1], prices[2]
                    if rng.random() < 0.2:
                        low = close = high
                    hours.append(
                        HourPrices(
                            hour.astimezone(rng.choice(ZONES)),
                            rng.randint(0, 10**12),
                            rng.randint(1, 10**4),
                            close,
                            high,
                            low,
                        )
                    )
                yield start, end, step, hours


async def test_the_hours_are_grouped_into_buckets_as_the_rules_group_them(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    database = api.container.database
    checked = 0
    for start, end, step, hours in cases():
        async with database.session() as session, session.begin():
            await session.execute(HOURS.delete().where(HOURS.c.market_id == market_id))
            if hours:
                await session.execute(
                    insert(HOURS),
                    [
                        {
                            "market_id": market_id,
                            "hour": h.hour,
                            "volume": h.volume,
                            "trades": h.trades,
                            "close_price": h.close,
                            "high_price": h.high,
                            "low_price": h.low,
                        }
                        for h in hours
                    ],
                )
        inside = [h for h in hours if start <= h.hour < end]
        async with database.session(read_only=True) as session:
            grouped = await MarketRepository(session).bucket_prices(market_id, start, end, step)
        expected = rules.group_hours(inside, start, step)
        assert grouped == expected, (start, end, step)
        assert all(None not in vars(group).values() for group in grouped)
        checked += len(grouped)
    assert checked > 1_000  # the brute force reached many buckets


async def test_a_stored_hour_is_text_sqlites_strftime_reads_at_its_instant(api):
    """The embedded database keeps an hour as SQLAlchemy's text of its UTC time, whatever the
    offset it was given in; strftime('%s') (the grouped statement's bucket) reads it."""
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    hour = datetime(2026, 1, 1, 5, tzinfo=UTC)
    async with api.container.database.session() as session, session.begin():
        await session.execute(
            insert(HOURS),
            [
                {
                    "market_id": market_id,
                    "hour": (hour + n * rules.HOUR).astimezone(zone),
                    "volume": 1,
                    "trades": 1,
                    "close_price": Decimal("0.5"),
                    "high_price": Decimal("0.5"),
                    "low_price": Decimal("0.5"),
                }
                for n, zone in enumerate(ZONES)
            ],
        )
    if api.container.database.dialect == "sqlite":
        stored = await api.execute(
            "SELECT hour, CAST(strftime('%s', hour) AS INTEGER) FROM market_trade_hours "
            "WHERE market_id = :id ORDER BY hour",
            id=market_id,
        )
        assert stored == [
            (f"2026-01-01 0{5 + n}:00:00.000000", int((hour + n * rules.HOUR).timestamp()))
            for n in range(len(ZONES))
        ]
    async with api.container.database.session() as session:
        read = (await session.execute(select(HOURS.c.hour).order_by(HOURS.c.hour))).scalars()
        assert list(read) == [hour + n * rules.HOUR for n in range(len(ZONES))]


async def test_a_long_daily_chart_equals_the_buckets_of_its_trades(api):
    """The route end to end: a year of trades read at 1d from the grouped hours gives the
    buckets the trades themselves give (and no NULL reaches the JSON); a price below a
    millionth is written with its 9 places, as every price ('0.000000500', not '5.00E-7')."""
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    now = datetime.now(UTC)
    rng = random.Random(6)
    first = rules.bucket_start(now, rules.INTERVALS["1d"]) - timedelta(days=340)
    moments = sorted(first + timedelta(minutes=rng.randint(0, 340 * 24 * 60)) for _ in range(300))
    fills = [
        Fill(wallet(), rng.randint(1, 10**9), rng.choice(["0.0000005", "0.25", "0.5", "0.75"]), at)
        for at in moments
        if at < now - timedelta(minutes=1)
    ]
    await trade(api.container, market_id, *fills)
    params = {"interval": "1d", "from": first.isoformat()}
    response = await api.client.get(f"/api/markets/{market_id}/prices", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    rows = await api.execute(
        "SELECT block_time, price_after, cost FROM trades WHERE market_id = :id",
        id=market_id,
    )
    async with api.container.database.session(read_only=True) as session:
        points = await MarketRepository(session).price_points(market_id, first, now)
    assert len(points) == len(rows) == len(fills)
    expected = rules.price_buckets(
        points,
        first,
        datetime.fromisoformat(body["series"][-1]["t"]),
        rules.INTERVALS["1d"],
        rules.OPENING_PRICE,
    )
    assert "0.000000500" in {b["low"] for b in body["buckets"]}
    assert [
        (b["open"], b["high"], b["low"], b["close"], b["volume"], b["trades"])
        for b in body["buckets"]
    ] == [
        (f"{b.open:.9f}", f"{b.high:.9f}", f"{b.low:.9f}", f"{b.close:.9f}", b.volume, b.trades)
        for b in expected
    ]
