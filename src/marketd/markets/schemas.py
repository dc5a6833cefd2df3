from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, TypeAdapter, field_validator
from typing_extensions import TypedDict

from marketd.chain.addresses import WALLET_MAX_CHARS, WALLET_MIN_CHARS
from marketd.core.schemas import (
    Moment,
    Price,
    PriceChange,
    Schema,
    Text,
    length_limits,
    price_text,
)
from marketd.markets import rules
from marketd.shared.market_state import DEFAULT_CATEGORY, Category, MarketState


class MarketSort(enum.StrEnum):
    NEWEST = "newest"
    VOLUME = "volume"
    CLOSING_SOON = "closing_soon"


class ProposalVotesOut(Schema):
    likes: int
    dislikes: int
    total: int


class DisputeVotesOut(Schema):
    agree: int
    disagree: int
    total: int


class VoteCountsOut(Schema):
    proposal: ProposalVotesOut
    dispute: DisputeVotesOut

    @classmethod
    def of(cls, proposal_yes: int, proposal_no: int, dispute_yes: int, dispute_no: int) -> Self:
        return cls(
            proposal=ProposalVotesOut(
                likes=proposal_yes, dislikes=proposal_no, total=proposal_yes + proposal_no
            ),
            dispute=DisputeVotesOut(
                agree=dispute_yes, disagree=dispute_no, total=dispute_yes + dispute_no
            ),
        )


ON_CHAIN_VOTE_COLUMNS = ("proposal_likes", "proposal_dislikes", "dispute_agree", "dispute_disagree")
"""The vote counts recorded in the market's account, shown as `on_chain_votes`."""
LIVE_COLUMNS = (
    "live_proposal_yes",
    "live_proposal_total",
    "live_dispute_yes",
    "live_dispute_total",
)
"""The live tallies a detail read adds to the market's columns (markets.repository)."""
CARD_COLUMNS = ("volume_24h", "price_24h_ago", "trades_count", "unique_traders")
"""What every market read adds from the rollups (markets.repository)."""
DERIVED_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "on_chain_votes": ON_CHAIN_VOTE_COLUMNS,
        "closes_at": (),  # market_schedules
        "volume_24h": (),  # CARD_COLUMNS: the hour rollups
        "price_change_24h": ("current_price_yes",),  # and CARD_COLUMNS' price_24h_ago
        "trades_count": (),  # CARD_COLUMNS: market_stats
        "unique_traders": (),  # CARD_COLUMNS: market_stats
        "votes": (),  # LIVE_COLUMNS: the vote tables
    }
)
"""The fields of a market read that are not `markets` columns (`marketd.markets.columns`), each
with the columns it is made from; every other field is the column of its name."""
NOT_EXPOSED: tuple[str, ...] = ()
"""`markets` columns no market read shows (none: every column is a field or in a derived one).
A column added to the table must be shown or listed here (tests/markets/test_columns.py)."""


MARKET_EXAMPLE: dict[str, Any] = {
    "id": "9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e",
    "on_chain_address": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
    "question": "Will SOL close above $300 on 2027-01-01?",
    "description": "Resolves YES if the SOL/USD close on 2027-01-01 (UTC) is above $300.",
    "category": "crypto",
    "tags": ["sol", "price"],
    "creator_wallet": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
    "resolver_wallet": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
    "state": "ACTIVE",
    "b_parameter": 100_000_000_000,
    "initial_liquidity": 10_000_000_000,
    "current_liquidity": 12_500_000_000,
    "shares_yes": 40_000_000_000,
    "shares_no": 20_000_000_000,
    "current_price_yes": "0.550000000",
    "current_price_no": "0.450000000",
    "total_volume": 8_200_000_000,
    "proposed_outcome": None,
    "final_outcome": None,
    "ipfs_evidence_hash": None,
    "on_chain_votes": {
        "proposal": {"likes": 7, "dislikes": 2, "total": 9},
        "dispute": {"agree": 0, "disagree": 0, "total": 0},
    },
    "created_at": "2026-11-20T09:15:00Z",
    "approved_at": "2026-11-21T09:15:00Z",
    "activated_at": "2026-11-21T09:16:02Z",
    "resolution_proposed_at": None,
    "finalized_at": None,
    "is_cancelled": False,
    "updated_at": "2026-12-06T15:42:10Z",
    "closes_at": "2027-01-01T00:00:00Z",
    "volume_24h": 1_250_000_000,
    "price_change_24h": "0.050000000",
    "trades_count": 42,
    "unique_traders": 9,
    "votes": None,
}
"""An ACTIVE market as listed (no votes open: `votes` is null)."""


