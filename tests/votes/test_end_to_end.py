"""Vote aggregation end to end: HTTP sign-in and votes, PostgreSQL, Redis, the aggregator, the
chain outbox and the local chain running the faithful twin of zmart_core (issue #17)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from sqlalchemy import select

from marketd.chain.client import ChainClient
from marketd.chain.clock import ChainClock
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.outbox import OutboxStatus
from marketd.chain.program import BUNDLED_IDL
from marketd.chain.stream import ProgramEventStream
from marketd.core.waits import Backoff
from marketd.indexer.indexer import Indexer
from marketd.models import ChainOutbox, DisputeVote, Market, User
from marketd.shared.market_state import MarketState
from marketd.votes.aggregator import TallyResult, worker_aggregator
from marketd.votes.evidence import evidence_votes
from marketd.votes.rules import VoteKind
from marketd.worker import outbox_runner

from ..helpers.chain import PROGRAM_ID, SOL, ChainWorld

LEASE = 60.0
DISPUTE_PERIOD = timedelta(seconds=259_200)  # the twin's GlobalConfig default


class RunnerKilled(BaseException):
    """The process dying: nothing in the runner catches a BaseException."""


@pytest.fixture
def backend() -> str:
    return "postgres"  # real PostgreSQL and Redis only


@pytest_asyncio.fixture
async def world() -> AsyncIterator[Any]:
    coder = IdlCoder(Idl.from_path(BUNDLED_IDL))
    chain = LocalChain()
    chain.load_program(PROGRAM_ID, program_artifact())
    async with serve_local_rpc(chain) as endpoint:
        client = ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed),
            coder,
            PROGRAM_ID,
            poll_interval=0.01,
        )
        async with client:
            yield ChainWorld(chain, endpoint, client, coder)


class Stack:
    """One marketd worker: aggregator + outbox runner on an API instance's container."""

    def __init__(
        self,
        api: Any,
        world: Any,
        *,
        chain_time: bool = False,
        leader_ttl_seconds: float = 2.0,
        **runner_options: Any,
    ) -> None:
        container = api.container
        runner_options.setdefault("confirm_wait_seconds", 5.0)
        # Built as the worker builds them (marketd.worker), on the test's clock and leases.
        self.runner = outbox_runner(
            container,
            world.client,
            world.backend,
            clock=world.clock,
            lease_seconds=LEASE,
            **runner_options,
        )
        self.reports: asyncio.Queue[Any] = asyncio.Queue()
        self.aggregator = worker_aggregator(
            container,
            self.runner,
            clock=world.clock,
            chain_clock=ChainClock(world.client) if chain_time else None,
            leader_ttl_seconds=leader_ttl_seconds,
            observer=self._observe,
        )
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _observe(self, report: Any) -> None:
        self.reports.put_nowait(report)

    async def report_for(self, market_id: str) -> Any:
        while True:
            report = await asyncio.wait_for(self.reports.get(), 10)
            if report.market_id == market_id:
                return report

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self.runner.run(self.stop_event, interval=1.0)),
            asyncio.create_task(self.aggregator.run(self.stop_event)),
        ]

    async def stop(self) -> None:
        self.stop_event.set()
        self.runner.notify()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 15)


@pytest_asyncio.fixture
async def stacks() -> AsyncIterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for stack in started:
        if stack.tasks:
            await stack.stop()


async def start_stack(stacks: list[Stack], api: Any, world: Any, **options: Any) -> Stack:
    stack = Stack(api, world, **options)
    stacks.append(stack)
    stack.start()
    await asyncio.wait_for(stack.aggregator.leading.wait(), 10)
    return stack


async def proposed_market(api: Any, world: Any) -> str:
    _, creator = await api.sign_in()
    market_id: str = await api.market(creator)
    world.create_market(market_id=market_id)
    return market_id


async def voters(api: Any, count: int) -> list[dict[str, str]]:
    return [(await api.sign_in())[1] for _ in range(count)]


