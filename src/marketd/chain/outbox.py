"""The chain outbox: every backend-signed action as a row, and the runner that lands it once.

Enqueue a row inside the caller's own transaction (`enqueue`), so the decision and the intent
to act on chain commit together. `OutboxRunner` then drives each due row:

1. A row that already holds signed bytes is followed up first: its signature's status decides.
   Landed and confirmed -> done. Not landed and the blockhash still valid -> the SAME bytes are
   sent again (Solana deduplicates by signature, so this can never act twice). Expired and
   never landed (checked again after the expiry check) -> go on to 2.
2. The market's on-chain account is read: if it already is where the action takes it, the row
   is confirmed without any transaction. Otherwise a new transaction is signed with a fresh
   blockhash, and its bytes, signature, blockhash and last valid block height are committed
   BEFORE the first send. A crash at any point therefore resumes at 1, never signs twice
   while the previous transaction could still land.
3. Confirmation: the row is marked confirmed and the intent's `on_confirmed` handler runs in
   the same database transaction, so the follow-up (e.g. the market becomes APPROVED through
   `marketd.markets.lifecycle`, and its `MarketStateChanged` is published once that
   transaction commits) happens exactly when the row is confirmed.

Claiming: `attempts` is also the row's claim token. A runner claims a due row by bumping
`attempts` and pushing `next_attempt_at` a lease ahead; every later write is conditional on the
token, so a second instance (or a runner that outlived its lease) can never write over it.
Failures: retryable errors (RPC down, market not created yet, blockhash expired, a period not
over) reschedule with exponential backoff; a permanent program error (wrong state, not enough
votes, ...) ends the row as `failed` with the IDL error name, unless the market turns out to be
in the target state already (another actor did it), which confirms it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.actions import ACTIONS, ActionContext, ChainAction, Outcome, action_for
from marketd.chain.actions import idempotency_key as default_idempotency_key
from marketd.chain.client import ChainClient, SignatureState, SignedTransaction
from marketd.chain.errors import (
    BlockhashExpired,
    ChainError,
    ConfirmationTimeout,
    MarketNotOnChain,
    StaleBlockhash,
    TransactionFailed,
)
from marketd.chain.keys import BackendKey
from marketd.core.database import Database, upsert_insert
from marketd.core.jobs import RunReport, run_rounds
from marketd.core.waits import Backoff
from marketd.models import ChainOutbox
from marketd.models.base import utcnow

log = structlog.get_logger("marketd.chain.outbox")

OUTBOX_ROWS = Gauge("marketd_chain_outbox_rows", "Chain outbox rows by status.", ["status"])
OUTBOX_GAVE_UP = Counter(
    "marketd_chain_outbox_gave_up_total",
    "Actions ended failed because retrying could never succeed (alert on any increase).",
    ["intent", "error"],
)
OUTBOX_RESULTS = Counter(
    "marketd_chain_outbox_results_total",
    "Outcomes of processing a chain outbox row.",
    ["intent", "result"],
)
OUTBOX_SENDS = Counter(
    "marketd_chain_outbox_sends_total",
    "Transactions sent by the outbox: first sends and re-sends of the same bytes.",
    ["intent", "kind"],
)

OutboxHandler = Callable[[AsyncSession, ChainOutbox], Awaitable[None]]
"""Called with the session of the transaction that marks the row confirmed (or failed)."""
StepObserver = Callable[[str, ChainOutbox], Awaitable[None]]
# Told the market of every row whose stored state just changed (after the commit), so views
# of it (e.g. the votes page's `submitted`) can be refreshed.
ChangeListener = Callable[[str], Awaitable[None]]
"""Sees each step of a row (claimed, signed, sent, landed): tracing, and crash tests."""


class OutboxStatus(StrEnum):
    PENDING = "pending"  # nothing signed yet (or the last transaction can no longer land)
    SENT = "sent"  # signed bytes committed; sent at least once or about to be
    CONFIRMED = "confirmed"
    FAILED = "failed"


ACTIVE_STATUSES = (OutboxStatus.PENDING.value, OutboxStatus.SENT.value)


class RowResult(StrEnum):
    CONFIRMED = "confirmed"
    WAITING = "waiting"  # sent, confirmation not seen yet
    RETRY = "retry"  # a retryable error; rescheduled with backoff
    FAILED = "failed"
    SKIPPED = "skipped"  # claimed by another runner meanwhile


class _LostClaim(Exception):
    """Another runner owns the row now; stop touching it."""


def chain_info(row: ChainOutbox) -> dict[str, Any]:
    """What the runner recorded about the row (`payload["chain"]`): outcome, error, ..."""
    payload = row.payload or {}
    info = payload.get("chain")
    return dict(info) if isinstance(info, dict) else {}


def outcome_of(row: ChainOutbox) -> str | None:
    """The action's outcome (see `actions.Outcome`), e.g. "awaiting_admin_approval"."""
    outcome = chain_info(row).get("outcome")
    return outcome if isinstance(outcome, str) else None


