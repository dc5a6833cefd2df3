from __future__ import annotations

from fastapi import APIRouter, status

from marketd.auth.dependencies import CurrentWallet
from marketd.core.deps import SessionDep, SettingsDep
from marketd.core.openapi import problems
from marketd.trades.rules import TradeType
from marketd.trades.schemas import TradeAccepted, TradeSubmit
from marketd.trades.service import TradeService

router = APIRouter(prefix="/api/trades", tags=["trades"])

TRADE_PROBLEMS = problems(
    {
        404: "No market with this `market_id`.",
        409: "`market-not-trading`: the market is not ACTIVE (`state`).",
        422: "Also `invalid-transaction` (`reason`): the transaction does not decode, is not "
        "signed by the signed-in wallet, is not this kind of trade, or trades another market.",
    }
)
"""What either trade route can refuse (buy and sell take the same checks)."""


@router.post(
    "/buy",
    response_model=TradeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=TRADE_PROBLEMS,
)
async def relay_buy(
    body: TradeSubmit, wallet: CurrentWallet, session: SessionDep, settings: SettingsDep
) -> TradeAccepted:
    """Accept a wallet-signed `buy_shares` transaction; it is pending until indexed."""
    return await TradeService(session, settings).submit(wallet, TradeType.BUY, body)


@router.post(
    "/sell",
    response_model=TradeAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=TRADE_PROBLEMS,
)
async def relay_sell(
    body: TradeSubmit, wallet: CurrentWallet, session: SessionDep, settings: SettingsDep
) -> TradeAccepted:
    """Accept a wallet-signed `sell_shares` transaction; it is pending until indexed."""
    return await TradeService(session, settings).submit(wallet, TradeType.SELL, body)