async def vote(api: Any, headers: dict[str, str], market_id: str, choice: bool, kind: str) -> None:
    response = await api.client.post(
        f"/api/votes/{kind}", json={"market_id": market_id, "vote": choice}, headers=headers
    )
    assert response.status_code == 200, response.text


async def state_change(subscription: Any, market_id: str, within: float) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            message = await subscription.get()
            if message.get("type") == "market_state_change" and message["marketId"] == market_id:
                return dict(message)

    return await asyncio.wait_for(wait(), within)


def backend_sent(world: Any) -> int:
    """Transactions the backend key paid for (airdrops and users' transactions excluded)."""
    payer = str(world.backend.pubkey)
    return sum(1 for record in world.chain.records() if record.account_keys[0] == payer)


async def outbox_rows(api: Any, market_id: str) -> list[ChainOutbox]:
    async with api.container.database.session() as session:
        result = await session.execute(
            select(ChainOutbox).where(ChainOutbox.market_id == market_id)
        )
        return list(result.scalars().all())


async def db_market(api: Any, market_id: str) -> Market:
    async with api.container.database.session() as session:
        market = await session.get(Market, market_id)
        assert market is not None
        return market


# ----------------------------------------------------------------------------- proposals


async def test_seven_likes_of_ten_approve_on_chain_within_two_seconds(api, world, stacks):
    world.initialize()
    stack = await start_stack(stacks, api, world)
    market_id = await proposed_market(api, world)
    headers = await voters(api, 10)
    async with api.container.bus.subscribe("markets") as markets:
        for index, voter in enumerate(headers):
            if index == 9:
                before = backend_sent(world)
            await vote(api, voter, market_id, index < 7, "proposal")
            if index < 9:
                assert (await stack.report_for(market_id)).result is TallyResult.NOT_PASSING
        deciding_response = time.monotonic()
        change = await state_change(markets, market_id, within=2.0)
        elapsed = time.monotonic() - deciding_response
    assert elapsed < 2.0
    assert (change["oldState"], change["newState"]) == ("PROPOSED", "APPROVED")
    account = await world.client.market(market_id)
    assert account.state == MarketState.APPROVED
    assert (account.data["proposal_likes"], account.data["proposal_dislikes"]) == (7, 3)
    market = await db_market(api, market_id)
    assert (market.state, market.proposal_likes, market.proposal_dislikes) == ("APPROVED", 7, 3)
    assert market.approved_at is not None
    assert backend_sent(world) == before + 1  # aggregate + approve in ONE transaction
    assert world.events("ProposalApproved", market_id) == 1
    submitted = (await api.client.get(f"/api/markets/{market_id}/votes")).json()["submitted"]
    assert (submitted["status"], submitted["outcome"]) == ("confirmed", "approved")
    assert world.chain.get_record(submitted["signature"]).err is None
    recount = [v["vote"] for v in submitted["votes"]]
    assert (recount.count(True), recount.count(False)) == (7, 3)


async def test_a_proposal_is_approved_only_once_its_market_is_on_chain(api, world, stacks):
    """Proposed through the API, its creator's create_market not landed yet: the passing tally
    enqueues nothing (an approval would retry for nothing); once the market is on chain the
    next tally approves it."""
    world.initialize()
    stack = Stack(api, world)
    _, creator = await api.sign_in()
    market_id: str = await api.market(creator)
    for index, voter in enumerate(await voters(api, 10)):
        await vote(api, voter, market_id, index < 8, "proposal")
    report = await stack.aggregator.tally_market(VoteKind.PROPOSAL, market_id)
    assert report.result is TallyResult.NOT_ON_CHAIN
    assert (await stack.aggregator.sweep()).enqueued() == []
    assert await outbox_rows(api, market_id) == []
    world.create_market(market_id=market_id)
    assert (await stack.aggregator.sweep()).enqueued() == [market_id]
    assert (await stack.runner.run_once()).results == {"confirmed": 1}
    assert (await world.client.market(market_id)).state == MarketState.APPROVED
    assert (await db_market(api, market_id)).state == "APPROVED"