class MarketOut(Schema):
    """A market as listed. `on_chain_votes` are the counts recorded on chain; `votes` the live
    tally of off-chain votes while voting is open (null otherwise; always on the detail)."""

    model_config = ConfigDict(json_schema_extra={"examples": [MARKET_EXAMPLE]})

    id: str
    on_chain_address: str
    question: str
    description: str | None
    category: str | None
    tags: list[str]
    creator_wallet: str
    resolver_wallet: str | None
    state: MarketState
    b_parameter: int
    initial_liquidity: int
    current_liquidity: int
    shares_yes: int
    shares_no: int
    current_price_yes: Price = Field(description="Decimal string, 9 places")
    current_price_no: Price = Field(description="Decimal string, 9 places")
    total_volume: int
    proposed_outcome: bool | None
    final_outcome: bool | None
    ipfs_evidence_hash: str | None
    on_chain_votes: VoteCountsOut = Field(
        description="The vote counts recorded in the market's account on chain: the tally the "
        "backend submitted once voting was decided (0 until then), not the live votes."
    )
    created_at: datetime
    approved_at: datetime | None
    activated_at: datetime | None
    resolution_proposed_at: datetime | None
    finalized_at: datetime | None
    is_cancelled: bool
    updated_at: datetime
    closes_at: datetime | None = None
    volume_24h: int = Field(
        description="Lamports traded (paid by buyers, received by sellers) in the current UTC "
        "hour and the 23 before it.",
        examples=[1_250_000_000],
    )
    price_change_24h: PriceChange = Field(
        description="`current_price_yes` minus the YES price when that window opened (the "
        "price after the last trade before it; 0.5 if there was none)."
    )
    trades_count: int = Field(description="Trades of the market, all time.", examples=[42])
    unique_traders: int = Field(description="Wallets that traded in it, all time.", examples=[9])
    votes: VoteCountsOut | None = Field(
        default=None,
        description="Live tally of the off-chain votes (what /api/markets/{id}/votes counts) "
        "while they are open (PROPOSED: proposal votes, DISPUTED: dispute votes); null in the "
        "other states of a listing.",
    )

    @classmethod
    def of_row(cls, row: Mapping[Any, Any]) -> Self:
        """A market as the repository reads it: its columns, `closes_at`, the card columns
        (`CARD_COLUMNS`) and the live tallies (`LIVE_COLUMNS`, null when not counted)."""
        values = dict(row)
        recorded = (int(values.pop(column)) for column in ON_CHAIN_VOTE_COLUMNS)
        values["on_chain_votes"] = VoteCountsOut.of(*recorded)
        volume, opening, trades, traders = (values.pop(column) for column in CARD_COLUMNS)
        values["volume_24h"], values["trades_count"] = int(volume), int(trades)
        values["unique_traders"] = int(traders)
        values["price_change_24h"] = rules.price_change(
            Decimal(values["current_price_yes"]),
            None if opening is None else Decimal(opening),
        )
        live = [values.pop(column) for column in LIVE_COLUMNS]
        if all(count is not None for count in live):
            proposal_yes, proposal_total, dispute_yes, dispute_total = (int(n) for n in live)
            values["votes"] = VoteCountsOut.of(
                proposal_yes,
                proposal_total - proposal_yes,
                dispute_yes,
                dispute_total - dispute_yes,
            )
        return cls.model_validate(values)


