"""Synthetic decoded program events (as `ProgramEventStream` yields them) for indexer tests."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.chain.addresses import market_id_bytes, new_market_id
from marketd.chain.stream import StreamEvent, TransactionEvents
from marketd.core.container import Container
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import Applied, apply_transactions

PROGRAM_ID = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")
T0 = 1_700_000_000
FEES = FeeSchedule()


async def index(
    container: Container, batches: list[TransactionEvents], fees: FeeSchedule = FEES
) -> Applied:
    """Persist `batches` in one transaction, as the indexer does."""
    async with container.database.session() as session, session.begin():
        return await apply_transactions(session, batches, PROGRAM_ID, fees)


class Tape:
    """Builds transactions of one or more events with increasing slots and unique signatures."""

    def __init__(self) -> None:
        self._slot = itertools.count(100)
        self.market_id = new_market_id()  # 32 random bytes' hex, as the platform's

    def wallet(self) -> Pubkey:
        return Keypair().pubkey()

    def tx(
        self, *events: tuple[str, dict[str, Any]], err: Any = None, slot: int | None = None
    ) -> TransactionEvents:
        signature = str(Keypair().sign_message(uuid.uuid4().bytes))
        slot = next(self._slot) if slot is None else slot
        decoded = tuple(
            StreamEvent(signature, slot, T0 + slot, index, name, data, "confirmed")
            for index, (name, data) in enumerate(events)
        )
        return TransactionEvents(
            signature, slot, T0 + slot, "confirmed", err, () if err else decoded, "backfill"
        )

    def mid(self, market_id: str | None = None) -> bytes:
        return market_id_bytes(market_id or self.market_id)