async def test_a_proposal_waiting_for_its_market_is_looked_at_again_soon(api, world, stacks):
    """NOT_ON_CHAIN is retried with backoff (1 s, 2 s, ...), not left to the next sweep
    minutes later: the creator's create_market usually lands right after the proposal."""
    world.initialize()
    stack = Stack(api, world)
    now = [1_000.0]
    stack.aggregator.monotonic = lambda: now[0]
    _, creator = await api.sign_in()
    market_id: str = await api.market(creator)
    for index, voter in enumerate(await voters(api, 10)):
        await vote(api, voter, market_id, index < 8, "proposal")
    report = await stack.aggregator.tally_safely(VoteKind.PROPOSAL, market_id, "event")
    assert report is not None and report.result is TallyResult.NOT_ON_CHAIN
    assert stack.aggregator._next_due() == 1_001.0  # in a second
    await stack.aggregator.tally_safely(VoteKind.PROPOSAL, market_id, "retry")
    assert stack.aggregator._next_due() == 1_002.0  # then two: backing off
    world.create_market(market_id=market_id)
    now[0] = 1_002.0
    await stack.aggregator._run_due()
    assert [row.intent for row in await outbox_rows(api, market_id)] == ["approve_market"]
    assert stack.aggregator._next_due() == float("inf")  # decided: no retry left


@pytest.mark.parametrize(("likes", "dislikes"), [(6, 4), (9, 0)])
async def test_below_threshold_or_minimum_sends_nothing(api, world, stacks, likes, dislikes):
    world.initialize()
    stack = await start_stack(stacks, api, world)
    market_id = await proposed_market(api, world)
    before = backend_sent(world)
    for index, voter in enumerate(await voters(api, likes + dislikes)):
        await vote(api, voter, market_id, index < likes, "proposal")
        assert (await stack.report_for(market_id)).result is TallyResult.NOT_PASSING
    # The sweep agrees, and the runner, woken, finds nothing to send.
    assert (await stack.aggregator.sweep()).results == []
    assert (await stack.runner.run_once()).results == {}
    assert await outbox_rows(api, market_id) == []
    assert backend_sent(world) == before
    assert (await world.client.market(market_id)).state == MarketState.PROPOSED
    assert (await db_market(api, market_id)).state == "PROPOSED"


async def test_a_changed_vote_counts_once(api, world, stacks):
    world.initialize()
    stack = await start_stack(stacks, api, world)
    market_id = await proposed_market(api, world)
    headers = await voters(api, 10)
    async with api.container.bus.subscribe("markets") as markets:
        await vote(api, headers[0], market_id, True, "proposal")
        await vote(api, headers[0], market_id, False, "proposal")  # changed: like -> dislike
        for index, voter in enumerate(headers[1:], start=1):
            await vote(api, voter, market_id, index <= 7, "proposal")
        # 7 likes + 3 dislikes (the changed vote once, as a dislike): 70% of 10 approves.
        await state_change(markets, market_id, within=5.0)
    account = await world.client.market(market_id)
    assert (account.data["proposal_likes"], account.data["proposal_dislikes"]) == (7, 3)
    [row] = await outbox_rows(api, market_id)
    counted = evidence_votes(row.payload)
    assert len(counted) == 10 == len({v.wallet for v in counted})
    reports = []
    while not stack.reports.empty():
        reports.append(stack.reports.get_nowait())
    assert [r.result for r in reports if r.market_id == market_id].count(TallyResult.ENQUEUED) == 1


