"""Trade routes: relay a signed trade; a market's trades and a wallet's trades (listed under
the market and the user, where clients look for them, but served by the trades domain)."""

from __future__ import annotations

from fastapi import APIRouter, status

from marketd.auth.dependencies import CurrentWallet
from marketd.core.openapi import problems
from marketd.core.pagination import DEFAULT_LIMIT, PageLimit
from marketd.core.schemas import Cursor, MarketId, Page, WalletId
from marketd.trades.dependencies import TradeServiceDep
from marketd.trades.rules import TradeType
from marketd.trades.schemas import TradeAccepted, TradeOut, TradeSubmit

submitting = APIRouter(prefix="/api/trades", tags=["trades"])
by_market = APIRouter(prefix="/api/markets", tags=["markets"])
by_wallet = APIRouter(prefix="/api/users", tags=["users"])
CURSOR_PROBLEM = "Also `invalid-cursor`: the cursor is malformed or from another listing."

TRADE_PROBLEMS = problems(
    {
        404: "No market with this `market_id`.",
        409: "`market-not-trading`: the market is not ACTIVE (`state`).",
        422: "Also `invalid-transaction` (`reason`): the transaction does not decode, is not "
        "signed by the signed-in wallet, is not this kind of trade, or trades another market.",
    }
)
"""What either trade route can refuse (buy and sell take the same checks)."""


@submitting.post(
    "/buy",
    response_model=TradeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=TRADE_PROBLEMS,
)
async def relay_buy(
    body: TradeSubmit, wallet: CurrentWallet, trades: TradeServiceDep
) -> TradeAccepted:
    """Accept a wallet-signed `buy_shares` transaction; it is pending until indexed."""
    return await trades.submit(wallet, TradeType.BUY, body)


@submitting.post(
    "/sell",
    response_model=TradeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=TRADE_PROBLEMS,
)
async def relay_sell(
    body: TradeSubmit, wallet: CurrentWallet, trades: TradeServiceDep
) -> TradeAccepted:
    """Accept a wallet-signed `sell_shares` transaction; it is pending until indexed."""
    return await trades.submit(wallet, TradeType.SELL, body)


@by_market.get(
    "/{market_id}/trades",
    response_model=Page[TradeOut],
    responses=problems({404: "No market with this id.", 422: CURSOR_PROBLEM}),
)
async def market_trades(
    market_id: MarketId,
    trades: TradeServiceDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Page[TradeOut]:
    """A market's confirmed trades, newest first."""
    return await trades.market_trades(market_id, limit, cursor)


@by_wallet.get(
    "/{wallet}/trades", response_model=Page[TradeOut], responses=problems({422: CURSOR_PROBLEM})
)
async def user_trades(
    wallet: WalletId,
    trades: TradeServiceDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: Cursor | None = None,
) -> Page[TradeOut]:
    """A wallet's confirmed trades, newest first."""
    return await trades.wallet_trades(wallet, limit, cursor)


router = APIRouter()
"""Every trade route: the relay's, and the trade listings nested under markets and users."""
for _part in (submitting, by_market, by_wallet):
    router.include_router(_part)
