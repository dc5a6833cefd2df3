"""The vote aggregator and its outbox handlers on the real databases (PostgreSQL + Redis and the
embedded SQLite + in-process parts), without a chain: what gets enqueued, when, and once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import event, select
from structlog.testing import capture_logs

from marketd.chain.actions import Intent, Outcome
from marketd.chain.addresses import new_market_id
from marketd.chain.client import MarketAccount
from marketd.chain.errors import RpcUnavailable
from marketd.chain.keys import BackendKey
from marketd.chain.outbox import OutboxRunner, OutboxStatus
from marketd.core.events import MarketStateChanged, VoteCast, publish
from marketd.core.locks import Locks
from marketd.models import ChainOutbox, DisputeVote, Market, ProposalVote, User
from marketd.shared.market_state import MarketState
from marketd.votes import handlers as handlers_module
from marketd.votes.aggregator import (
    DISPUTES_AWAITING_QUORUM,
    DISPUTES_WITHOUT_VOTES,
    TALLY_FAILURES,
    TallyResult,
    VoteAggregator,
    aggregator_jobs,
)
from marketd.votes.evidence import evidence_votes
from marketd.votes.handlers import (
    ACTIONS_FAILED,
    VoteActionHandlers,
    publish_after_commit,
    vote_outbox_handlers,
)
from marketd.votes.rules import VoteKind, tally
from marketd.votes.thresholds import DEFAULT_DISPUTE_PERIOD_SECONDS, ThresholdSource

PERIOD = timedelta(seconds=DEFAULT_DISPUTE_PERIOD_SECONDS)


def vote_cast(market_id: str) -> VoteCast:
    return VoteCast(
        market_id=market_id, kind="proposal", vote=True, wallet="w", likes=1, dislikes=0
    )


def change(market_id: str) -> MarketStateChanged:
    return MarketStateChanged(
        market_id=market_id, old_state="PROPOSED", new_state="APPROVED", at=datetime.now(UTC)
    )


# ----------------------------------------------------------------------------- helpers


class Harness:
    """An aggregator on the api's container, its reports and how often it woke the runner."""

    def __init__(self, api: Any, thresholds: Any = None, **options: Any) -> None:
        self.api = api
        self.reports: asyncio.Queue[Any] = asyncio.Queue()
        self.notified = 0
        container = api.container
        self.aggregator = VoteAggregator(
            container.database,
            container.bus,
            options.pop("locks", container.locks),
            thresholds or ThresholdSource(container.settings, None),
            self._notify,
            observer=self._observe,
            **options,
        )

    def _notify(self) -> None:
        self.notified += 1

    async def _observe(self, report: Any) -> None:
        self.reports.put_nowait(report)

    async def next_report(self) -> Any:
        return await asyncio.wait_for(self.reports.get(), 10)


CHECKED = {"strategy": "any", "checks": [], "checked_at": "2026-12-06T12:00:00+00:00"}


async def add_market(api: Any, state: str = "PROPOSED", **fields: Any) -> str:
    market_id, creator = new_market_id(), str(Pubkey.new_unique())
    async with api.container.database.session() as session, session.begin():
        session.add(User(wallet=creator))  # the platform's markets reference users
        await session.flush()
        session.add(
            Market(
                id=market_id,
                on_chain_address=str(Pubkey.new_unique()),
                question="Will the aggregator decide?",
                creator_wallet=creator,
                state=state,
                **fields,
            )
        )
    return market_id


async def add_votes(
    api: Any, kind: VoteKind, market_id: str, yes: int, no: int, on_chain: int = 0
) -> list[str]:
    table = ProposalVote if kind is VoteKind.PROPOSAL else DisputeVote
    wallets = [str(Pubkey.new_unique()) for _ in range(yes + no)]
    now = datetime.now(UTC)
    async with api.container.database.session() as session, session.begin():
        session.add_all([User(wallet=wallet) for wallet in wallets])
        await session.flush()
        for index, wallet in enumerate(wallets):
            session.add(
                table(
                    market_id=market_id,
                    user_wallet=wallet,
                    vote=index < yes,
                    voted_at=now - timedelta(seconds=index),
                    tx_signature="sig" + str(index) if index < on_chain else None,
                    # What the API stores with an off-chain vote (an unrecorded one does not count).
                    eligibility=None if index < on_chain else CHECKED,
                )
            )
    return wallets