async def test_two_instances_at_once_send_exactly_one_transaction(api_factory, world, stacks):
    first_api = await api_factory()
    second_api = await api_factory()
    world.initialize()
    # A lease far longer than the test: on a loaded machine a 2 s lease can lapse between two
    # renewals, and then the second instance leads rightly (the failover test covers that).
    first = await start_stack(stacks, first_api, world, leader_ttl_seconds=60.0)
    second = Stack(second_api, world, leader_ttl_seconds=60.0)
    stacks.append(second)
    second.start()  # competes for the aggregator lock and runs its own outbox runner
    market_id = await proposed_market(first_api, world)
    before = backend_sent(world)
    async with first_api.container.bus.subscribe("markets") as markets:
        for index, voter in enumerate(await voters(second_api, 10)):
            api = first_api if index % 2 else second_api
            await vote(api, voter, market_id, index < 7, "proposal")
        await state_change(markets, market_id, within=5.0)
    assert not second.aggregator.leading.is_set()
    # And with the lock bypassed: both instances sweep and run at the same moment.
    other = await proposed_market(first_api, world)
    for index, voter in enumerate(await voters(first_api, 10)):
        response = await first_api.client.post(
            "/api/votes/proposal", json={"market_id": other, "vote": index < 8}, headers=voter
        )
        assert response.status_code == 200
    await asyncio.gather(first.aggregator.sweep(), second.aggregator.sweep())
    await asyncio.gather(first.runner.run_once(), second.runner.run_once())
    async with first_api.container.bus.subscribe("markets") as markets:
        market = await db_market(first_api, other)
        if market.state != "APPROVED":
            await state_change(markets, other, within=5.0)
    for decided in (market_id, other):
        assert len(await outbox_rows(first_api, decided)) == 1
        assert world.events("ProposalAggregated", decided) == 1
        assert world.events("ProposalApproved", decided) == 1
        assert (await db_market(first_api, decided)).state == "APPROVED"
    assert backend_sent(world) == before + 2  # one transaction per approved market


async def test_a_crash_after_sending_is_repaired_without_a_second_transaction(api, world, stacks):
    world.initialize()
    market_id = await proposed_market(api, world)
    for index, voter in enumerate(await voters(api, 10)):
        await vote(api, voter, market_id, index < 8, "proposal")

    async def die_once_landed(step: str, _row: Any) -> None:
        if step == "landed":
            raise RunnerKilled(step)

    crashing = Stack(api, world, observer=die_once_landed)
    result = await crashing.aggregator.tally_market(VoteKind.PROPOSAL, market_id)
    assert result.result is TallyResult.ENQUEUED
    with pytest.raises(RunnerKilled):
        await crashing.runner.run_once()
    [sent] = await outbox_rows(api, market_id)
    assert sent.status == OutboxStatus.SENT  # sent and landed, never recorded
    assert (await world.client.market(market_id)).state == MarketState.APPROVED
    assert (await db_market(api, market_id)).state == "PROPOSED"
    after_crash = backend_sent(world)

    restarted = Stack(api, world)
    assert (await restarted.aggregator.sweep()).results == []  # decided already: no new row
    assert (await restarted.aggregator.tally_market(VoteKind.PROPOSAL, market_id)).result is (
        TallyResult.ALREADY_DECIDED
    )
    world.clock.advance(LEASE + 1)  # the dead runner's claim runs out
    async with api.container.bus.subscribe("markets") as markets:
        report = await restarted.runner.run_once()
        change = await state_change(markets, market_id, within=5.0)
    assert report.results == {"confirmed": 1}
    assert change["newState"] == "APPROVED"
    [fixed] = await outbox_rows(api, market_id)
    assert (fixed.status, fixed.signature) == (OutboxStatus.CONFIRMED, sent.signature)
    market = await db_market(api, market_id)
    assert (market.state, market.proposal_likes, market.proposal_dislikes) == ("APPROVED", 8, 2)
    assert backend_sent(world) == after_crash
    assert world.events("ProposalApproved", market_id) == 1


