"""Trade use cases: accept a signed trade for relay; read a market's or a wallet's trades."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.program import program_coder, program_id
from marketd.config import Settings
from marketd.core import metrics
from marketd.core.errors import Conflict, InvalidTransaction, NotFound
from marketd.core.pagination import decode_cursor, split_page
from marketd.core.schemas import Page
from marketd.markets.repository import MarketRepository
from marketd.models import Trade, TradeSubmission
from marketd.shared.market_state import MarketState
from marketd.trades.repository import TradeRepository
from marketd.trades.rules import TradeRejected, TradeType, parse_trade
from marketd.trades.schemas import TradeAccepted, TradeOut, TradeSubmit
from marketd.trades.status import SubmissionStatus


def trade_cursor_key(trade: Trade | Row[Any]) -> list[Any]:
    return [trade.block_time, str(trade.id)]


class MarketNotTrading(Conflict):
    slug, title = "market-not-trading", "Market not trading"


def _accepted(submission: TradeSubmission) -> TradeAccepted:
    return TradeAccepted(
        signature=submission.signature,
        status=SubmissionStatus(submission.status),
        market_id=submission.market_id,
        trade_type=submission.trade_type,
        outcome="YES" if submission.outcome else "NO",
        amount=submission.amount,
        error=submission.error,
    )


class TradeService:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.repository = TradeRepository(session)

    async def submit(self, wallet: str, trade_type: TradeType, body: TradeSubmit) -> TradeAccepted:
        market = await MarketRepository(self.session).get(body.market_id)
        if market is None:
            raise NotFound(f"No market with id {body.market_id}.")
        try:
            intent = parse_trade(
                body.transaction,
                trade_type,
                program_coder(self.settings),
                program_id(self.settings),
                Pubkey.from_string(wallet),
            )
        except TradeRejected as exc:
            raise InvalidTransaction(str(exc), reason=exc.reason) from exc
        if str(intent.market) != market["on_chain_address"]:
            raise InvalidTransaction(
                "The transaction trades another market than market_id.", reason="wrong_market"
            )
        if market["state"] != MarketState.ACTIVE.value:
            state = market["state"]
            raise MarketNotTrading(f"The market is {state}, not ACTIVE.", state=state)
        fields = {
            "signature": intent.signature,
            "market_id": market["id"],
            "user_wallet": wallet,
            "trade_type": trade_type.value,
            "outcome": intent.outcome,
            "amount": intent.amount,
            "raw_transaction": intent.raw,
            "status": SubmissionStatus.PENDING,
        }
        if not await self.repository.add_submission(fields):
            # The same signed bytes again: idempotent, answered with what is stored.
            return _accepted(await self.repository.submission(intent.signature))
        await self.session.commit()
        metrics.TRADES_RELAYED.labels(trade_type.value).inc()
        return _accepted(TradeSubmission(**fields))

    async def market_trades(self, market_id: str, limit: int, cursor: str | None) -> Page[TradeOut]:
        after = None
        if cursor:
            block_time, trade_id = decode_cursor(cursor, "trades", (datetime, uuid.UUID))
            after = (block_time, trade_id)
        rows = await self.repository.market_page(market_id, limit + 1, after)
        if not rows and not await MarketRepository(self.session).exists(market_id):
            # Only an empty page asks whether the market exists (a market with trades does).
            raise NotFound(f"No market with id {market_id}.")
        page, next_cursor = split_page(rows, limit, "trades", trade_cursor_key)
        return Page[TradeOut](items=[TradeOut.of(t) for t in page], next_cursor=next_cursor)

    async def wallet_trades(self, wallet: str, limit: int, cursor: str | None) -> Page[TradeOut]:
        after = None
        if cursor:
            moment, trade_id = decode_cursor(cursor, "user-trades", (datetime, uuid.UUID))
            after = (moment, trade_id)
        rows = await self.repository.wallet_page(wallet, limit + 1, after)
        page, next_cursor = split_page(rows, limit, "user-trades", trade_cursor_key)
        return Page[TradeOut](items=[TradeOut.of(t) for t in page], next_cursor=next_cursor)