# ------------------------------------------------------------------------------------ enqueue
async def enqueue(
    session: AsyncSession,
    intent: str,
    market_id: str | None,
    arguments: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> ChainOutbox:
    """Add an action (no commit: it joins the caller's transaction); same key -> same row.

    The key defaults to `<intent>:<market_id>` (one action of each intent per market). A row
    already under the key is returned unchanged, whatever the new arguments are; use another
    key (e.g. with a round number) to act again after a failure.
    """
    action_for(intent).check_arguments(arguments)
    key = idempotency_key or default_idempotency_key(intent, market_id or "-")
    now = utcnow()
    insert = upsert_insert(session)
    statement = (
        insert(ChainOutbox)
        .values(
            id=uuid.uuid4(),
            idempotency_key=key,
            intent=intent,
            market_id=market_id,
            arguments=dict(arguments),
            payload=dict(payload) if payload is not None else None,
            status=OutboxStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    await session.execute(statement)
    row = await OutboxRepository(session).by_key(key)
    assert row is not None  # inserted or already there
    return row


# ------------------------------------------------------------------------------------ queries
class OutboxRepository:
    """Every query of the chain_outbox table."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_key(self, key: str) -> ChainOutbox | None:
        result = await self.session.execute(
            select(ChainOutbox).where(ChainOutbox.idempotency_key == key)
        )
        return result.scalar_one_or_none()

    async def get(self, row_id: uuid.UUID) -> ChainOutbox | None:
        return await self.session.get(ChainOutbox, row_id, populate_existing=True)

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, int]]:
        """(id, attempts) of active rows whose time has come, oldest first."""
        result = await self.session.execute(
            select(ChainOutbox.id, ChainOutbox.attempts)
            .where(
                ChainOutbox.status.in_(ACTIVE_STATUSES),
                ChainOutbox.next_attempt_at <= now,
            )
            .order_by(ChainOutbox.next_attempt_at)
            .limit(limit)
        )
        return [(row_id, attempts) for row_id, attempts in result.all()]

    async def next_due(self) -> datetime | None:
        """When the earliest active row comes due (None: no active row)."""
        earliest: datetime | None = await self.session.scalar(
            select(func.min(ChainOutbox.next_attempt_at)).where(
                ChainOutbox.status.in_(ACTIVE_STATUSES)
            )
        )
        return earliest

    async def claim(self, row_id: uuid.UUID, seen_attempts: int, lease_until: datetime) -> bool:
        result = await self.session.execute(
            update(ChainOutbox)
            .where(
                ChainOutbox.id == row_id,
                ChainOutbox.attempts == seen_attempts,
                ChainOutbox.status.in_(ACTIVE_STATUSES),
            )
            .values(attempts=seen_attempts + 1, next_attempt_at=lease_until, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def update_claimed(self, row_id: uuid.UUID, token: int, **values: Any) -> None:
        """Write `values` if the row is still ours (claim token = attempts)."""
        result = await self.session.execute(
            update(ChainOutbox)
            .where(ChainOutbox.id == row_id, ChainOutbox.attempts == token)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise _LostClaim(str(row_id))

    async def counts_by_status(self) -> dict[str, int]:
        result = await self.session.execute(
            select(ChainOutbox.status, func.count()).group_by(ChainOutbox.status)
        )
        return {status: count for status, count in result.all()}


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


# ------------------------------------------------------------------------------------ runner
@dataclass
class _Claim:
    row: ChainOutbox
    token: int


class OutboxRunner:
    """Lands due outbox rows; see the module docstring for the protocol."""

    def __init__(
        self,
        database: Database,
        client: ChainClient,
        backend: BackendKey,
        *,
        handlers: Mapping[str, OutboxHandler] | None = None,
        failure_handlers: Mapping[str, OutboxHandler] | None = None,
        actions: Mapping[str, ChainAction] = ACTIONS,
        batch_size: int = 20,
        lease_seconds: float = 120.0,
        confirm_wait_seconds: float = 30.0,
        recheck_seconds: float = 2.0,
        backoff_base_seconds: float = 2.0,
        backoff_cap_seconds: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        observer: StepObserver | None = None,
        on_change: ChangeListener | None = None,
        give_up_after_seconds: float = 24 * 3600.0,
    ) -> None:
        if confirm_wait_seconds >= lease_seconds:
            raise ValueError("confirm_wait_seconds must be shorter than the claim lease")
        self.database = database
        self.client = client
        self.backend = backend
        self.handlers = dict(handlers or {})
        self.failure_handlers = dict(failure_handlers or {})
        self.actions = actions
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.confirm_wait_seconds = confirm_wait_seconds
        self.recheck = timedelta(seconds=recheck_seconds)
        self.backoff = Backoff(backoff_base_seconds, backoff_cap_seconds)
        self.clock = clock
        self.observer = observer
        self.on_change = on_change
        self.give_up_after = timedelta(seconds=give_up_after_seconds)
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Wake `run` now (e.g. right after an enqueue) instead of at its next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Process due rows until `stop` is set; errors are logged, never end the loop."""

        async def next_round() -> float:
            return await self._until_next_due(interval)

        await run_rounds(
            "outbox", stop, self.run_once, interval, wake=self._wake, next_round=next_round
        )

    async def _until_next_due(self, interval: float) -> float:
        """Seconds to wait: until the earliest row comes due (a row rescheduled for now is
        taken at once), and at most `interval`."""
        async with self.database.session() as session:
            earliest = await OutboxRepository(session).next_due()
        if earliest is None:
            return interval
        return min(interval, max(0.0, (earliest - self.clock()).total_seconds()))

    async def run_once(self) -> RunReport:
        """Process every row due now (up to `batch_size`) and refresh the gauges: how many
        rows ended in each `RowResult`."""
        report = RunReport()
        async with self.database.session() as session:
            due = await OutboxRepository(session).due(self.clock(), self.batch_size)
        for row_id, attempts in due:
            report.add(await self.process(row_id, attempts))
        await self.refresh_gauges()
        return report

    async def refresh_gauges(self) -> None:
        async with self.database.session() as session:
            counts = await OutboxRepository(session).counts_by_status()
        for status in OutboxStatus:
            OUTBOX_ROWS.labels(status.value).set(counts.get(status.value, 0))

    async def process(self, row_id: uuid.UUID, seen_attempts: int) -> RowResult:
        """Claim one row and take it as far as it goes now."""
        claim = await self._claim(row_id, seen_attempts)
        if claim is None:
            return RowResult.SKIPPED
        row = claim.row
        try:
            result = await self._handle(claim)
        except _LostClaim:
            result = RowResult.SKIPPED
        OUTBOX_RESULTS.labels(row.intent, result.value).inc()
        return result

    async def _handle(self, claim: _Claim) -> RowResult:
        """Advance the row; map errors to retry / failure (a lost claim escapes)."""
        try:
            await self._observe("claimed", claim.row)
            return await self._advance(claim)
        except TransactionFailed as exc:
            return await self._transaction_failed(claim, exc)
        except ChainError as exc:
            if isinstance(exc, MarketNotOnChain) and self._hopeless(claim.row):
                OUTBOX_GAVE_UP.labels(claim.row.intent, type(exc).__name__).inc()
                waited = self.give_up_after.total_seconds() / 3600
                detail = f"{exc}; still none after {waited:g} h, giving up"
                return await self._fail(claim, type(exc).__name__, detail)
            if exc.retryable:
                return await self._retry_later(claim, exc)
            return await self._fail(claim, type(exc).__name__, str(exc))
        except _LostClaim:
            raise
        except Exception as exc:
            # A bug (e.g. in a handler): keep the row, try again later, say so loudly.
            log.exception(
                "chain outbox row crashed",
                outbox_id=str(claim.row.id),
                intent=claim.row.intent,
                market_id=claim.row.market_id,
            )
            return await self._retry_later(claim, exc)

    def _hopeless(self, row: ChainOutbox) -> bool:
        """A market that has had no account for `give_up_after` since the action was
        enqueued will not get one by retrying (e.g. a proposal whose creator never sent
        create_market): the row ends failed, visibly, instead of retrying forever."""
        return row.created_at + self.give_up_after <= self.clock()

    # ------------------------------------------------------------------ steps
    async def _claim(self, row_id: uuid.UUID, seen_attempts: int) -> _Claim | None:
        async with self.database.session() as session, session.begin():
            repository = OutboxRepository(session)
            if not await repository.claim(row_id, seen_attempts, self.clock() + self.lease):
                return None
            row = await repository.get(row_id)
        assert row is not None
        await self._changed(row)
        return _Claim(row, seen_attempts + 1)

    async def _advance(self, claim: _Claim) -> RowResult:
        row = claim.row
        if row.signed_transaction is not None and row.signature is not None:
            followed = await self._follow_up(claim, _signed_of(row))
            if followed is not None:
                return followed
        return await self._sign_and_send(claim)

    async def _follow_up(self, claim: _Claim, signed: SignedTransaction) -> RowResult | None:
        """Step 1: result for a row whose transaction may still land; None = sign anew."""
        state = await self.client.signature_status(signed.signature)
        if state is None:
            expired = await self.client.blockhash_expired(
                signed.raw, signed.last_valid_block_height
            )
            if not expired:
                await self.client.send(signed.raw)
                OUTBOX_SENDS.labels(claim.row.intent, "resend").inc()
                await self._observe("sent", claim.row)
                return await self._await_confirmation(claim, signed)
            # It may have landed between the status and the expiry check: look once more.
            state = await self.client.signature_status(signed.signature)
            if state is None:
                log.info(
                    "chain outbox transaction expired",
                    outbox_id=str(claim.row.id),
                    market_id=claim.row.market_id,
                    signature=signed.signature,
                )
                return None
        return await self._landed(claim, signed, state)

    async def _landed(
        self, claim: _Claim, signed: SignedTransaction, state: SignatureState
    ) -> RowResult:
        self.client.check_landed(state, signed.raw)  # raises TransactionFailed
        if not state.is_confirmed:
            return await self._recheck_later(claim)
        await self._observe("landed", claim.row)
        outcome = chain_info(claim.row).get("planned_outcome")
        await self._confirm(claim, outcome, signature=signed.signature, slot=state.slot)
        return RowResult.CONFIRMED

    async def _sign_and_send(self, claim: _Claim) -> RowResult:
        """Step 2: done already? else sign, commit, send."""
        row = claim.row
        action = self.actions[row.intent]
        context = await self._context(row)
        done = action.already_done(context, row.arguments)
        if done is not None:
            await self._confirm(claim, done.value, already_done=True)
            return RowResult.CONFIRMED
        plan = action.plan(self.client, context, row.arguments)
        signed = await self.client.build(plan.instructions, [self.backend.signer])
        if signed.signature == row.signature:
            # Same message, same blockhash: the very transaction that already failed on chain.
            raise StaleBlockhash("no new blockhash since the failed transaction; retry later")
        await self._update(
            claim,
            status=OutboxStatus.SENT.value,
            signed_transaction=signed.raw,
            signature=signed.signature,
            blockhash=signed.blockhash,
            last_valid_block_height=signed.last_valid_block_height,
            last_error=None,
            payload=_with_chain_info(row, planned_outcome=plan.outcome.value),
        )
        await self._observe("signed", row)
        await self.client.send(signed.raw)
        OUTBOX_SENDS.labels(row.intent, "first").inc()
        await self._observe("sent", row)
        return await self._await_confirmation(claim, signed)

    async def _await_confirmation(self, claim: _Claim, signed: SignedTransaction) -> RowResult:
        try:
            state = await self.client.confirm(signed, wait_seconds=self.confirm_wait_seconds)
        except ConfirmationTimeout:
            return await self._recheck_later(claim)
        return await self._landed(claim, signed, state)

    async def _context(self, row: ChainOutbox) -> ActionContext:
        if row.market_id is None:
            raise MarketNotOnChain("the action names no market")
        market = await self.client.market(row.market_id)
        if market is None:
            raise MarketNotOnChain(f"market {row.market_id} has no account on chain")
        config = await self.client.global_config()
        if config is None:
            raise MarketNotOnChain("the program's GlobalConfig is not initialized")
        return ActionContext(market, config, self.backend.pubkey)

    # ------------------------------------------------------------------ endings
    async def _confirm(
        self,
        claim: _Claim,
        outcome: str | None,
        *,
        signature: str | None = None,
        slot: int | None = None,
        already_done: bool = False,
    ) -> None:
        row = claim.row
        info: dict[str, Any] = {"outcome": outcome, "already_done": already_done}
        if slot is not None:
            info["slot"] = slot
        await self._settle(
            claim,
            self.handlers,
            status=OutboxStatus.CONFIRMED.value,
            confirmed_at=self.clock(),
            last_error=None,
            payload=_with_chain_info(row, **info),
        )
        log.info(
            "chain outbox confirmed",
            outbox_id=str(row.id),
            intent=row.intent,
            market_id=row.market_id,
            outcome=outcome,
            signature=signature,
            already_done=already_done,
        )

    async def _transaction_failed(self, claim: _Claim, exc: TransactionFailed) -> RowResult:
        if exc.retryable:
            if exc.landed:
                # Those bytes are spent; the next attempt must sign again.
                await self._update(
                    claim, status=OutboxStatus.PENDING.value, signed_transaction=None
                )
            return await self._retry_later(claim, exc)
        # A permanent refusal; but maybe because someone else already did it.
        try:
            context = await self._context(claim.row)
        except ChainError:
            context = None
        action = self.actions[claim.row.intent]
        done = None if context is None else action.already_done(context, claim.row.arguments)
        if done is not None:
            await self._confirm(claim, done.value, already_done=True)
            return RowResult.CONFIRMED
        return await self._fail(claim, exc.error_name, str(exc))

    async def _fail(self, claim: _Claim, error_name: str, message: str) -> RowResult:
        row = claim.row
        await self._settle(
            claim,
            self.failure_handlers,
            status=OutboxStatus.FAILED.value,
            last_error=f"{error_name}: {message}",
            payload=_with_chain_info(row, error=error_name),
        )
        log.error(
            "chain outbox failed",
            outbox_id=str(row.id),
            intent=row.intent,
            market_id=row.market_id,
            error=error_name,
            detail=message,
        )
        return RowResult.FAILED

    async def _settle(
        self, claim: _Claim, handlers: Mapping[str, OutboxHandler], **values: Any
    ) -> None:
        """Write the row's final state and run the intent's handler in the same transaction,
        so the domain's follow-up commits (or rolls back) together with it."""
        async with self.database.session() as session, session.begin():
            repository = OutboxRepository(session)
            await repository.update_claimed(claim.row.id, claim.token, **values)
            settled = await repository.get(claim.row.id)
            assert settled is not None
            handler = handlers.get(claim.row.intent)
            if handler is not None:
                await handler(session, settled)
        await self._changed(claim.row)

    async def _retry_later(self, claim: _Claim, exc: BaseException) -> RowResult:
        delay = self.backoff.delay(claim.token)
        if isinstance(exc, BlockhashExpired):
            delay = 0.0  # nothing to wait for: the next run re-checks and re-signs
        await self._update(
            claim,
            last_error=f"{type(exc).__name__}: {exc}",
            next_attempt_at=self.clock() + timedelta(seconds=delay),
        )
        log.warning(
            "chain outbox retry",
            outbox_id=str(claim.row.id),
            intent=claim.row.intent,
            market_id=claim.row.market_id,
            error=f"{type(exc).__name__}: {exc}",
            retry_in_seconds=delay,
        )
        return RowResult.RETRY

    async def _recheck_later(self, claim: _Claim) -> RowResult:
        await self._update(claim, next_attempt_at=self.clock() + self.recheck)
        return RowResult.WAITING

    async def _update(self, claim: _Claim, **values: Any) -> None:
        async with self.database.session() as session, session.begin():
            await OutboxRepository(session).update_claimed(claim.row.id, claim.token, **values)
        for name, value in values.items():
            setattr(claim.row, name, value)
        await self._changed(claim.row)

    async def _changed(self, row: ChainOutbox) -> None:
        if self.on_change is not None and row.market_id is not None:
            await self.on_change(row.market_id)

    async def _observe(self, step: str, row: ChainOutbox) -> None:
        if self.observer is not None:
            await self.observer(step, row)


def _signed_of(row: ChainOutbox) -> SignedTransaction:
    assert row.signed_transaction is not None and row.signature is not None
    return SignedTransaction(
        raw=row.signed_transaction,
        signature=row.signature,
        blockhash=row.blockhash or "",
        last_valid_block_height=row.last_valid_block_height or 0,
    )


def _with_chain_info(row: ChainOutbox, **info: Any) -> dict[str, Any]:
    payload = dict(row.payload or {})
    payload["chain"] = {**chain_info(row), **info}
    return payload


__all__ = [
    "OUTBOX_GAVE_UP",
    "OUTBOX_RESULTS",
    "OUTBOX_ROWS",
    "OUTBOX_SENDS",
    "OutboxHandler",
    "OutboxRepository",
    "OutboxRunner",
    "OutboxStatus",
    "Outcome",
    "RowResult",
    "StepObserver",
    "chain_info",
    "enqueue",
    "outcome_of",
]