async def test_backend_not_admin_records_the_tally_and_awaits_the_admin(api, world, stacks):
    world.initialize(admin=world.funded())
    stack = await start_stack(stacks, api, world)
    market_id = await proposed_market(api, world)
    for index, voter in enumerate(await voters(api, 10)):
        await vote(api, voter, market_id, index < 9, "proposal")
    while (await stack.report_for(market_id)).result is not TallyResult.ENQUEUED:
        pass
    listing: dict[str, Any] = {}
    for _ in range(100):  # each pass lands or confirms; no waiting on time
        await stack.runner.run_once()
        listing = (await api.client.get(f"/api/markets/{market_id}/votes")).json()["submitted"]
        if listing["status"] == "confirmed":
            break
    assert listing["status"] == "confirmed"
    assert listing["awaiting_admin_approval"] is True
    account = await world.client.market(market_id)
    assert account.state == MarketState.PROPOSED
    assert (account.data["proposal_likes"], account.data["proposal_dislikes"]) == (9, 1)
    market = await db_market(api, market_id)
    assert (market.state, market.proposal_likes) == ("PROPOSED", 9)


# ----------------------------------------------------------------------------- disputes


async def disputed_market(api: Any, world: Any, *, chain_times: bool = False) -> str:
    """A market disputed on chain (proposed outcome YES), DISPUTED in the database with its
    dispute period still running (resolution time: the account's with `chain_times`)."""
    market_id: str = world.market_in("Disputed")
    proposed_at = datetime.now(UTC) - timedelta(hours=1)
    if chain_times:
        account = await world.client.market(market_id)
        proposed_at = datetime.fromtimestamp(account.data["resolution_proposed_at"], UTC)
    creator = str(Pubkey.new_unique())
    async with api.container.database.session() as session, session.begin():
        session.add(User(wallet=creator))  # the platform's markets reference users
        await session.flush()
        session.add(
            Market(
                id=market_id,
                on_chain_address=str(world.client.market_address(market_id)),
                question="Will the dispute be decided?",
                creator_wallet=creator,
                state="DISPUTED",
                proposed_outcome=True,
                resolution_proposed_at=proposed_at,
            )
        )
    return market_id


@pytest.mark.parametrize(
    ("agree", "disagree", "final"),
    [(6, 4, False), (59, 41, True)],
    ids=["60-percent-flips", "59-percent-stands"],
)
async def test_dispute_decided_at_the_end_of_its_period(api, world, stacks, agree, disagree, final):
    world.initialize()
    market_id = await disputed_market(api, world)
    stack = Stack(api, world)
    if agree + disagree == 10:  # over HTTP, as users vote
        for index, voter in enumerate(await voters(api, 10)):
            await vote(api, voter, market_id, index < agree, "dispute")
    else:  # 100 votes: straight into the table (as the indexer records on-chain votes)
        wallets = [str(Pubkey.new_unique()) for _ in range(agree + disagree)]
        async with api.container.database.session() as session, session.begin():
            session.add_all([User(wallet=wallet) for wallet in wallets])
            await session.flush()  # the platform's votes reference users
            for index, wallet in enumerate(wallets):
                session.add(
                    DisputeVote(
                        market_id=market_id,
                        user_wallet=wallet,
                        vote=index < agree,
                        voted_at=datetime.now(UTC),
                        tx_signature=f"sig{index}",
                    )
                )
    assert (await stack.aggregator.sweep()).results == []  # the period is not over
    assert await outbox_rows(api, market_id) == []
    world.clock.advance(DISPUTE_PERIOD.total_seconds())
    async with api.container.bus.subscribe("markets") as markets:
        sweep = await stack.aggregator.sweep()
        assert sweep.enqueued() == [market_id]
        assert (await stack.runner.run_once()).results == {"confirmed": 1}
        change = await state_change(markets, market_id, within=5.0)
    assert (change["oldState"], change["newState"]) == ("DISPUTED", "FINALIZED")
    account = await world.client.market(market_id)
    assert account.state == MarketState.FINALIZED
    assert account.data["final_outcome"] is final
    assert (account.data["dispute_agree"], account.data["dispute_disagree"]) == (agree, disagree)
    market = await db_market(api, market_id)
    assert (market.state, market.final_outcome) == ("FINALIZED", final)
    assert (market.dispute_agree, market.dispute_disagree) == (agree, disagree)
    assert market.finalized_at is not None
    submitted = (
        await api.client.get(f"/api/markets/{market_id}/votes", params={"kind": "dispute"})
    ).json()["submitted"]
    assert submitted["decision"] == ("succeeded" if not final else "failed")
    assert len(submitted["votes"]) == agree + disagree