async def outbox_rows(api: Any, market_id: str) -> list[ChainOutbox]:
    async with api.container.database.session() as session:
        result = await session.execute(
            select(ChainOutbox).where(ChainOutbox.market_id == market_id)
        )
        return list(result.scalars().all())


async def market_row(api: Any, market_id: str) -> Market:
    async with api.container.database.session() as session:
        market = await session.get(Market, market_id)
        assert market is not None
        return market


async def vote_http(api: Any, headers: dict[str, str], market_id: str, vote: bool) -> None:
    response = await api.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": vote}, headers=headers
    )
    assert response.status_code == 200, response.text


# ----------------------------------------------------------------------------- event driven


async def test_the_deciding_vote_enqueues_the_approval_with_its_evidence(api):
    harness = Harness(api)
    _, creator = await api.sign_in()
    market_id = await api.market(creator)
    voters = [await api.sign_in() for _ in range(10)]
    stop = asyncio.Event()
    task = asyncio.create_task(harness.aggregator.lead(stop))
    await asyncio.wait_for(harness.aggregator.leading.wait(), 10)
    # A malformed event is skipped; the reports below come from the votes only.
    await api.container.bus.publish("votes", {"type": "vote", "voteType": "poll"})
    choices = [True] * 7 + [False] * 2 + [False]
    for index, ((_, headers), vote) in enumerate(zip(voters, choices, strict=True)):
        await vote_http(api, headers, market_id, vote)
        report = await harness.next_report()
        assert (report.market_id, report.trigger) == (market_id, "event")
        if index < 9:
            assert report.result is TallyResult.NOT_PASSING, index
            assert await outbox_rows(api, market_id) == []
    assert report.result is TallyResult.ENQUEUED
    assert (report.tally.yes, report.tally.no) == (7, 3)
    assert harness.notified == 1
    [row] = await outbox_rows(api, market_id)
    assert (row.intent, row.arguments) == ("approve_market", {"likes": 7, "dislikes": 3})
    assert row.idempotency_key == f"approve_market:{market_id}"
    counted = evidence_votes(row.payload)
    assert sorted(v.wallet for v in counted) == sorted(str(k.pubkey()) for k, _ in voters)
    assert tally(counted).yes == 7 and row.payload["decision"] == "approved"
    assert (row.payload["threshold_bps"], row.payload["min_votes"]) == (7000, 10)
    # A later vote finds the decision taken: nothing new, the runner is not woken again.
    _, late = await api.sign_in()
    await vote_http(api, late, market_id, False)
    assert (await harness.next_report()).result is TallyResult.ALREADY_DECIDED
    assert harness.notified == 1 and len(await outbox_rows(api, market_id)) == 1
    # The votes endpoint shows what was sent, so anyone can recount.
    listing = (await api.client.get(f"/api/markets/{market_id}/votes")).json()
    submitted = listing["submitted"]
    assert submitted["tally"] == {"yes": 7, "no": 3, "total": 10}
    assert (submitted["status"], submitted["outcome"]) == ("pending", None)
    assert submitted["awaiting_admin_approval"] is False
    assert len(submitted["votes"]) == 10 and listing["tally"]["total"] == 11
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not harness.aggregator.leading.is_set()


async def test_tally_of_a_closed_or_missing_market_does_nothing(api):
    harness = Harness(api)
    approved = await add_market(api, "APPROVED")
    await add_votes(api, VoteKind.PROPOSAL, approved, 10, 0)
    assert (await harness.aggregator.tally_market(VoteKind.PROPOSAL, approved)).result is (
        TallyResult.NOT_OPEN
    )
    missing = await harness.aggregator.tally_market(VoteKind.DISPUTE, new_market_id())
    assert missing.result is TallyResult.NOT_OPEN
    assert await outbox_rows(api, approved) == []


