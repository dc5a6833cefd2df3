"""The trade relay: sends the user-signed transactions accepted by /api/trades to the chain.

The relay never decides that a trade happened; the indexer does, from the program's events,
and it moves a submission to `confirmed`. The relay's job per pending submission, each pass:

* landed successfully -> nothing (the indexer will pick it up);
* landed with an error -> `failed`, with the program's error name (e.g. SlippageExceeded);
* not landed, blockhash still valid -> send the stored bytes (again: the same signature, so a
  re-send can never trade twice; the user signed exactly one transaction);
* not landed, blockhash expired (and still not landed when checked again) -> `failed`;
* refused by the node (bad signature, preflight program error) -> `failed` with the reason;
* refused because the user's own wallet cannot pay (no account, too little SOL for the fee) ->
  `failed` at once: only the user can fix that, by signing a new trade after funding the wallet
  (for the backend's own transactions the same errors are retryable: an operator funds the key);
* RPC unavailable -> left pending for the next pass;
* the program paused (preflight ProtocolPaused) -> left pending, with the reason in `error`,
  and sent again while its blockhash lives (it fails BlockhashExpired if the pause outlasts it).

Only submissions younger than `max_age_seconds` are looked at, so a landed trade whose indexer
is late is not polled forever (a blockhash lives ~1-2 minutes, far less than the default age).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from prometheus_client import Counter
from solders.transaction_status import TransactionErrorFieldless
from sqlalchemy import select, update

from marketd.chain.client import ChainClient, SignatureState
from marketd.chain.errors import BlockhashExpired, ChainError, TransactionFailed
from marketd.core.database import Database
from marketd.core.jobs import RunReport, run_rounds
from marketd.models import TradeSubmission
from marketd.models.base import utcnow
from marketd.trades.status import SubmissionStatus

log = structlog.get_logger("marketd.trades.relay")

RELAY_RESULTS = Counter(
    "marketd_trade_relay_results_total", "Trade relay outcomes per submission and pass.", ["result"]
)

PAUSED_NOTE = (
    "the program is paused (emergency_pause); the same signed transaction is sent again "
    "while its blockhash lives"
)
MAX_STATUS_BATCH = 256  # getSignatureStatuses limit
# Runtime refusals that retrying the same signed bytes cannot cure: the user's wallet pays the
# fee, so a missing account or an empty wallet stays so until the user acts.
# (a tuple: solders' error enums are not hashable)
USER_MUST_FIX = (
    TransactionErrorFieldless.AccountNotFound,
    TransactionErrorFieldless.InsufficientFundsForFee,
)


class RelayResult(StrEnum):
    SENT = "sent"
    LANDED = "landed"  # on chain without error; the indexer confirms it
    FAILED = "failed"
    RETRY = "retry"  # RPC trouble; next pass


@dataclass(frozen=True)
class _Pending:
    signature: str
    market_id: str
    raw: bytes


class TradeRelay:
    """Relays pending `trade_submissions` rows; run `run_once` or `run(stop)`."""

    def __init__(
        self,
        database: Database,
        client: ChainClient,
        *,
        skip_preflight: bool = False,
        batch_size: int = MAX_STATUS_BATCH,
        max_age_seconds: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.client = client
        self.skip_preflight = skip_preflight
        self.batch_size = min(batch_size, MAX_STATUS_BATCH)
        self.max_age = timedelta(seconds=max_age_seconds)
        self.clock = clock
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Wake `run` now (e.g. right after a trade was accepted)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Relay every `interval` seconds (at once after `notify`) until `stop` is set."""
        await run_rounds("trade-relay", stop, self.run_once, interval, wake=self._wake)

    async def run_once(self) -> RunReport:
        """One pass over the pending submissions: how many ended in each `RelayResult`."""
        report = RunReport()
        pending = await self._pending()
        try:
            statuses = await self.client.signature_statuses([p.signature for p in pending])
        except ChainError as exc:
            log.warning("trade relay status unavailable", error=str(exc), pending=len(pending))
            for _ in pending:
                report.add(RelayResult.RETRY)
            return report
        for submission, state in zip(pending, statuses, strict=True):
            result = await self._relay(submission, state)
            RELAY_RESULTS.labels(result.value).inc()
            report.add(result)
        return report

    async def _pending(self) -> list[_Pending]:
        async with self.database.session() as session:
            result = await session.execute(
                select(
                    TradeSubmission.signature,
                    TradeSubmission.market_id,
                    TradeSubmission.raw_transaction,
                )
                .where(
                    TradeSubmission.status == SubmissionStatus.PENDING,
                    TradeSubmission.created_at >= self.clock() - self.max_age,
                )
                .order_by(TradeSubmission.created_at)
                .limit(self.batch_size)
            )
            return [_Pending(sig, market, raw) for sig, market, raw in result.all()]

    async def _relay(self, submission: _Pending, state: SignatureState | None) -> RelayResult:
        try:
            if state is not None:
                return await self._landed(submission, state)
            if await self.client.blockhash_expired(submission.raw, None):
                late = await self.client.signature_status(submission.signature)
                if late is not None:
                    return await self._landed(submission, late)
                return await self._fail(submission, "BlockhashExpired", "expired before landing")
            await self.client.send(submission.raw, skip_preflight=self.skip_preflight)
            return RelayResult.SENT
        except TransactionFailed as exc:
            if exc.retryable and exc.err not in USER_MUST_FIX:
                if exc.error_name == "ProtocolPaused":
                    await self._note(submission, f"ProtocolPaused: {PAUSED_NOTE}")
                return self._retry(submission, exc)
            return await self._fail(submission, exc.error_name, exc.reason)
        except BlockhashExpired:
            return await self._fail(submission, "BlockhashExpired", "expired before landing")
        except ChainError as exc:
            if exc.retryable:
                return self._retry(submission, exc)
            return await self._fail(submission, type(exc).__name__, str(exc))

    async def _landed(self, submission: _Pending, state: SignatureState) -> RelayResult:
        self.client.check_landed(state, submission.raw)  # raises TransactionFailed on error
        return RelayResult.LANDED

    def _retry(self, submission: _Pending, exc: Exception) -> RelayResult:
        log.warning(
            "trade relay retry",
            signature=submission.signature,
            market_id=submission.market_id,
            error=f"{type(exc).__name__}: {exc}",
        )
        return RelayResult.RETRY

    async def _update_pending(self, submission: _Pending, **values: Any) -> None:
        """Write `values` to the submission while it is still pending: never undo the indexer's
        confirmation (it may have seen the trade land meanwhile)."""
        async with self.database.session() as session, session.begin():
            await session.execute(
                update(TradeSubmission)
                .where(
                    TradeSubmission.signature == submission.signature,
                    TradeSubmission.status == SubmissionStatus.PENDING,
                )
                .values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def _note(self, submission: _Pending, note: str) -> None:
        """Say why a pending submission waits (it stays pending: it is sent again)."""
        await self._update_pending(submission, error=note)

    async def _fail(self, submission: _Pending, name: str, detail: str) -> RelayResult:
        await self._update_pending(
            submission, status=SubmissionStatus.FAILED, error=f"{name}: {detail}"
        )
        log.warning(
            "trade relay failed",
            signature=submission.signature,
            market_id=submission.market_id,
            error=name,
            detail=detail,
        )
        return RelayResult.FAILED