async def dispute_votes(api: Any, market_id: str, agree: int, disagree: int) -> None:
    """Dispute votes straight into the table (as the indexer records on-chain votes: with
    their signature, so they count whatever the eligibility strategies)."""
    wallets = [str(Pubkey.new_unique()) for _ in range(agree + disagree)]
    async with api.container.database.session() as session, session.begin():
        session.add_all([User(wallet=wallet) for wallet in wallets])
        await session.flush()  # the platform's votes reference users
        for index, wallet in enumerate(wallets):
            session.add(
                DisputeVote(
                    market_id=market_id,
                    user_wallet=wallet,
                    vote=index < agree,
                    voted_at=datetime.now(UTC),
                    tx_signature=f"sig-{market_id[:8]}-{agree}-{disagree}-{index}",
                )
            )


@pytest.mark.parametrize(
    ("agree", "disagree", "final"),
    [(8, 2, False), (3, 7, True)],
    ids=["upheld-flips", "rejected-stands"],
)
async def test_dispute_period_ends_by_the_chain_clock_with_one_finalize(
    api, world, stacks, agree, disagree, final
):
    """The chain's clock past the period (the local clock not moved): the dispute is decided,
    by ONE finalize_market(Some, Some) on the Disputed market; the program flips or keeps."""
    world.initialize()
    market_id = await disputed_market(api, world, chain_times=True)
    stack = Stack(api, world, chain_time=True)
    await dispute_votes(api, market_id, agree, disagree)
    assert (await stack.aggregator.sweep()).results == []  # the chain says: period open
    world.tick(int(DISPUTE_PERIOD.total_seconds()))  # the chain's clock only
    before = backend_sent(world)
    sweep = await stack.aggregator.sweep()
    assert sweep.enqueued() == [market_id]
    assert (await stack.runner.run_once()).results == {"confirmed": 1}
    assert backend_sent(world) == before + 1
    record = [r for r in world.chain.records() if r.account_keys[0] == str(world.backend.pubkey)][
        -1
    ]
    assert world.events("DisputeAggregated", market_id) == 0
    assert world.events("MarketFinalized", market_id) == 1
    assert record.err is None
    account = await world.client.market(market_id)
    assert (account.state, account.data["final_outcome"]) == (MarketState.FINALIZED, final)
    assert account.data["was_disputed"] is True
    market = await db_market(api, market_id)
    assert (market.state, market.final_outcome) == ("FINALIZED", final)
    assert (market.dispute_agree, market.dispute_disagree) == (agree, disagree)


async def test_a_dispute_without_votes_waits_and_the_api_says_why(api, world, stacks):
    world.initialize()
    market_id = await disputed_market(api, world, chain_times=True)
    stack = Stack(api, world, chain_time=True)
    world.tick(int(DISPUTE_PERIOD.total_seconds()))
    before = backend_sent(world)
    assert (await stack.aggregator.sweep()).results == []
    report = await stack.aggregator.tally_market(VoteKind.DISPUTE, market_id)
    assert report.result is TallyResult.NO_VOTES
    assert await outbox_rows(api, market_id) == []
    assert (await stack.runner.run_once()).results == {}
    assert backend_sent(world) == before  # never a transaction the program refuses
    page = (
        await api.client.get(f"/api/markets/{market_id}/votes", params={"kind": "dispute"})
    ).json()
    assert (page["waiting"], page["submitted"]) == ("no_votes", None)
    assert (await world.client.market(market_id)).state == MarketState.DISPUTED
    # The first vote (against the dispute) decides it: the proposal stands.
    await dispute_votes(api, market_id, 0, 1)
    report = await stack.aggregator.tally_market(VoteKind.DISPUTE, market_id)
    assert report.result is TallyResult.ENQUEUED
    assert (await stack.runner.run_once()).results == {"confirmed": 1}
    account = await world.client.market(market_id)
    assert (account.state, account.data["final_outcome"]) == (MarketState.FINALIZED, True)
    page = (
        await api.client.get(f"/api/markets/{market_id}/votes", params={"kind": "dispute"})
    ).json()
    assert page["waiting"] is None and page["submitted"]["status"] == "confirmed"


