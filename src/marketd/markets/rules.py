"""Market rules with no I/O: what a proposed market's text may be, trending and related ranks,
and the price-history buckets (the lifecycle states and their state machine are
`marketd.shared.market_state`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from marketd.core.inputs import strip_blank
from marketd.shared.market_state import MarketState

_Timed = TypeVar("_Timed")


HOUR = timedelta(hours=1)
WINDOW_HOURS = 24
OPENING_PRICE = Decimal("0.5")
"""A market's YES price before its first trade (both outcomes' shares at 0)."""


def hour_of(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    return moment.replace(minute=0, second=0, microsecond=0)


def window_start(now: datetime) -> datetime:
    """The first hour of the "24-hour" window: the current hour and the 23 before it, so the
    window covers between 23 and 24 hours of trades and moves only on the hour."""
    return hour_of(now) - HOUR * (WINDOW_HOURS - 1)


def seconds_to_next_hour(now: datetime) -> int:
    """How long what a window shows stays true without a new trade (at least 1 s)."""
    return max(1, int((hour_of(now) + HOUR - now).total_seconds()) + 1)


def price_change(current: Decimal, opening: Decimal | None) -> Decimal:
    """The YES price's move over the window: from the close of the last hour before it (the
    opening price when the market had not traded before)."""
    return current - (OPENING_PRICE if opening is None else opening)


TRENDING_MOVE_WEIGHT = 4
"""How much a price move weighs against volume in `trending_score`."""


def trending_score(volume_24h: int, change_24h: Decimal) -> Decimal:
    """How much a market is trending: its 24-hour volume, weighted up by how far its YES price
    moved over the window: volume x (1 + 4 x |change|), so a 25-point move counts as much as
    doubling the volume. A market that did not trade in the window scores 0."""
    return Decimal(volume_24h) * (1 + TRENDING_MOVE_WEIGHT * abs(change_24h))


def related_rank(
    market: tuple[str | None, Sequence[str]],
    other: tuple[str, str | None, Sequence[str], int, str],
) -> tuple[bool, bool, int, int, str]:
    """Sort key of a market related to `market` (category, tags): `other` is its (state,
    category, tags, total_volume, id). Active markets first; among them those of the same
    category, then those sharing more tags, then the more traded; the id breaks ties."""
    category, tags = market
    state, other_category, other_tags, volume, market_id = other
    same_category = category is not None and other_category == category
    shared = len(set(tags) & set(other_tags))
    return (state != MarketState.ACTIVE.value, not same_category, -shared, -volume, market_id)


# What create_market accepts and trades on (PROGRAM.md §1, §3.2): b = 0 fails at once, and
# 0 < b < MIN_B creates a market on which every trade fails (InvalidBParameter); liquidity 0
# fails InvalidLiquidity. A proposal outside these is refused (422) before any transaction.
MIN_B = 100 * 1_000_000_000
"""The program's MIN_B (100 shares of 9 decimals): the smallest b_parameter LMSR accepts."""
DEFAULT_B = MIN_B
DEFAULT_INITIAL_LIQUIDITY = 10 * 1_000_000_000
"""10 SOL: create_market records it, it is never deposited (the number bounds the loss)."""
U63_MAX = 2**63 - 1
"""u64 on chain, BIGINT in the database: the database bounds it."""

QUESTION_CHARS = (10, 200)
"""A question's length after trimming surrounding blanks (space and invisible characters:
`marketd.core.inputs.strip_blank`; the platform's `question_length`)."""
DESCRIPTION_MAX_CHARS = 2000  # the platform's `description_length`
CATEGORY_CHARS = (1, 64)  # a listing's category filter
MAX_TAGS = 10
TAG_CHARS = (1, 32)
"""A tag's length after trimming (tags are kept lower-case, once each)."""


