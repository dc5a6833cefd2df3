from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime

from marketd.auth.dependencies import CurrentWallet
from marketd.core.deps import ContainerDep, SessionDep
from marketd.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from marketd.core.schemas import Page
from marketd.indexer.cache import MarketCache
from marketd.markets.repository import MarketFilter
from marketd.markets.rules import MarketState
from marketd.markets.schemas import MarketCreate, MarketOut, MarketSort, PriceHistoryOut
from marketd.markets.service import MarketService
from marketd.trades.schemas import TradeOut
from marketd.trades.service import TradeService
from marketd.votes.rules import VoteKind
from marketd.votes.schemas import MarketVotesOut
from marketd.votes.service import VoteService

router = APIRouter(prefix="/api/markets", tags=["markets"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


async def market_service(session: SessionDep, container: ContainerDep) -> MarketService:
    return MarketService(session, container.settings, container.bus, MarketCache(container.cache))


Markets = Annotated[MarketService, Depends(market_service)]


@router.get("", response_model=Page[MarketOut])
async def list_markets(
    markets: Markets,
    state: MarketState | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the question")] = None,
    sort: MarketSort = MarketSort.NEWEST,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[MarketOut]:
    """Browse markets: filter by state, category and question text; sort newest, by volume, or
    closing soonest."""
    filters = MarketFilter(state=state, category=category, text=q)
    return await markets.list_markets(filters, sort, limit, cursor)


@router.get("/{market_id}", response_model=MarketOut)
async def get_market(market_id: str, markets: Markets) -> MarketOut:
    """One market."""
    return await markets.get_market(market_id)


@router.post("", response_model=MarketOut, status_code=status.HTTP_201_CREATED)
async def propose_market(body: MarketCreate, wallet: CurrentWallet, markets: Markets) -> MarketOut:
    """Register a proposed market (state PROPOSED) created by the signed-in wallet."""
    return await markets.propose(wallet, body)


@router.get("/{market_id}/trades", response_model=Page[TradeOut])
async def market_trades(
    market_id: str,
    markets: Markets,
    session: SessionDep,
    container: ContainerDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[TradeOut]:
    """A market's confirmed trades, newest first."""
    await markets.require_market(market_id)
    return await TradeService(session, container.settings).market_trades(market_id, limit, cursor)


@router.get("/{market_id}/votes", response_model=MarketVotesOut)
async def market_votes(
    market_id: str,
    markets: Markets,
    session: SessionDep,
    container: ContainerDep,
    kind: VoteKind = VoteKind.PROPOSAL,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> MarketVotesOut:
    """The tally and every counted vote (by wallet), so anyone can recount."""
    await markets.require_market(market_id)
    return await VoteService(session, container.bus).market_votes(kind, market_id, limit, cursor)


@router.get("/{market_id}/prices", response_model=PriceHistoryOut)
async def market_prices(
    market_id: str,
    markets: Markets,
    interval: Literal["1m", "5m", "15m", "1h", "4h", "1d"] = "1h",
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> PriceHistoryOut:
    """YES price history as OHLC buckets from trades (at most 1,000 buckets)."""
    return await markets.price_history(market_id, interval, start, end)