# ----------------------------------------------------------------------- any market on chain


async def index_chain(api: Any, world: Any) -> None:
    """One indexer pass over the chain's whole history (a replay changes nothing)."""
    stream = ProgramEventStream(
        http_url=world.endpoint.http_url,
        ws_url=world.endpoint.ws_url,
        program_id=PROGRAM_ID,
        coder=world.coder,
        commitment=Confirmed,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )
    try:
        indexer = Indexer(api.container, world.client, stream, missing_checks=1)
        await indexer.index([batch async for batch in stream.backfill(None)])
    finally:
        await stream.aclose()


async def test_a_foreign_clients_market_is_indexed_approved_traded_and_served(api, world, stacks):
    """A market marketd never saw through its API: 32 random bytes as its id (the platform's
    front end), created by a key that is not marketd's, voted on chain by its users. marketd
    indexes it under the bytes' hex, approves it from the on-chain votes, follows its trades,
    and serves it by id and by its account's address."""
    world.initialize()
    stack = Stack(api, world)
    raw = b"\xfe" + secrets.token_bytes(31)  # not ASCII: no UUID text could name it
    market_id = raw.hex()
    creator = world.funded()
    assert creator.pubkey() != world.backend.pubkey
    world.create_market(creator, market_id)
    account = await world.client.market(market_id)
    assert bytes(account.data["market_id"]) == raw and account.market_id == market_id
    for index in range(10):
        world.vote(market_id, world.funded(), index < 7)
    await index_chain(api, world)
    market = await db_market(api, market_id)
    assert (market.state, market.on_chain_address) == ("PROPOSED", str(account.address))
    assert market.creator_wallet == str(creator.pubkey())

    # marketd's aggregator counts the indexed on-chain votes and approves (aggregate + approve).
    assert (await stack.aggregator.sweep()).enqueued() == [market_id]
    assert (await stack.runner.run_once()).results == {"confirmed": 1}
    approved = await world.client.market(market_id)
    assert approved.state == MarketState.APPROVED
    assert (approved.data["proposal_likes"], approved.data["proposal_dislikes"]) == (7, 3)

    world.activate(market_id)
    traders = [world.funded() for _ in range(2)]
    for index, trader in enumerate(traders):
        world.buy(market_id, trader, index == 0, (index + 1) * SOL)
    await index_chain(api, world)
    after = await world.client.market(market_id)
    market = await db_market(api, market_id)
    assert market.state == "ACTIVE"
    assert (market.shares_yes, market.shares_no, market.total_volume) == (
        after.data["shares_yes"],
        after.data["shares_no"],
        after.data["total_volume"],
    )

    listed = (await api.client.get("/api/markets", params={"state": "ACTIVE"})).json()["items"]
    assert [item["id"] for item in listed] == [market_id]
    by_id = await api.client.get(f"/api/markets/{market_id}")
    by_address = await api.client.get(f"/api/markets/{account.address}")
    assert by_id.status_code == by_address.status_code == 200
    assert by_id.json() == by_address.json()
    assert by_id.json()["on_chain_address"] == str(account.address)
    recorded = by_id.json()["on_chain_votes"]["proposal"]
    assert (recorded["likes"], recorded["dislikes"]) == (7, 3)
    trades = (await api.client.get(f"/api/markets/{market_id}/trades")).json()["items"]
    assert sorted(t["user_wallet"] for t in trades) == sorted(str(t.pubkey()) for t in traders)
