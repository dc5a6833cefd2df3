"""Market routes: browse, read, propose, price history. A market's trades, votes and snapshots
are listed under its path by their own domains (trades/, votes/, snapshots/)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from starlette.responses import Response

from marketd.auth.dependencies import CurrentWallet
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.schemas import Cursor, MarketId, Moment, Page, Text
from marketd.markets.dependencies import MarketReadsDep, MarketServiceDep
from marketd.markets.repository import MarketFilter
from marketd.markets.rules import CATEGORY_CHARS
from marketd.markets.schemas import (
    CategoriesOut,
    MarketCreate,
    MarketDetailOut,
    MarketOut,
    MarketSort,
    PriceHistoryOut,
)
from marketd.shared.market_state import MarketState

router = APIRouter(prefix="/api/markets", tags=["markets"])
MAX_TRENDING = 50


@router.get(
    "",
    response_model=Page[MarketOut],
    responses=problems(
        {422: "Also `invalid-cursor`: the cursor is malformed or from another listing."}
    ),
)
async def list_markets(
    reads: MarketReadsDep,
    state: MarketState | None = None,
    category: Annotated[Text | None, Query(max_length=CATEGORY_CHARS[1])] = None,
    q: Annotated[Text | None, Query(max_length=200, description="Text in the question")] = None,
    sort: MarketSort = MarketSort.NEWEST,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Response:
    """Browse markets: filter by state, category and question text; sort newest, by volume, or
    closing soonest. First pages without a text search are served from the listing cache."""
    filters = MarketFilter(state=state, category=category, text=q)
    return await reads.listing(filters, sort, limit, cursor)


# Before `/{market_id}`, which would take these names for ids.
@router.get("/categories", response_model=CategoriesOut, responses=problems({}))
async def categories(reads: MarketReadsDep) -> Response:
    """Every category that has markets, with its markets counted by state (largest first;
    `category` null counts the markets without one). Served from the listing cache."""
    return await reads.categories()


@router.get("/trending", response_model=Page[MarketOut], responses=problems({}))
async def trending(
    reads: MarketReadsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TRENDING)] = 10,
) -> Response:
    """ACTIVE markets ranked by recent activity: score = volume_24h x (1 + 4 x
    |price_change_24h|) (a 25-point move of the YES price counts as much as doubling the
    volume; `volume_24h` and `price_change_24h` as each card shows them). Markets that did not
    trade in the window follow by all-time volume when fewer than `limit` did. One page
    (`next_cursor` is null), served from the listing cache like the listing's first pages."""
    return await reads.trending(limit)


@router.get(
    "/{market_id}",
    response_model=MarketDetailOut,
    responses=problems({404: "No market with this id or account address."}),
)
async def get_market(
    market_id: Annotated[
        MarketId,
        Path(
            description="The market's id (the lowercase hex of its 32-byte on-chain id; "
            "marketd's older markets: a UUID), or its `on_chain_address` (the base58 address "
            "of its market account)."
        ),
    ],
    reads: MarketReadsDep,
) -> Response:
    """One market (served from the market cache the indexer keeps current): `votes` is the live
    tally of off-chain votes (a vote refreshes it at once), `on_chain_votes` the counts
    recorded on chain once voting was decided.

    The path names the market by its `id` or by its `on_chain_address`: a base58 account
    address (never the shape of an id) is looked up among the markets' addresses, and the
    market found is served exactly as under its id (`id` in the body is the canonical key)."""
    return await reads.detail(market_id)


@router.post(
    "",
    response_model=MarketDetailOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(
        {
            422: "Also `invalid-range` (`field`): `closes_at` is not in the future, or "
            "`resolver_wallet` is not a Solana address."
        }
    ),
)
async def propose_market(
    body: MarketCreate, wallet: CurrentWallet, markets: MarketServiceDep
) -> MarketDetailOut:
    """Register a proposed market (state PROPOSED) created by the signed-in wallet."""
    return await markets.propose(wallet, body)


@router.get(
    "/{market_id}/related",
    response_model=Page[MarketOut],
    responses=problems({404: "No market with this id."}),
)
async def related_markets(
    market_id: MarketId,
    reads: MarketReadsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TRENDING)] = 10,
) -> Response:
    """Other markets of the same category or sharing a tag: ACTIVE ones first; among them the
    same category first, then more shared tags, then more traded. One page (`next_cursor` is
    null), served from the listing cache."""
    return await reads.related(market_id, limit)


@router.get(
    "/{market_id}/prices",
    response_model=PriceHistoryOut,
    responses=problems(
        {
            404: "No market with this id.",
            422: "Also `invalid-range` (`field`): `from` is not before `to`, or the range "
            "needs more than 1,000 buckets of `interval`.",
        }
    ),
)
async def market_prices(
    market_id: MarketId,
    markets: MarketServiceDep,
    interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h",
    start: Annotated[Moment | None, Query(alias="from")] = None,
    end: Annotated[Moment | None, Query(alias="to")] = None,
) -> Response:
    """YES price history over [`from`, `to`) at the resolution `interval` (at most 1,000
    buckets): OHLC `buckets`, and `series`, the chart's line [{t, yes, no}] sampled at each
    bucket's start with the current price as its last point. Intervals of an hour or more are
    read from the hourly rollups (cost independent of the number of trades) when `to` is on an
    hour or omitted (now); shorter ones from the range's trades."""
    history = await markets.price_history(market_id, interval, start, end)
    # Serialised once: up to 1,000 buckets and points, which FastAPI would validate again.
    return Response(history, media_type="application/json")
