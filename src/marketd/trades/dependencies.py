"""The trade use cases as a FastAPI dependency, built from the container (in the request's
session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketd.core.deps import SessionDep, SettingsDep
from marketd.trades.service import TradeService


async def trade_service(session: SessionDep, settings: SettingsDep) -> TradeService:
    return TradeService(session, settings)


TradeServiceDep = Annotated[TradeService, Depends(trade_service)]
