"""The indexer worker: follows the program's events into the database, cache and bus.

`run` reads the checkpoint and follows `ProgramEventStream.follow(checkpoint)` (backfill to the
head, then live; after any disconnect the stream backfills again from the last transaction it
yielded). A pump task queues the stream's transactions; the indexer drains whatever is queued
(up to `max_batch`) into ONE database transaction together with the checkpoint, so a backfill
is written in large batches and a quiet live stream still indexes each transaction at once.
After the commit it publishes the bus notices and rewrites the cache of the touched markets.

Commitment and forks (`check_finality`): events are indexed at `confirmed`. Periodically the
signatures of not-yet-finalized events are looked up (getSignatureStatuses): finalized ones are
marked `finalized`; one the node no longer knows, `missing_checks` times in a row, was dropped
by a fork: its events are deleted, the markets it touched are rebuilt from their remaining
events (`store.rebuild_markets`), and the checkpoint moves back before it if it pointed at it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from solders.pubkey import Pubkey
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.client import ChainClient
from marketd.chain.stream import Checkpoint, ProgramEventStream, TransactionEvents
from marketd.core.container import Container
from marketd.indexer.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    save_checkpoint,
    save_finalized_slot,
)
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.handlers import Notice
from marketd.indexer.store import Applied, apply_transactions, rebuild_markets
from marketd.markets.cache import MarketCache
from marketd.models import ChainEvent, TradeSubmission

log = structlog.get_logger(__name__)

STATUS_LOOKUP_LIMIT = 256  # getSignatureStatuses takes at most 256 signatures


@dataclass
class FinalityReport:
    finalized: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)


async def fee_schedule(client: ChainClient) -> FeeSchedule:
    """The fees of the GlobalConfig on chain, or the program's defaults before it exists."""
    config = await client.global_config()
    if config is None:
        return FeeSchedule()
    data = config.data
    return FeeSchedule(
        data["protocol_fee_bps"], data["resolver_reward_bps"], data["liquidity_provider_fee_bps"]
    )


class Indexer:
    def __init__(
        self,
        container: Container,
        client: ChainClient,
        stream: ProgramEventStream,
        *,
        max_batch: int = 500,
        missing_checks: int = 2,
    ) -> None:
        self.container = container
        self.client = client
        self.stream = stream
        self.program_id: Pubkey = client.program_id
        self.name = checkpoint_name(str(self.program_id))
        self.cache = MarketCache(container.pages)
        self.fees = FeeSchedule()
        self.max_batch = max_batch
        self.missing_checks = missing_checks
        self.indexed = asyncio.Event()
        """Set after every committed batch (lets a caller wait for progress)."""
        self._missing: Counter[str] = Counter()

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Follow the chain until `stop` is set."""
        self.fees = await fee_schedule(self.client)
        async with self.container.database.session() as session:
            since = await load_checkpoint(session, self.name)
        queue: asyncio.Queue[TransactionEvents] = asyncio.Queue(maxsize=self.max_batch * 4)
        pump = asyncio.create_task(self._pump(since, queue))
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.create_task(queue.get())
                await asyncio.wait({getter, stopping, pump}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    if pump.done():
                        pump.result()  # the stream ended: raise its error
                    continue
                batches = [getter.result()]
                while len(batches) < self.max_batch and not queue.empty():
                    batches.append(queue.get_nowait())
                await self.index(batches)
        finally:
            for task in (pump, stopping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(
        self, since: Checkpoint | None, queue: asyncio.Queue[TransactionEvents]
    ) -> None:
        async for batch in self.stream.follow(since):
            await queue.put(batch)

    async def index(self, batches: Sequence[TransactionEvents]) -> Applied:
        """Index transactions (chain order) and move the checkpoint, in one DB transaction."""
        async with self.container.database.session() as session, session.begin():
            applied = await apply_transactions(session, batches, self.program_id, self.fees)
            await save_checkpoint(session, self.name, batches[-1].checkpoint)
        self.fees = applied.fees
        await self._announce(applied.notices, applied.touched)
        self.indexed.set()
        return applied

    async def _announce(self, notices: Sequence[Notice], touched: set[str]) -> None:
        if touched:
            async with self.container.database.session() as session:
                await self.cache.refresh(session, touched)
        for notice in notices:
            await self.container.bus.publish(notice.topic, notice.payload)

    # ------------------------------------------------------------------ finality and forks
    async def check_finality(self) -> FinalityReport:
        """Mark finalized events; roll back transactions a fork dropped. See the module doc."""
        report = FinalityReport()
        async with self.container.database.session() as session:
            rows = await session.execute(
                select(ChainEvent.signature)
                .where(ChainEvent.commitment == "confirmed")
                .group_by(ChainEvent.signature)
                .order_by(func.min(ChainEvent.slot))
                .limit(STATUS_LOOKUP_LIMIT)
            )
            signatures = [row[0] for row in rows.all()]
        if not signatures:
            return report
        statuses = await self.client.signature_statuses(signatures)
        finalized_slot = 0
        for signature, status in zip(signatures, statuses, strict=True):
            if status is None:
                self._missing[signature] += 1
                if self._missing[signature] >= self.missing_checks:
                    report.rolled_back.append(signature)
                continue
            self._missing.pop(signature, None)
            if status.confirmation == "finalized":
                report.finalized.append(signature)
                finalized_slot = max(finalized_slot, status.slot)
        notices: list[Notice] = []
        async with self.container.database.session() as session, session.begin():
            if report.finalized:
                await session.execute(
                    update(ChainEvent)
                    .where(ChainEvent.signature.in_(report.finalized))
                    .values(commitment="finalized")
                )
                await save_finalized_slot(session, self.name, finalized_slot)
            if report.rolled_back:
                notices = await self._roll_back(session, report)
        for signature in report.rolled_back:
            self._missing.pop(signature, None)
        await self._announce(notices, set(report.rebuilt))
        return report

    async def _roll_back(self, session: AsyncSession, report: FinalityReport) -> list[Notice]:
        gone = report.rolled_back
        log.warning("confirmed transactions dropped by a fork; rolling back", signatures=gone)
        markets = await session.scalars(
            select(ChainEvent.market_id)
            .where(ChainEvent.signature.in_(gone), ChainEvent.market_id.is_not(None))
            .distinct()
        )
        report.rebuilt = sorted(m for m in markets.all() if m is not None)
        await session.execute(delete(ChainEvent).where(ChainEvent.signature.in_(gone)))
        await session.execute(
            update(TradeSubmission)
            .where(TradeSubmission.signature.in_(gone), TradeSubmission.status == "confirmed")
            .values(status="pending")
        )
        current = await load_checkpoint(session, self.name)
        if current is not None and current.signature in gone:
            newest = (
                await session.execute(
                    select(ChainEvent.signature, ChainEvent.slot)
                    .order_by(ChainEvent.slot.desc(), ChainEvent.created_at.desc())
                    .limit(1)
                )
            ).first()
            await save_checkpoint(
                session, self.name, Checkpoint(newest[0], newest[1]) if newest else None
            )
        return await rebuild_markets(session, report.rebuilt, self.program_id, self.fees)

    async def run_finality(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        while not stop.is_set():
            try:
                await self.check_finality()
            except Exception:
                log.exception("finality check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
