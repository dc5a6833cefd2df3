"""Trades as the indexer stores them, at chosen times, for the tests of what a front end reads."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.chain.addresses import market_id_bytes
from marketd.chain.stream import StreamEvent, TransactionEvents
from marketd.core.container import Container
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import Applied, apply_transactions

PROGRAM_ID = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")
_SLOTS = itertools.count(1_000)


@dataclass(frozen=True)
class Fill:
    """One trade: who, how much (lamports paid, or received for a sale), the YES price after."""

    wallet: str
    amount: int
    price: str
    at: datetime
    outcome: bool = True
    sell: bool = False
    shares: int | None = None


def transaction(market_id: str, fill: Fill) -> TransactionEvents:
    signature = str(Keypair().sign_message(uuid.uuid4().bytes))
    slot, when = next(_SLOTS), int(fill.at.timestamp())
    data = {
        "market_id": market_id_bytes(market_id),
        "user": fill.wallet,
        "outcome": fill.outcome,
        "shares": fill.amount * 2 if fill.shares is None else fill.shares,
        ("proceeds" if fill.sell else "cost"): fill.amount,
        "new_price_yes": int(float(fill.price) * 1_000_000_000),
        "timestamp": when,
    }
    name = "SharesSold" if fill.sell else "SharesBought"
    event = StreamEvent(signature, slot, when, 0, name, data, "confirmed")
    return TransactionEvents(signature, slot, when, "confirmed", None, (event,), "backfill")


async def trade(container: Container, market_id: str, *fills: Fill) -> Applied:
    """Index `fills` in one batch (the market must exist) and refresh its cached pages, as the
    indexer does after a batch."""
    from marketd.markets.cache import MarketCache

    async with container.database.session() as session, session.begin():
        txs = [transaction(market_id, fill) for fill in fills]
        applied = await apply_transactions(session, txs, PROGRAM_ID, FeeSchedule())
    async with container.database.session() as session:
        await MarketCache(container.pages).refresh(session, applied.touched)
    return applied


async def chain_event(
    container: Container, market_id: str, name: str, at: datetime, **fields: object
) -> Applied:
    """Index one program event of the market (e.g. MarketActivated) at `at`."""
    signature = str(Keypair().sign_message(uuid.uuid4().bytes))
    slot, when = next(_SLOTS), int(at.timestamp())
    data = {"market_id": market_id_bytes(market_id), "timestamp": when, **fields}
    event = StreamEvent(signature, slot, when, 0, name, data, "confirmed")
    tx = TransactionEvents(signature, slot, when, "confirmed", None, (event,), "backfill")
    async with container.database.session() as session, session.begin():
        return await apply_transactions(session, [tx], PROGRAM_ID, FeeSchedule())


def wallet() -> str:
    return str(Keypair().pubkey())