async def test_on_chain_votes_count_once_and_are_marked_in_the_evidence(api):
    harness = Harness(api)
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 8, 2, on_chain=3)
    report = await harness.aggregator.tally_market(VoteKind.PROPOSAL, market_id)
    assert report.result is TallyResult.ENQUEUED
    [row] = await outbox_rows(api, market_id)
    assert sum(vote.on_chain for vote in evidence_votes(row.payload)) == 3


# ----------------------------------------------------------------------------- the sweep


async def test_sweep_is_one_grouped_query_per_kind_whatever_the_number_of_markets(api):
    harness = Harness(api)
    engine = api.container.database.engine
    selects: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        measured = []
        for markets in (3, 30):
            for _ in range(markets):
                await add_votes(api, VoteKind.PROPOSAL, await add_market(api), 5, 4)
            selects.clear()
            report = await harness.aggregator.sweep()
            assert report.results == []
            measured.append(len(selects))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert measured == [2, 2]  # proposals + disputes, never one query per market
    assert report.proposals == 33


async def test_sweep_decides_passing_proposals_and_due_disputes(api):
    harness = Harness(api)
    now = datetime.now(UTC)
    passing = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, passing, 7, 3)
    failing = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, failing, 6, 4)
    few = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, few, 9, 0)

    def disputed(**fields: Any) -> Any:
        return add_market(api, "DISPUTED", proposed_outcome=True, **fields)

    over = now - PERIOD - timedelta(minutes=1)
    succeeds = await disputed(resolution_proposed_at=over)
    await add_votes(api, VoteKind.DISPUTE, succeeds, 6, 4)
    fails = await disputed(resolution_proposed_at=over)
    await add_votes(api, VoteKind.DISPUTE, fails, 59, 41)
    no_votes = await disputed(resolution_proposed_at=over)
    quorum = await disputed(resolution_proposed_at=over)
    await add_votes(api, VoteKind.DISPUTE, quorum, 3, 0)
    still_open = await disputed(resolution_proposed_at=now - timedelta(hours=1))
    await add_votes(api, VoteKind.DISPUTE, still_open, 10, 0)
    unknown = await disputed()

    report = await harness.aggregator.sweep()
    assert sorted(report.enqueued()) == sorted([passing, succeeds, fails])
    assert harness.notified == 3
    assert DISPUTES_AWAITING_QUORUM._value.get() == 1
    assert DISPUTES_WITHOUT_VOTES._value.get() == 1
    assert list(harness.aggregator._deadlines) == [still_open]
    decisions = {}
    for market_id in (succeeds, fails):
        [row] = await outbox_rows(api, market_id)
        assert row.intent == Intent.RESOLVE_DISPUTE
        decisions[market_id] = (row.payload["decision"], row.arguments)
    assert decisions == {
        succeeds: ("succeeded", {"agrees": 6, "disagrees": 4}),
        fails: ("failed", {"agrees": 59, "disagrees": 41}),
    }
    for market_id in (failing, few, quorum, still_open, unknown, no_votes):
        assert await outbox_rows(api, market_id) == []
    one = await harness.aggregator.tally_market(VoteKind.DISPUTE, unknown)
    assert one.result is TallyResult.UNKNOWN_PERIOD
    for market_id, expected in (
        (quorum, TallyResult.AWAITING_QUORUM),
        (still_open, TallyResult.PERIOD_OPEN),
        (no_votes, TallyResult.NO_VOTES),
    ):
        assert (await harness.aggregator.tally_market(VoteKind.DISPUTE, market_id)).result is (
            expected
        )
    # A second sweep finds every decided market gone from the open set.
    again = await harness.aggregator.sweep()
    assert again.results == [] and again.proposals == 2 and again.disputes == 4