class MarketDetailOut(MarketOut):
    """One market: what the listing shows, and the live tally of its off-chain votes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                MARKET_EXAMPLE
                | {
                    "votes": {
                        "proposal": {"likes": 7, "dislikes": 2, "total": 9},
                        "dispute": {"agree": 0, "disagree": 0, "total": 0},
                    }
                }
            ]
        }
    )

    votes: VoteCountsOut = Field(
        description="Live tally of the off-chain votes (what /api/markets/{id}/votes counts), "
        "current with every vote."
    )


Tag = Annotated[Text, Field(json_schema_extra=length_limits(*rules.TAG_CHARS))]
Wallet = Annotated[
    Text, Field(json_schema_extra=length_limits(WALLET_MIN_CHARS, WALLET_MAX_CHARS))
]  # checked by the service, which names the field in its 422


class MarketCreate(Schema):
    question: Text = Field(
        description="{}-{} characters after trimming surrounding space".format(
            *rules.QUESTION_CHARS
        ),
        json_schema_extra=length_limits(*rules.QUESTION_CHARS),
        examples=["Will SOL close above $300 on 2027-01-01?"],
    )
    description: Text | None = Field(default=None, max_length=rules.DESCRIPTION_MAX_CHARS)
    category: Category = Field(
        default=DEFAULT_CATEGORY,
        description="One of the platform's categories",
        examples=["crypto"],
    )
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=rules.MAX_TAGS,
        description="Kept trimmed, lower-case, each once; {}-{} characters each".format(
            *rules.TAG_CHARS
        ),
    )
    resolver_wallet: Wallet | None = Field(default=None, description="Defaults to the creator")
    b_parameter: int = Field(
        default=rules.DEFAULT_B,
        ge=rules.MIN_B,
        le=rules.U63_MAX,
        description="LMSR liquidity in shares of 9 decimals; at least the program's MIN_B "
        "(100 * 10^9): below it every trade on chain fails (InvalidBParameter)",
    )
    initial_liquidity: int = Field(
        default=rules.DEFAULT_INITIAL_LIQUIDITY,
        gt=0,
        le=rules.U63_MAX,
        description="Lamports; more than 0 (the program refuses 0: InvalidLiquidity)",
    )
    closes_at: Moment | None = None

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        return rules.normalise_question(value)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return rules.normalise_tags(value)


class PriceBucketOut(Schema):
    start: datetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: int
    trades: int


class SeriesPointOut(Schema):
    t: datetime
    yes: Price
    no: Price


_SERIES_EXAMPLE = [
    {"t": "2026-12-06T14:00:00Z", "yes": "0.500000000", "no": "0.500000000"},
    {"t": "2026-12-06T15:00:00Z", "yes": "0.540000000", "no": "0.460000000"},
    {"t": "2026-12-06T15:42:10Z", "yes": "0.550000000", "no": "0.450000000"},
]
PRICE_HISTORY_EXAMPLE: dict[str, Any] = {
    "market_id": "9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e9f1c2ab4e07d5a6c3b8e1f0d2c4a6b8e",
    "interval": "1h",
    "buckets": [
        {
            "start": "2026-12-06T14:00:00Z",
            "open": "0.500000000",
            "high": "0.570000000",
            "low": "0.480000000",
            "close": "0.540000000",
            "volume": 2_500_000_000,
            "trades": 7,
        },
        {
            "start": "2026-12-06T15:00:00Z",
            "open": "0.540000000",
            "high": "0.560000000",
            "low": "0.530000000",
            "close": "0.550000000",
            "volume": 400_000_000,
            "trades": 2,
        },
    ],
    "series": _SERIES_EXAMPLE,
}
"""An hourly chart from 14:00 read at 15:42:10: two OHLC buckets, and the series (each
bucket's open, then the current price now)."""


class PriceHistoryOut(Schema):
    """OHLC `buckets` of the YES price and the chart's `series`, over the same range."""

    model_config = ConfigDict(json_schema_extra={"examples": [PRICE_HISTORY_EXAMPLE]})

    market_id: str
    interval: str
    buckets: list[PriceBucketOut]
    series: list[SeriesPointOut] = Field(
        description="The chart's line: the YES (and NO = 1 - YES) price at the start of each "
        "bucket, then the last point: the current price now when the range reaches the "
        "present, else the price at `to`.",
        examples=[_SERIES_EXAMPLE],
    )


class PriceBucketJSON(TypedDict):
    start: datetime
    open: str
    high: str
    low: str
    close: str
    volume: int
    trades: int


class SeriesPointJSON(TypedDict):
    t: datetime
    yes: str
    no: str


class PriceHistoryJSON(TypedDict):
    """`PriceHistoryOut` as plain dicts, its prices already as `Price` writes them."""

    market_id: str
    interval: str
    buckets: list[PriceBucketJSON]
    series: list[SeriesPointJSON]


_PRICE_HISTORY_JSON = TypeAdapter(PriceHistoryJSON)
"""`PriceHistoryOut`'s JSON from plain dicts: up to 1,000 buckets and 1,001 points, each of
which would otherwise be a model instance built only to be serialised, and ~4,000 prices each
written by a call from pydantic's serializer back into Python (tests/markets/test_series.py
checks the two give the same JSON)."""


def price_history_json(
    market_id: str,
    interval: str,
    buckets: Sequence[rules.PriceBucket],
    series: Sequence[rules.SeriesPoint],
) -> bytes:
    """The body of GET /api/markets/{id}/prices (`PriceHistoryOut`). The rules' values are
    typed and exact: nothing is validated again. Each distinct price is written once (a bucket
    opens at the previous close, a point is a bucket's open, flat buckets repeat one price)."""
    text = {
        price: price_text(price)
        for price in {
            *(
                price
                for bucket in buckets
                for price in (bucket.open, bucket.high, bucket.low, bucket.close)
            ),
            *(price for point in series for price in (point.yes, point.no)),
        }
    }
    items: list[PriceBucketJSON] = [
        {
            "start": bucket.start,
            "open": text[bucket.open],
            "high": text[bucket.high],
            "low": text[bucket.low],
            "close": text[bucket.close],
            "volume": bucket.volume,
            "trades": bucket.trades,
        }
        for bucket in buckets
    ]
    points: list[SeriesPointJSON] = [
        {"t": point.t, "yes": text[point.yes], "no": text[point.no]} for point in series
    ]
    return _PRICE_HISTORY_JSON.dump_json(
        {"market_id": market_id, "interval": interval, "buckets": items, "series": points}
    )


class CategoryOut(Schema):
    category: str | None = Field(description="null: the markets proposed without a category")
    total: int = Field(examples=[12])
    by_state: dict[MarketState, int] = Field(
        description="Markets of the category in each state (every state, 0 included).",
        examples=[
            {
                "PROPOSED": 2,
                "APPROVED": 0,
                "ACTIVE": 9,
                "RESOLVING": 0,
                "DISPUTED": 0,
                "FINALIZED": 1,
                "CANCELLED": 0,
            }
        ],
    )


class CategoriesOut(Schema):
    """Every category that has markets, the largest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "category": "crypto",
                            "total": 12,
                            "by_state": dict.fromkeys(MarketState, 0)
                            | {"PROPOSED": 2, "ACTIVE": 9, "FINALIZED": 1},
                        },
                        {
                            "category": "sports",
                            "total": 3,
                            "by_state": dict.fromkeys(MarketState, 0) | {"ACTIVE": 3},
                        },
                    ]
                }
            ]
        }
    )

    items: list[CategoryOut]
