"""The indexer worker: follows the program's events into the database, cache and bus.

`run` reads the checkpoint and follows `ProgramEventStream.follow(checkpoint)` (backfill to the
head, then live; after any disconnect the stream backfills again from the last transaction it
yielded). A pump task queues the stream's transactions; the indexer drains whatever is queued
(up to `max_batch`) into ONE database transaction together with the checkpoint, so a backfill
is written in large batches and a quiet live stream still indexes each transaction at once.
After the commit it publishes the batch's domain events and rewrites the cache of the touched
markets, in an announcer task that overlaps the next batch's transaction (see `Indexer.run`).

Lag (`marketd_indexer_lag_slots`): slots between the newest program transaction known to exist
and the checkpoint. "Known" is the newest slot the stream delivered or, polled every
`head_interval` seconds, the slot of the program's newest signature on chain
(getSignaturesForAddress, limit 1), so a backfill shows its distance to the head while a quiet
program (no new transactions) shows 0 rather than the distance to the cluster's tip.

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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from solders.pubkey import Pubkey
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.client import ChainClient
from marketd.chain.stream import Checkpoint, ProgramEventStream, TransactionEvents
from marketd.core.container import Container
from marketd.core.events import DomainEvent, publish
from marketd.core.jobs import RunReport, run_rounds
from marketd.core.metrics import INDEXER_LAG_SLOTS
from marketd.indexer.checkpoint import (
    checkpoint_name,
    load_checkpoint,
    save_checkpoint,
    save_finalized_slot,
)
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import Applied, apply_transactions, rebuild_markets
from marketd.markets.cache import MarketCache
from marketd.models import IndexedEventRow, Market, TradeSubmission
from marketd.shared.market_state import MarketState
from marketd.trades.status import SubmissionStatus

log = structlog.get_logger(__name__)

STATUS_LOOKUP_LIMIT = 256  # getSignatureStatuses takes at most 256 signatures


@dataclass
class FinalityReport:
    finalized: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    checkpoint_moved_to: int | None = None
    """The slot the checkpoint moved back to, when it pointed at a dropped transaction."""


async def fee_schedule(client: ChainClient) -> FeeSchedule:
    """The fees of the GlobalConfig on chain, or the program's defaults before it exists."""
    config = await client.global_config()
    if config is None:
        return FeeSchedule()
    data = config.data
    return FeeSchedule(
        data["protocol_fee_bps"], data["resolver_reward_bps"], data["liquidity_provider_fee_bps"]
    )


async def _until(step: Coroutine[Any, Any, None], announcer: asyncio.Task[None]) -> None:
    """Await `step` (a put to or join of the announcements) unless the announcer fails first,
    in which case its error is raised (a dead announcer would never drain the queue)."""
    task = asyncio.create_task(step)
    await asyncio.wait({task, announcer}, return_when=asyncio.FIRST_COMPLETED)
    if announcer.done():  # it only ever ends by failing
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        announcer.result()
    task.result()