async def test_the_loop_wakes_when_a_dispute_period_ends(api):
    harness = Harness(api)
    soon = datetime.now(UTC) - PERIOD + timedelta(seconds=2)
    market_id = await add_market(
        api, "DISPUTED", proposed_outcome=False, resolution_proposed_at=soon
    )
    await add_votes(api, VoteKind.DISPUTE, market_id, 7, 3)
    until = asyncio.Event()
    task = asyncio.create_task(harness.aggregator.lead(until))
    report = await harness.next_report()
    assert (report.market_id, report.trigger, report.result) == (
        market_id,
        "deadline",
        TallyResult.ENQUEUED,
    )
    until.set()  # what leader_locked does on stop and when the lock is lost
    await asyncio.wait_for(task, 10)
    assert len(await outbox_rows(api, market_id)) == 1


# ----------------------------------------------------------------------------- failures


class FailingThresholds:
    """Thresholds whose source fails `failures` times first (the RPC is down)."""

    def __init__(self, api: Any, failures: int) -> None:
        self.inner = ThresholdSource(api.container.settings, None)
        self.failures = failures

    async def get(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise RpcUnavailable("connection refused")
        return await self.inner.get()


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_failed_tally_is_retried_with_backoff(api):
    clock = Monotonic()
    harness = Harness(
        api, FailingThresholds(api, 2), monotonic=clock, retry_base_seconds=1, retry_cap_seconds=8
    )
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 10, 0)
    failures = TALLY_FAILURES.labels("proposal")._value.get()
    aggregator = harness.aggregator
    assert await aggregator.tally_safely(VoteKind.PROPOSAL, market_id, "event") is None
    assert aggregator._next_due() == 1001.0
    await aggregator._run_due()  # not due yet
    assert harness.reports.empty()
    clock.now = 1001.0
    await aggregator._run_due()  # fails again: the delay doubles
    assert aggregator._next_due() == 1003.0
    clock.now = 1003.0
    await aggregator._run_due()
    report = await harness.next_report()
    assert (report.trigger, report.result) == ("retry", TallyResult.ENQUEUED)
    assert aggregator._next_due() == float("inf")
    assert TALLY_FAILURES.labels("proposal")._value.get() == failures + 2


async def test_a_failed_sweep_is_tried_again_sooner(api):
    harness = Harness(api, FailingThresholds(api, 1), sweep_interval_seconds=300)
    assert await harness.aggregator._sweep_safely() == 1.0
    assert await harness.aggregator._sweep_safely() == 300


# ----------------------------------------------------------------------------- leadership


class DyingLocks(Locks):
    """The process dies holding the lock: no release, no renewal after the task is gone."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        return await self.inner.try_acquire(name, ttl)

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        return await self.inner.renew(name, token, ttl)

    async def release(self, name: str, token: str) -> None:
        pass


async def test_one_leader_aggregates_and_another_takes_over_when_it_dies(api):
    # A lease a loaded machine cannot let lapse between renewals (a third of it) while the
    # first leads; the takeover waits for it to run out once the leader is gone.
    first = Harness(api, locks=DyingLocks(api.container.locks), leader_ttl_seconds=3.0)
    second = Harness(api, leader_ttl_seconds=3.0)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    task_first = asyncio.create_task(first.aggregator.run(stop_first))
    await asyncio.wait_for(first.aggregator.leading.wait(), 10)
    task_second = asyncio.create_task(second.aggregator.run(stop_second))
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 7, 3)
    await publish(api.container.bus, vote_cast(market_id))
    assert (await first.next_report()).result is TallyResult.ENQUEUED
    assert not second.aggregator.leading.is_set() and second.reports.empty()

    task_first.cancel()  # the leader dies; its lock expires after the TTL
    with pytest.raises(asyncio.CancelledError):
        await task_first
    await asyncio.wait_for(second.aggregator.leading.wait(), 10)
    later = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, later, 10, 0)
    await publish(api.container.bus, vote_cast(later))
    report = await second.next_report()
    assert (report.market_id, report.result) == (later, TallyResult.ENQUEUED)
    assert len(await outbox_rows(api, market_id)) == 1
    stop_second.set()
    await asyncio.wait_for(task_second, 10)


class NoRenewLocks(DyingLocks):
    """Every renewal fails: the lease is lost after a third of the TTL."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.acquired = 0
        self.twice = asyncio.Event()

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        token = await self.inner.try_acquire(name, ttl)
        if token is not None:
            self.acquired += 1
            if self.acquired == 2:
                self.twice.set()
        return token

    async def renew(self, name: str, token: str, ttl: float) -> bool:
        return False

    async def release(self, name: str, token: str) -> None:
        await self.inner.release(name, token)