def normalise_question(question: str) -> str:
    trimmed = strip_blank(question)
    low, high = QUESTION_CHARS
    if not low <= len(trimmed) <= high:
        raise ValueError(f"question must have {low}-{high} characters")
    return trimmed


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, lower-case, each once, sorted; raises ValueError for an empty or long tag."""
    cleaned = [strip_blank(tag).lower() for tag in tags]
    low, high = TAG_CHARS
    if any(not low <= len(tag) <= high for tag in cleaned):
        raise ValueError(f"tags must be {low}-{high} characters")
    return sorted(set(cleaned))


PRICE_QUANTUM = Decimal("0.000000001")
INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
MAX_BUCKETS = 1000


@dataclass(frozen=True)
class PricePoint:
    at: datetime
    price_yes: Decimal
    volume: int


@dataclass(frozen=True)
class PriceBucket:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    trades: int


def bucket_start(moment: datetime, interval: timedelta) -> datetime:
    """Align to interval boundaries counted from the Unix epoch (UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    steps = (moment - epoch) // interval
    return epoch + steps * interval


def bucket_count(start: datetime, end: datetime, interval: timedelta) -> int:
    first = bucket_start(start, interval)
    return max(0, -(-(end - first) // interval))


def _intervals(
    ordered: Sequence[_Timed],
    at: Callable[[_Timed], datetime],
    close: Callable[[_Timed], Decimal],
    start: datetime,
    end: datetime,
    interval: timedelta,
    opening_price: Decimal,
) -> Iterator[tuple[datetime, list[_Timed], Decimal]]:
    """Each interval from `start`'s bucket up to `end`: its start, the sorted items inside it,
    and the price it opens at (the close of the last item before it, else `opening_price`)."""
    cursor = bucket_start(start, interval)
    index = 0
    last = opening_price
    while cursor < end:
        upper = cursor + interval
        inside: list[_Timed] = []
        while index < len(ordered) and at(ordered[index]) < upper:
            if at(ordered[index]) >= cursor:
                inside.append(ordered[index])
            else:
                last = close(ordered[index])
            index += 1
        yield cursor, inside, last
        if inside:
            last = close(inside[-1])
        cursor = upper


def price_buckets(
    points: Iterable[PricePoint],
    start: datetime,
    end: datetime,
    interval: timedelta,
    opening_price: Decimal,
) -> list[PriceBucket]:
    """OHLC buckets of YES price over [start, end); empty buckets repeat the last close so a
    chart shows a flat line instead of a gap. `points` must be sorted by time."""
    buckets: list[PriceBucket] = []
    for cursor, inside, last in _intervals(
        list(points), _point_at, _point_price, start, end, interval, opening_price
    ):
        # Prices are post-trade, so the bucket opens at the previous close.
        prices = [last, *(p.price_yes for p in inside)]
        buckets.append(
            PriceBucket(
                cursor,
                last,
                max(prices),
                min(prices),
                prices[-1],
                sum(p.volume for p in inside),
                len(inside),
            )
        )
    return buckets


@dataclass(frozen=True)
class HourPrices:
    """One row of `market_trade_hours`: an hour's trades, its close, high and low."""

    hour: datetime
    volume: int
    trades: int
    close: Decimal
    high: Decimal
    low: Decimal


@dataclass(frozen=True)
class HourGroup:
    """The hours of one bucket folded together: the bucket's `index` from the range's start,
    its volume and trades, the close of its last hour, its highest high and lowest low."""

    index: int
    volume: int
    trades: int
    close: Decimal
    high: Decimal
    low: Decimal


def group_hours(
    hours: Iterable[HourPrices], start: datetime, interval: timedelta
) -> list[HourGroup]:
    """The hours at or after `start` grouped into the buckets of `interval` counted from
    `start`, in bucket order (what `MarketRepository.bucket_prices` computes in SQL). `hours`
    must be sorted."""
    groups: list[HourGroup] = []
    for hour in hours:
        index = (hour.hour - start) // interval
        if index < 0:
            continue
        if groups and groups[-1].index == index:
            last = groups[-1]
            groups[-1] = HourGroup(
                index,
                last.volume + hour.volume,
                last.trades + hour.trades,
                hour.close,
                max(last.high, hour.high),
                min(last.low, hour.low),
            )
        else:
            groups.append(
                HourGroup(index, hour.volume, hour.trades, hour.close, hour.high, hour.low)
            )
    return groups


def buckets_from_groups(
    groups: Iterable[HourGroup],
    start: datetime,
    end: datetime,
    interval: timedelta,
    opening_price: Decimal,
) -> list[PriceBucket]:
    """`price_buckets` over [start, end) from the hours grouped per bucket (`group_hours`):
    the same buckets when `start` is on an hour and no trade is at or after `end` within its
    hour. A bucket opens at the previous bucket's close (`opening_price` for the first), its
    high and low include that open, and a bucket without hours repeats it. `groups` must be in
    bucket order."""
    by_index = {group.index: group for group in groups}
    buckets: list[PriceBucket] = []
    last = opening_price
    for index in range(bucket_count(start, end, interval)):
        cursor = start + index * interval
        group = by_index.get(index)
        if group is None:
            buckets.append(PriceBucket(cursor, last, last, last, last, 0, 0))
            continue
        buckets.append(
            PriceBucket(
                cursor,
                last,
                max(last, group.high),
                min(last, group.low),
                group.close,
                group.volume,
                group.trades,
            )
        )
        last = group.close
    return buckets


def buckets_from_hours(
    hours: Iterable[HourPrices],
    start: datetime,
    end: datetime,
    interval: timedelta,
    opening_price: Decimal,
) -> list[PriceBucket]:
    """`price_buckets` of an interval of whole hours, from the hours' rollups instead of the
    trades: the same buckets when `start` is on an hour and no trade is at or after `end`
    within its hour. `hours` must be sorted; `start` on a bucket boundary of `interval`."""
    inside = [hour for hour in hours if hour.hour < end]
    return buckets_from_groups(
        group_hours(inside, start, interval), start, end, interval, opening_price
    )


def _point_at(point: PricePoint) -> datetime:
    return point.at


def _point_price(point: PricePoint) -> Decimal:
    return point.price_yes


@dataclass(frozen=True)
class SeriesPoint:
    t: datetime
    yes: Decimal
    no: Decimal


def price_series(
    buckets: Sequence[PriceBucket], last_at: datetime, last_price: Decimal
) -> list[SeriesPoint]:
    """The chart's line: the YES price at each bucket's start (its open: the price after the
    last trade before it), then `last_price` at `last_at` (the current price at the current
    time when the range reaches now). NO is 1 - YES."""
    points = [(bucket.start, bucket.open) for bucket in buckets if bucket.start < last_at]
    points.append((last_at, last_price))
    return [SeriesPoint(at, yes, Decimal(1) - yes) for at, yes in points]