class Indexer:
    def __init__(
        self,
        container: Container,
        client: ChainClient,
        stream: ProgramEventStream,
        *,
        max_batch: int = 500,
        missing_checks: int = 2,
        head_interval: float = 5.0,
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
        self.head_interval = head_interval
        self.head_slot = 0
        """The newest slot of a program transaction known to exist (see the module doc)."""
        self.checkpoint_slot: int | None = None
        """The checkpoint's slot, once read or written by this instance."""

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Follow the chain until `stop` is set.

        A batch's announcement (cache refresh, events) runs in one announcer task while
        the next batch is committed: always after its own commit, in commit order, at most one
        batch behind. Everything committed is announced before a clean stop or before the
        stream's error is raised; `indexed` is set once a batch's events are out."""
        self.fees = await fee_schedule(self.client)
        async with self.container.database.session() as session:
            since = await load_checkpoint(session, self.name)
        self._moved_to(since.slot if since is not None else 0)
        queue: asyncio.Queue[TransactionEvents] = asyncio.Queue(maxsize=self.max_batch * 4)
        announcements: asyncio.Queue[Applied] = asyncio.Queue(maxsize=1)
        pump = asyncio.create_task(self._pump(since, queue))
        announcer = asyncio.create_task(self._announcer(announcements))
        stopping = asyncio.create_task(stop.wait())
        head = asyncio.create_task(self._watch_head())
        try:
            while not stop.is_set():
                getter = asyncio.create_task(queue.get())
                await asyncio.wait(
                    {getter, stopping, pump, announcer}, return_when=asyncio.FIRST_COMPLETED
                )
                if not getter.done():
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    if announcer.done():
                        announcer.result()  # announcing failed: raise its error
                    if pump.done():
                        await _until(announcements.join(), announcer)
                        pump.result()  # the stream ended: raise its error
                    continue
                batches = [getter.result()]
                while len(batches) < self.max_batch and not queue.empty():
                    batches.append(queue.get_nowait())
                applied = await self._commit(batches)
                await _until(announcements.put(applied), announcer)
            await _until(announcements.join(), announcer)
            # Stopped (shutdown, or the leader lock went to another instance): this instance
            # no longer indexes, and a lag it kept showing would be stale. A crash keeps it:
            # the job restarts here.
            INDEXER_LAG_SLOTS.set(0)
        except asyncio.CancelledError:
            INDEXER_LAG_SLOTS.set(0)
            raise
        finally:
            for task in (pump, announcer, stopping, head):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(
        self, since: Checkpoint | None, queue: asyncio.Queue[TransactionEvents]
    ) -> None:
        # Closed here, when the pump is cancelled at a full queue, rather than by the event
        # loop's async-generator finaliser at shutdown: closing it closes its websocket.
        async with contextlib.aclosing(self.stream.follow(since)) as batches:
            async for batch in batches:
                self._saw(batch.slot)
                await queue.put(batch)

    async def _announcer(self, announcements: asyncio.Queue[Applied]) -> None:
        while True:
            applied = await announcements.get()
            try:
                await self._announce(applied.events, applied.touched)
            finally:
                announcements.task_done()
            self.indexed.set()

    async def index(self, batches: Sequence[TransactionEvents]) -> Applied:
        """Index transactions (chain order), move the checkpoint, in one DB transaction; then
        refresh the cache and publish the events."""
        applied = await self._commit(batches)
        await self._announce(applied.events, applied.touched)
        self.indexed.set()
        return applied

    async def _commit(self, batches: Sequence[TransactionEvents]) -> Applied:
        async with self.container.database.session() as session, session.begin():
            applied = await apply_transactions(session, batches, self.program_id, self.fees)
            await save_checkpoint(session, self.name, batches[-1].checkpoint)
        self._moved_to(batches[-1].slot)
        self.fees = applied.fees
        if applied.reread:
            await self._reread(applied.reread)
        return applied

    async def _reread(self, market_ids: set[str]) -> None:
        """Copy what no event carried from the accounts of FINALIZED markets (terminal, so
        a later read cannot be newer than what it completes): the disputed counts."""
        for market_id in sorted(market_ids):
            account = await self.client.market(market_id)
            if account is None or account.state is not MarketState.FINALIZED:
                continue
            async with self.container.database.session() as session, session.begin():
                market = await session.get(Market, market_id)
                if market is not None:
                    market.dispute_agree = int(account.data["dispute_agree"])
                    market.dispute_disagree = int(account.data["dispute_disagree"])

    # ------------------------------------------------------------------ lag
    def _saw(self, slot: int) -> None:
        if slot > self.head_slot:
            self.head_slot = slot
            self._report_lag()

    def _moved_to(self, slot: int) -> None:
        self.checkpoint_slot = slot
        self._report_lag()

    def _report_lag(self) -> None:
        if self.checkpoint_slot is not None:
            INDEXER_LAG_SLOTS.set(max(0, self.head_slot - self.checkpoint_slot))

    async def observe_head(self) -> int | None:
        """Read the slot of the program's newest transaction on chain and update the lag."""
        newest = await self.client.signatures_for_address(self.program_id, limit=1)
        if not newest:
            return None
        self._saw(newest[0].slot)
        return newest[0].slot

    async def _watch_head(self) -> None:
        while True:
            try:
                await self.observe_head()
            except Exception:
                log.warning("reading the program's newest transaction failed", exc_info=True)
            await asyncio.sleep(self.head_interval)

    async def _announce(self, events: Sequence[DomainEvent], touched: set[str]) -> None:
        if touched:
            async with self.container.database.session() as session:
                await self.cache.refresh(session, touched)
        for event in events:
            await publish(self.container.bus, event)

    # ------------------------------------------------------------------ finality and forks
    async def check_finality(self) -> FinalityReport:
        """Mark finalized events; roll back transactions a fork dropped. See the module doc."""
        report = FinalityReport()
        async with self.container.database.session() as session:
            rows = await session.execute(
                select(IndexedEventRow.signature)
                .where(IndexedEventRow.commitment == "confirmed")
                .group_by(IndexedEventRow.signature)
                .order_by(func.min(IndexedEventRow.slot))
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
        changes: list[DomainEvent] = []
        async with self.container.database.session() as session, session.begin():
            if report.finalized:
                await session.execute(
                    update(IndexedEventRow)
                    .where(IndexedEventRow.signature.in_(report.finalized))
                    .values(commitment="finalized")
                )
                await save_finalized_slot(session, self.name, finalized_slot)
            if report.rolled_back:
                changes = await self._roll_back(session, report)
        for signature in report.rolled_back:
            self._missing.pop(signature, None)
        if report.checkpoint_moved_to is not None:
            self._moved_to(report.checkpoint_moved_to)
        await self._announce(changes, set(report.rebuilt))
        return report

    async def _roll_back(self, session: AsyncSession, report: FinalityReport) -> list[DomainEvent]:
        gone = report.rolled_back
        log.warning("confirmed transactions dropped by a fork; rolling back", signatures=gone)
        markets = await session.scalars(
            select(IndexedEventRow.market_id)
            .where(IndexedEventRow.signature.in_(gone), IndexedEventRow.market_id.is_not(None))
            .distinct()
        )
        report.rebuilt = sorted(m for m in markets.all() if m is not None)
        await session.execute(delete(IndexedEventRow).where(IndexedEventRow.signature.in_(gone)))
        await session.execute(
            update(TradeSubmission)
            .where(
                TradeSubmission.signature.in_(gone),
                TradeSubmission.status == SubmissionStatus.CONFIRMED,
            )
            .values(status=SubmissionStatus.PENDING)
        )
        current = await load_checkpoint(session, self.name)
        if current is not None and current.signature in gone:
            newest = (
                await session.execute(
                    select(IndexedEventRow.signature, IndexedEventRow.slot)
                    .order_by(IndexedEventRow.slot.desc(), IndexedEventRow.created_at.desc())
                    .limit(1)
                )
            ).first()
            await save_checkpoint(
                session, self.name, Checkpoint(newest[0], newest[1]) if newest else None
            )
            report.checkpoint_moved_to = newest[1] if newest else 0
        return await rebuild_markets(session, report.rebuilt, self.program_id, self.fees)

    async def run_finality(self, stop: asyncio.Event, interval: float = 5.0) -> None:
        """`check_finality` every `interval` seconds until `stop` is set."""

        async def check() -> RunReport:
            report = await self.check_finality()
            return RunReport.tally(
                finalized=len(report.finalized), rolled_back=len(report.rolled_back)
            )

        await run_rounds("indexer-finality", stop, check, interval)