async def test_a_lost_lock_ends_the_lead_and_the_instance_competes_again(api):
    locks = NoRenewLocks(api.container.locks)
    harness = Harness(api, locks=locks, leader_ttl_seconds=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(harness.aggregator.run(stop))
    await asyncio.wait_for(locks.twice.wait(), 10)  # lost the lease, then won it again
    stop.set()
    await asyncio.wait_for(task, 10)
    assert locks.acquired >= 2


class BusyLocks(DyingLocks):
    """Another instance holds the lock for good; `tried` is set on the first attempt."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.tried = asyncio.Event()

    async def try_acquire(self, name: str, ttl: float) -> str | None:
        self.tried.set()
        return None


async def test_run_returns_when_stopped_while_waiting_for_the_lock(api):
    locks = BusyLocks(api.container.locks)
    harness = Harness(api, locks=locks, leader_ttl_seconds=30)
    stop = asyncio.Event()
    task = asyncio.create_task(harness.aggregator.run(stop))
    await asyncio.wait_for(locks.tried.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert not harness.aggregator.leading.is_set()


async def test_aggregator_jobs_wire_the_runner(api):
    runner = OutboxRunner(api.container.database, None, BackendKey(Keypair()))
    [job] = aggregator_jobs(api.container, runner)
    assert job.name == "votes-aggregator"
    aggregator = job.run.__self__
    assert aggregator.notify == runner.notify
    assert aggregator.sweep_interval == api.container.settings.sweep_interval_seconds
    assert aggregator.min_votes[VoteKind.PROPOSAL] == api.container.settings.proposal_min_votes


# ----------------------------------------------------------------------------- handlers


async def enqueued(api: Any, kind: VoteKind, market_id: str) -> ChainOutbox:
    harness = Harness(api)
    assert (await harness.aggregator.tally_market(kind, market_id)).result is TallyResult.ENQUEUED
    [row] = await outbox_rows(api, market_id)
    return row


async def confirm(api: Any, handler: Any, row: ChainOutbox, outcome: str) -> None:
    """What the runner does: mark the row confirmed and call the handler, in one transaction."""
    async with api.container.database.session() as session, session.begin():
        confirmed = await session.get(ChainOutbox, row.id)
        confirmed.status = OutboxStatus.CONFIRMED.value
        confirmed.payload = {**(confirmed.payload or {}), "chain": {"outcome": outcome}}
        await session.flush()
        await handler(session, confirmed)


async def next_market_event(subscription: Any) -> dict[str, Any]:
    return await asyncio.wait_for(subscription.get(), 10)


async def test_confirmed_approval_makes_the_market_approved_and_tells_the_clients(api):
    handlers = VoteActionHandlers(api.container.bus)
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 8, 2)
    row = await enqueued(api, VoteKind.PROPOSAL, market_id)
    async with api.container.bus.subscribe("markets") as markets:
        await confirm(api, handlers.on_approve_confirmed, row, Outcome.APPROVED)
        change = await next_market_event(markets)
    market = await market_row(api, market_id)
    assert (market.state, market.proposal_likes, market.proposal_dislikes) == ("APPROVED", 8, 2)
    assert market.approved_at is not None
    assert isinstance(change.pop("eventId"), str)
    assert change == {
        "type": "market_state_change",
        "marketId": market_id,
        "oldState": "PROPOSED",
        "newState": "APPROVED",
        "timestamp": market.approved_at.isoformat(),
    }


async def test_awaiting_admin_keeps_the_market_proposed_and_the_api_says_so(api):
    handlers = VoteActionHandlers(api.container.bus)
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 9, 1)
    row = await enqueued(api, VoteKind.PROPOSAL, market_id)
    async with api.container.bus.subscribe("markets") as markets:
        await confirm(api, handlers.on_approve_confirmed, row, Outcome.AWAITING_ADMIN_APPROVAL)
        await api.container.bus.publish("markets", {"type": "sentinel"})
        assert (await next_market_event(markets))["type"] == "sentinel"  # no state change
    market = await market_row(api, market_id)
    assert (market.state, market.proposal_likes, market.proposal_dislikes) == ("PROPOSED", 9, 1)
    submitted = (await api.client.get(f"/api/markets/{market_id}/votes")).json()["submitted"]
    assert submitted["status"] == "confirmed"
    assert submitted["outcome"] == "awaiting_admin_approval"
    assert submitted["awaiting_admin_approval"] is True


async def test_an_approval_of_a_market_already_moved_on_only_stores_the_counts(api):
    handlers = VoteActionHandlers(api.container.bus)
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 10, 0)
    row = await enqueued(api, VoteKind.PROPOSAL, market_id)
    await api.execute("UPDATE markets SET state = 'ACTIVE' WHERE id = :id", id=market_id)
    await confirm(api, handlers.on_approve_confirmed, row, Outcome.APPROVED)
    market = await market_row(api, market_id)
    assert (market.state, market.proposal_likes, market.approved_at) == ("ACTIVE", 10, None)


class Reader:
    def __init__(self, account: MarketAccount | None) -> None:
        self.account = account

    async def market(self, market_id: str) -> MarketAccount | None:
        return self.account


def account(state: MarketState, final: bool | None) -> MarketAccount:
    key = Pubkey.new_unique()
    return MarketAccount(key, "x", state, key, {"final_outcome": final})


@pytest.mark.parametrize(
    ("reader", "agree", "expected"),
    [
        (None, 6, False),  # no reader: the verdict (succeeded) flips the proposed YES
        (None, 5, True),  # failed: YES stands
        (Reader(None), 6, False),
        (Reader(account(MarketState.DISPUTED, None)), 5, True),
        (Reader(account(MarketState.FINALIZED, True)), 6, True),  # the chain's word wins
        (Reader(account(MarketState.FINALIZED, None)), 6, None),
    ],
)
async def test_confirmed_dispute_finalizes_the_market(api, reader, agree, expected):
    handlers = VoteActionHandlers(api.container.bus, reader)
    over = datetime.now(UTC) - PERIOD - timedelta(seconds=1)
    market_id = await add_market(
        api, "DISPUTED", proposed_outcome=True, resolution_proposed_at=over
    )
    await add_votes(api, VoteKind.DISPUTE, market_id, agree, 10 - agree)
    row = await enqueued(api, VoteKind.DISPUTE, market_id)
    async with api.container.bus.subscribe("markets") as markets:
        await confirm(api, handlers.on_dispute_confirmed, row, Outcome.FINALIZED)
        change = await next_market_event(markets)
    market = await market_row(api, market_id)
    assert (market.state, market.final_outcome) == ("FINALIZED", expected)
    assert (market.dispute_agree, market.dispute_disagree) == (agree, 10 - agree)
    assert market.finalized_at is not None
    assert (change["oldState"], change["newState"]) == ("DISPUTED", "FINALIZED")


async def test_dispute_confirmed_for_a_finalized_market_changes_only_the_counts(api):
    handlers = VoteActionHandlers(api.container.bus)
    over = datetime.now(UTC) - PERIOD - timedelta(seconds=1)
    market_id = await add_market(
        api, "DISPUTED", proposed_outcome=True, resolution_proposed_at=over
    )
    await add_votes(api, VoteKind.DISPUTE, market_id, 2, 8)
    row = await enqueued(api, VoteKind.DISPUTE, market_id)
    await api.execute("UPDATE markets SET state = 'FINALIZED' WHERE id = :id", id=market_id)
    await confirm(api, handlers.on_dispute_confirmed, row, Outcome.FINALIZED)
    market = await market_row(api, market_id)
    assert (market.state, market.dispute_agree, market.finalized_at) == ("FINALIZED", 2, None)


async def test_a_superseded_dispute_leaves_the_market_to_the_indexer(api):
    """Another signer's aggregate_dispute_votes moved the market first (outcome superseded):
    the handler changes nothing; the indexer applies that DisputeAggregated event."""
    handlers = VoteActionHandlers(api.container.bus)
    over = datetime.now(UTC) - PERIOD - timedelta(seconds=1)
    market_id = await add_market(
        api, "DISPUTED", proposed_outcome=True, resolution_proposed_at=over
    )
    await add_votes(api, VoteKind.DISPUTE, market_id, 8, 2)
    row = await enqueued(api, VoteKind.DISPUTE, market_id)
    await confirm(api, handlers.on_dispute_confirmed, row, Outcome.SUPERSEDED)
    market = await market_row(api, market_id)
    assert (market.state, market.dispute_agree, market.final_outcome) == ("DISPUTED", 0, None)


async def test_handlers_of_a_deleted_market_and_of_failures(api):
    handlers_map, failures_map = vote_outbox_handlers(api.container.bus)
    assert set(handlers_map) == set(failures_map) == {"approve_market", "resolve_dispute"}
    market_id = await add_market(api)
    await add_votes(api, VoteKind.PROPOSAL, market_id, 10, 0)
    row = await enqueued(api, VoteKind.PROPOSAL, market_id)
    await api.execute("DELETE FROM markets WHERE id = :id", id=market_id)
    for handler in (handlers_map["approve_market"], handlers_map["resolve_dispute"]):
        await confirm(api, handler, row, Outcome.APPROVED)  # logged, nothing to update
    before = ACTIONS_FAILED.labels("approve_market", "Unauthorized")._value.get()
    row.payload = {"chain": {"error": "Unauthorized"}}
    async with api.container.database.session() as session:
        await failures_map["approve_market"](session, row)
    assert ACTIONS_FAILED.labels("approve_market", "Unauthorized")._value.get() == before + 1


async def test_events_are_published_only_after_a_commit(api):
    bus = api.container.bus
    async with bus.subscribe("markets") as markets:
        with pytest.raises(RuntimeError):
            async with api.container.database.session() as session, session.begin():
                publish_after_commit(session, bus, change("rolled back"))
                raise RuntimeError("the transaction fails")
        async with api.container.database.session() as session:
            async with session.begin():
                publish_after_commit(session, bus, change("committed"))
            async with session.begin():
                pass  # a later commit of the same session publishes nothing more
        # The commit's publish runs as a task: wait for it before the sentinel, which then
        # shows that nothing else (the rolled-back event, a second publish) was sent.
        first = await next_market_event(markets)
        await bus.publish("markets", {"type": "sentinel"})
        second = await next_market_event(markets)
    assert [first.get("marketId"), second["type"]] == ["committed", "sentinel"]


async def test_a_failing_publish_is_logged_not_raised():
    class BrokenBus:
        async def publish(self, topic: str, message: Any) -> None:
            raise ConnectionError("redis down")

    with capture_logs() as logs:
        await handlers_module._publish(BrokenBus(), change("m"))
    [entry] = [e for e in logs if e["event"] == "vote event publish failed"]
    assert entry["log_level"] == "error"
    assert (entry["topic"], entry["market_id"]) == ("markets", "m")
    assert entry["exc_info"] is True  # logged with the ConnectionError's traceback
