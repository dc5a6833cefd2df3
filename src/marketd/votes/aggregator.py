"""The vote aggregator: turns tallies that pass into chain actions (through the outbox).

Triggers, all handled by the one instance holding the `votes-aggregator` lock:

* a vote event on the bus ("votes", published for every accepted vote): that market is
  re-tallied at once and, when it passes, the action is enqueued and the outbox runner woken,
  so an approval goes out right after the deciding vote;
* a periodic sweep (`sweep_interval_seconds`, and once on taking the lead, which catches up
  on whatever happened while no instance led): ONE grouped query over all open proposals and
  ONE over all open disputes; only the markets that pass are looked at one by one;
* the end of a dispute period: the sweep remembers when each open dispute's period ends and
  the loop wakes then (a dispute is decided when its period is over, not on a vote);
* retries of tallies that failed (database or RPC down), with exponential backoff.

Deciding a market reads its counted votes (one per wallet, on-chain first), applies the pure
rules and, in the same transaction, enqueues the action with the exact counted list as
evidence. The outbox key `<intent>:<market>` makes that at-most-once per market whatever
happens (two leaders for a moment, a sweep racing a vote, a restart).

Dispute with fewer than the minimum votes: see `rules.dispute_verdict` (a tally that would
flip the outcome waits for the quorum; one that would not is finalized as it is). A dispute
with no vote at all waits for its first vote (the program refuses it: NoVotesRecorded); the
votes page says so (`waiting`).

A passing proposal is approved only once its market has an account on chain (`on_chain`, the
worker's reads it): a market proposed through the API exists only in the database until its
creator's create_market lands, and an approval enqueued before would retry for nothing. It is
NOT_ON_CHAIN until then, and looked at again soon (backing off like a failed tally, capped at
a minute), so the approval follows the creation within about a second when it lands.

Time: a dispute's period ends by the CHAIN's clock (the Clock sysvar the program judges by),
not this machine's. With `chain_clock` (the worker passes one reading the Clock sysvar), every
tally and sweep reads it, and the loop's wake-up for a deadline uses the last offset seen
between the chain's clock and the local one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from marketd.chain.client import ChainClient
from marketd.chain.clock import ChainClock
from marketd.chain.outbox import OutboxRunner, enqueue
from marketd.config import Settings
from marketd.core.bus import EventBus, Message
from marketd.core.container import Container
from marketd.core.database import Database
from marketd.core.events import VoteCast, from_wire
from marketd.core.jobs import BackgroundJob, leader_locked
from marketd.core.locks import Locks
from marketd.core.waits import Backoff, FailureStreak
from marketd.models.base import utcnow
from marketd.votes import rules
from marketd.votes.evidence import tally_evidence
from marketd.votes.rules import Tally, VoteKind
from marketd.votes.tally_repository import INTENT_OF, MarketTally, TallyRepository
from marketd.votes.thresholds import ThresholdSource, VoteThresholds

log = structlog.get_logger("marketd.votes.aggregator")

LOCK_NAME = "votes-aggregator"
KINDS = frozenset(kind.value for kind in VoteKind)

TALLIES = Counter(
    "marketd_vote_tallies_total", "Markets re-tallied, by kind and trigger.", ["kind", "trigger"]
)
VOTES_TALLIED = Counter(
    "marketd_votes_tallied_total", "Counted votes read by market re-tallies.", ["kind"]
)
ACTIONS_ENQUEUED = Counter(
    "marketd_vote_actions_enqueued_total",
    "Chain actions enqueued from a passing tally (approvals, dispute results).",
    ["intent"],
)
TALLY_FAILURES = Counter(
    "marketd_vote_tally_failures_total", "Re-tallies or sweeps that failed.", ["kind"]
)
SWEEP_SECONDS = Histogram(
    "marketd_vote_sweep_seconds",
    "Duration of a full sweep over every open market.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
DISPUTES_AWAITING_QUORUM = Gauge(
    "marketd_disputes_awaiting_quorum",
    "Disputes past their period whose tally would succeed on fewer than the minimum votes.",
)
DISPUTES_WITHOUT_VOTES = Gauge(
    "marketd_disputes_without_votes",
    "Disputes past their period with no vote: the program refuses them, they wait for a vote.",
)
LEADER = Gauge("marketd_vote_aggregator_leader", "1 while this process leads the aggregation.")


class TallyResult(StrEnum):
    NOT_OPEN = "not_open"  # no such market, or voting of this kind is over
    ALREADY_DECIDED = "already_decided"  # an action carrying its tally exists
    NOT_PASSING = "not_passing"  # a proposal below the minimum or the threshold
    PERIOD_OPEN = "period_open"  # a dispute whose period has not ended
    NO_VOTES = "no_votes"  # a dispute over without a vote: waits for one (NoVotesRecorded)
    AWAITING_QUORUM = "awaiting_quorum"
    UNKNOWN_PERIOD = "unknown_period"  # a dispute without resolution_proposed_at
    NOT_ON_CHAIN = "not_on_chain"  # a passing proposal whose create_market has not landed
    ENQUEUED = "enqueued"


@dataclass(frozen=True)
class TallyReport:
    kind: VoteKind
    market_id: str
    trigger: str
    result: TallyResult
    tally: Tally | None = None


@dataclass
class SweepReport:
    proposals: int = 0
    disputes: int = 0
    results: list[TallyReport] = field(default_factory=list)

    def enqueued(self) -> list[str]:
        return [r.market_id for r in self.results if r.result is TallyResult.ENQUEUED]


Observer = Callable[[TallyReport], Awaitable[None]]


@dataclass
class _Retry:
    attempts: int
    due: float  # monotonic


class VoteAggregator:
    def __init__(
        self,
        database: Database,
        bus: EventBus,
        locks: Locks,
        thresholds: ThresholdSource,
        notify: Callable[[], None],
        *,
        proposal_min_votes: int = 10,
        dispute_min_votes: int = 10,
        sweep_interval_seconds: float = 300.0,
        leader_ttl_seconds: float = 15.0,
        retry_base_seconds: float = 1.0,
        retry_cap_seconds: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        chain_clock: Callable[[], Awaitable[datetime]] | None = None,
        on_chain: Callable[[str], Awaitable[bool]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        self.database = database
        self.bus = bus
        self.locks = locks
        self.thresholds = thresholds
        self.notify = notify
        self.min_votes = {
            VoteKind.PROPOSAL: proposal_min_votes,
            VoteKind.DISPUTE: dispute_min_votes,
        }
        self.sweep_interval = sweep_interval_seconds
        self.leader_ttl = leader_ttl_seconds
        self.retry_backoff = Backoff(retry_base_seconds, retry_cap_seconds)
        self.clock = clock
        self.chain_clock = chain_clock
        self.on_chain = on_chain
        self._chain_offset = timedelta(0)  # chain clock - local clock, as last read
        self.monotonic = monotonic
        self.observer = observer
        self._retries: dict[tuple[VoteKind, str], _Retry] = {}
        self._deadlines: dict[str, datetime] = {}  # open disputes: when their period ends
        self._sweep_failures = FailureStreak(self.retry_backoff)
        self.leading = asyncio.Event()  # set while leading and subscribed to votes

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database,
        bus: EventBus,
        locks: Locks,
        thresholds: ThresholdSource,
        notify: Callable[[], None],
        **options: Any,
    ) -> VoteAggregator:
        return cls(
            database,
            bus,
            locks,
            thresholds,
            notify,
            proposal_min_votes=settings.proposal_min_votes,
            dispute_min_votes=settings.dispute_min_votes,
            sweep_interval_seconds=settings.sweep_interval_seconds,
            **options,
        )

    # ------------------------------------------------------------------ time
    async def now(self) -> datetime:
        """The chain's time when a chain clock is given (remembering its offset), else ours."""
        if self.chain_clock is None:
            return self.clock()
        chain_now = await self.chain_clock()
        self._chain_offset = chain_now - self.clock()
        return chain_now

    def _estimated_now(self) -> datetime:
        """The chain's time without an RPC: the local clock plus the last offset seen."""
        return self.clock() + self._chain_offset

    # ------------------------------------------------------------------ deciding one market
    async def tally_market(
        self, kind: VoteKind, market_id: str, trigger: str = "event"
    ) -> TallyReport:
        """Re-tally one market and enqueue its action when the rules say so."""
        thresholds = await self.thresholds.get()  # before the transaction: may be an RPC
        now = await self.now()
        async with self.database.session() as session, session.begin():
            repository = TallyRepository(session)
            facts = await repository.facts(market_id)
            if facts is None or facts.state != rules.VOTING_STATE[kind].value:
                return await self._report(kind, market_id, trigger, TallyResult.NOT_OPEN)
            if await repository.action(kind, market_id) is not None:
                self._deadlines.pop(market_id, None)
                return await self._report(kind, market_id, trigger, TallyResult.ALREADY_DECIDED)
            counted = rules.counted_votes(await repository.cast_votes(kind, market_id))
            tally = rules.tally(counted)
            TALLIES.labels(kind.value, trigger).inc()
            VOTES_TALLIED.labels(kind.value).inc(len(counted))
            result, verdict = self._decide(
                kind, market_id, tally, thresholds, facts.resolution_proposed_at, now
            )
            if (
                result is TallyResult.ENQUEUED
                and kind is VoteKind.PROPOSAL
                and self.on_chain is not None
                and not await self.on_chain(market_id)
            ):
                result = TallyResult.NOT_ON_CHAIN
            if result is not TallyResult.ENQUEUED:
                return await self._report(kind, market_id, trigger, result, tally)
            threshold = (
                thresholds.proposal_approval_bps
                if kind is VoteKind.PROPOSAL
                else thresholds.dispute_success_bps
            )
            evidence = tally_evidence(
                kind,
                counted,
                tally,
                threshold_bps=threshold,
                min_votes=self.min_votes[kind],
                threshold_source=thresholds.source,
                decision=verdict,
                tallied_at=now,
            )
            arguments = (
                {"likes": tally.yes, "dislikes": tally.no}
                if kind is VoteKind.PROPOSAL
                else {"agrees": tally.yes, "disagrees": tally.no}
            )
            await enqueue(session, INTENT_OF[kind].value, market_id, arguments, payload=evidence)
        ACTIONS_ENQUEUED.labels(INTENT_OF[kind].value).inc()
        self._deadlines.pop(market_id, None)
        log.info(
            "vote tally enqueued",
            market_id=market_id,
            kind=kind.value,
            yes=tally.yes,
            no=tally.no,
            decision=verdict,
            trigger=trigger,
        )
        self.notify()
        return await self._report(kind, market_id, trigger, TallyResult.ENQUEUED, tally)

    def _decide(
        self,
        kind: VoteKind,
        market_id: str,
        tally: Tally,
        thresholds: VoteThresholds,
        resolution_proposed_at: datetime | None,
        now: datetime,
    ) -> tuple[TallyResult, str]:
        """(what to do, the decision recorded with the evidence)."""
        if kind is VoteKind.PROPOSAL:
            passed = rules.proposal_approved(
                tally, thresholds.proposal_approval_bps, self.min_votes[kind]
            )
            return (TallyResult.ENQUEUED, "approved") if passed else (TallyResult.NOT_PASSING, "")
        if resolution_proposed_at is None:
            log.warning("dispute without resolution time", market_id=market_id)
            return TallyResult.UNKNOWN_PERIOD, ""
        period_end = rules.dispute_period_end(
            resolution_proposed_at, thresholds.dispute_period_seconds
        )
        verdict = rules.dispute_verdict(
            tally, thresholds.dispute_success_bps, self.min_votes[kind], period_end, now
        )
        if verdict is rules.DisputeVerdict.PERIOD_OPEN:
            self._deadlines[market_id] = period_end
            return TallyResult.PERIOD_OPEN, verdict.value
        self._deadlines.pop(market_id, None)
        if verdict is rules.DisputeVerdict.AWAITING_QUORUM:
            return TallyResult.AWAITING_QUORUM, verdict.value
        if verdict is rules.DisputeVerdict.NO_VOTES:
            return TallyResult.NO_VOTES, verdict.value
        return TallyResult.ENQUEUED, verdict.value

    async def _report(
        self,
        kind: VoteKind,
        market_id: str,
        trigger: str,
        result: TallyResult,
        tally: Tally | None = None,
    ) -> TallyReport:
        report = TallyReport(kind, market_id, trigger, result, tally)
        if self.observer is not None:
            await self.observer(report)
        return report

    async def tally_safely(
        self, kind: VoteKind, market_id: str, trigger: str
    ) -> TallyReport | None:
        """`tally_market`, with a failure logged, counted and scheduled for a retry."""
        key = (kind, market_id)
        try:
            report = await self.tally_market(kind, market_id, trigger)
        except Exception as exc:
            attempts, delay = self._retry_later(key)
            TALLY_FAILURES.labels(kind.value).inc()
            log.warning(
                "vote tally failed",
                market_id=market_id,
                kind=kind.value,
                trigger=trigger,
                error=f"{type(exc).__name__}: {exc}",
                attempts=attempts,
                retry_in_seconds=delay,
            )
            return None
        if report.result is TallyResult.NOT_ON_CHAIN:
            # The creator's create_market may land any moment (it is sent right after the
            # proposal): look again soon, backing off, instead of at the next sweep.
            self._retry_later(key)
            return report
        self._retries.pop(key, None)
        return report

    def _retry_later(self, key: tuple[VoteKind, str]) -> tuple[int, float]:
        """Schedule the next tally of `key` with exponential backoff: (attempts, delay)."""
        retry = self._retries.get(key)
        attempts = 1 if retry is None else retry.attempts + 1
        delay = self.retry_backoff.delay(attempts)
        self._retries[key] = _Retry(attempts, self.monotonic() + delay)
        return attempts, delay

    # ------------------------------------------------------------------ the sweep
    async def sweep(self) -> SweepReport:
        """Tally every open market with one grouped query per kind; decide those that pass."""
        started = time.perf_counter()
        thresholds = await self.thresholds.get()
        now = await self.now()
        async with self.database.session() as session:
            repository = TallyRepository(session)
            proposals = await repository.open_proposal_tallies()
            disputes = await repository.open_dispute_tallies()
        report = SweepReport(len(proposals), len(disputes))
        candidates: list[tuple[VoteKind, str]] = []
        for item in proposals:
            min_votes = self.min_votes[VoteKind.PROPOSAL]
            if rules.proposal_approved(item.tally, thresholds.proposal_approval_bps, min_votes):
                candidates.append((VoteKind.PROPOSAL, item.market_id))
        self._deadlines.clear()
        awaiting_quorum = without_votes = 0
        for item in disputes:
            if item.resolution_proposed_at is None:
                continue  # decided (and logged) by tally_market once the time is known
            period_end = rules.dispute_period_end(
                item.resolution_proposed_at, thresholds.dispute_period_seconds
            )
            verdict = self._dispute_verdict(item, thresholds, period_end, now)
            if verdict is rules.DisputeVerdict.PERIOD_OPEN:
                self._deadlines[item.market_id] = period_end
            elif verdict is rules.DisputeVerdict.AWAITING_QUORUM:
                awaiting_quorum += 1
            elif verdict is rules.DisputeVerdict.NO_VOTES:
                without_votes += 1
            else:
                candidates.append((VoteKind.DISPUTE, item.market_id))
        DISPUTES_AWAITING_QUORUM.set(awaiting_quorum)
        DISPUTES_WITHOUT_VOTES.set(without_votes)
        for kind, market_id in candidates:
            result = await self.tally_safely(kind, market_id, "sweep")
            if result is not None:
                report.results.append(result)
        SWEEP_SECONDS.observe(time.perf_counter() - started)
        log.info(
            "vote sweep done",
            proposals=report.proposals,
            disputes=report.disputes,
            enqueued=len(report.enqueued()),
            seconds=round(time.perf_counter() - started, 3),
        )
        return report

    def _dispute_verdict(
        self, item: MarketTally, thresholds: VoteThresholds, period_end: datetime, now: datetime
    ) -> rules.DisputeVerdict:
        return rules.dispute_verdict(
            item.tally,
            thresholds.dispute_success_bps,
            self.min_votes[VoteKind.DISPUTE],
            period_end,
            now,
        )

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Lead when the lock is ours, wait for it otherwise, until `stop` is set."""

        await leader_locked(
            self.locks,
            LOCK_NAME,
            self.leader_ttl,
            self.lead,
            leading=lambda on: LEADER.set(int(on)),
        )(stop)

    async def lead(self, until: asyncio.Event) -> None:
        """React to votes, sweep and retry until `until` is set (`leader_locked` sets it on
        stop or when the lock is lost)."""
        async with self.bus.subscribe("votes") as votes:
            # Subscribed first: a vote during the catch-up sweep is not missed.
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(until.wait())]
            getter: asyncio.Future[Any] | None = None
            next_sweep = self.monotonic()
            self.leading.set()
            try:
                while not until.is_set():
                    if self.monotonic() >= next_sweep:
                        next_sweep = self.monotonic() + await self._sweep_safely()
                    await self._run_due()
                    getter = getter or asyncio.ensure_future(votes.get())
                    timeout = max(0.0, min(next_sweep, self._next_due()) - self.monotonic())
                    done, _ = await asyncio.wait(
                        [getter, *waiters], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter in done:
                        vote_event: Message = getter.result()
                        getter = None
                        await self._on_vote(vote_event)
            finally:
                self.leading.clear()
                for waiter in [*waiters, *([getter] if getter else [])]:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter

    async def _on_vote(self, message: Message) -> None:
        vote = from_wire(message)
        if not isinstance(vote, VoteCast) or vote.kind not in KINDS:
            log.warning("vote event malformed", vote_event=message)
            return
        await self.tally_safely(VoteKind(vote.kind), vote.market_id, "event")

    async def _sweep_safely(self) -> float:
        """Sweep; the delay until the next one (shorter, backing off, after a failure)."""
        try:
            await self.sweep()
        except Exception as exc:
            TALLY_FAILURES.labels("sweep").inc()
            delay = min(self.sweep_interval, self._sweep_failures.failed())
            log.warning(
                "vote sweep failed", error=f"{type(exc).__name__}: {exc}", retry_in_seconds=delay
            )
            return delay
        self._sweep_failures.succeeded()
        return self.sweep_interval

    def _next_due(self) -> float:
        """Monotonic time of the next retry or dispute deadline (inf when none)."""
        moments = [retry.due for retry in self._retries.values()]
        if self._deadlines:
            until = (min(self._deadlines.values()) - self._estimated_now()).total_seconds()
            moments.append(self.monotonic() + max(0.0, until))
        return min(moments, default=float("inf"))

    async def _run_due(self) -> None:
        now_monotonic, now = self.monotonic(), self._estimated_now()
        for (kind, market_id), retry in list(self._retries.items()):
            if retry.due <= now_monotonic:
                await self.tally_safely(kind, market_id, "retry")
        for market_id, period_end in list(self._deadlines.items()):
            if period_end <= now:
                self._deadlines.pop(market_id, None)
                await self.tally_safely(VoteKind.DISPUTE, market_id, "deadline")


class MarketOnChain:
    """`await MarketOnChain(client)(market_id)`: whether the market has its account."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client

    async def __call__(self, market_id: str) -> bool:
        return await self.client.market(market_id) is not None


def aggregator_jobs(container: Container, runner: OutboxRunner) -> list[BackgroundJob]:
    """The aggregator as a job of the worker process. The runner must carry the votes
    domain's handlers (`handlers.vote_outbox_handlers`); its client supplies the thresholds."""
    return [BackgroundJob("votes-aggregator", worker_aggregator(container, runner).run)]


def worker_aggregator(container: Container, runner: OutboxRunner, **options: Any) -> VoteAggregator:
    """The aggregator as the worker wires it; `options` replace its defaults (a test's clock,
    lock lease or observer)."""
    wiring: dict[str, Any] = {
        "chain_clock": ChainClock(runner.client),
        "on_chain": MarketOnChain(runner.client),
    }
    return VoteAggregator.from_settings(
        container.settings,
        container.database,
        container.bus,
        container.locks,
        ThresholdSource(container.settings, runner.client),
        runner.notify,
        **(wiring | options),
    )
