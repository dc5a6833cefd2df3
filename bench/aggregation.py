"""Vote aggregation benchmark (issue 4), PostgreSQL + Redis + the local chain.

1. 10,000 PROPOSED markets and 1,000,000 proposal votes COPYed into a scratch database (100
   votes per market, likes drawn below the 70% threshold, so a sweep decides nothing and
   measures the tally itself): the time of one full sweep (ONE grouped query per kind), and,
   side by side, the same tallies done the naive way (one query per market).
2. Latency of the deciding vote: `marketd serve` in its own process, the aggregator and the
   outbox runner in this one (as `marketd worker` runs them, the aggregator on the chain's
   clock), the local chain (LiteSVM + the faithful twin of zmart_core, JSON-RPC endpoint)
   beside them. For each of 200 markets: 9 votes (6 likes, 3 dislikes), then the deciding
   like; the time from that vote's HTTP response to the approval transaction's confirmation
   (seen by the runner) and to the `market_state_change` event (row committed, event on the
   bus).

3. Latency of the deciding DISPUTE vote (issue 17), on the same set-up as 2 (one server, chain,
   runner and aggregator for both): markets driven to Disputed on the twin by real
   instructions, the chain's clock past the dispute period (the aggregator judges by the
   chain's Clock), 9 dispute votes (6 agree, 3 disagree: awaiting the 10-vote quorum), then the
   deciding agree; the time from that vote's HTTP response to the market_state_change to
   FINALIZED (one finalize_market(Some, Some), outcome flipped).

    .venv/bin/python bench/aggregation.py [--markets 10000] [--votes 1000000] [--latency 200]
        [--dispute-latency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REDIS_URL,
    SIMULATED_CLIENTS,
    free_port,
    percentiles,
    scratch_database,
    server_process,
)
from marketd.chain.addresses import market_address, market_id_bytes, market_id_from_bytes
from marketd.chain.client import ChainClient
from marketd.chain.clock import ChainClock
from marketd.chain.errors import BlockhashExpired
from marketd.chain.keys import BackendKey
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.outbox import OutboxRunner
from marketd.config import DEFAULT_PROGRAM_ID, Settings
from marketd.core.bus import EventBus, InProcessBus
from marketd.core.container import Container
from marketd.core.database import Database, create_engine
from marketd.core.locks import MemoryLocks
from marketd.models import Market
from marketd.shared.market_state import MarketState
from marketd.votes.aggregator import TallyResult, VoteAggregator
from marketd.votes.handlers import vote_outbox_handlers
from marketd.votes.repository import VoteRepository
from marketd.votes.rules import VoteKind
from marketd.votes.thresholds import ThresholdSource

SOL = 1_000_000_000
MARKET_COLUMNS = [
    "id",
    "on_chain_address",
    "question",
    "category",
    "tags",
    "creator_wallet",
    "state",
    "b_parameter",
    "initial_liquidity",
    "current_liquidity",
    "shares_yes",
    "shares_no",
    "current_price_yes",
    "current_price_no",
    "total_volume",
    "proposal_likes",
    "proposal_dislikes",
    "dispute_agree",
    "dispute_disagree",
    "created_at",
    "is_cancelled",
    "updated_at",
]


async def seed(url: str, markets: int, votes: int) -> None:
    """COPY markets and votes in; every market stays below the approval threshold."""
    program = Pubkey.from_string(DEFAULT_PROGRAM_ID)
    rng = random.Random(4)
    now = datetime.now(UTC)
    wallets = [str(Pubkey.new_unique()) for _ in range(2_000)]
    ids = [market_id_from_bytes(rng.randbytes(32)) for _ in range(markets)]
    per_market = votes // markets
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table(  # the platform's tables reference users
            "users", records=[(w, now) for w in wallets], columns=["wallet", "created_at"]
        )
        rows = [
            (
                market_id,
                str(market_address(program, market_id)),
                f"Will aggregation benchmark market {index} pass?",
                "other",
                [],
                wallets[index % len(wallets)],
                MarketState.PROPOSED.value,
                100 * SOL,
                10 * SOL,
                10 * SOL,
                0,
                0,
                0.5,
                0.5,
                0,
                0,
                0,
                0,
                0,
                now - timedelta(minutes=index),
                False,
                now,
            )
            for index, market_id in enumerate(ids)
        ]
        await connection.copy_records_to_table("markets", records=rows, columns=MARKET_COLUMNS)
        records = (
            (
                uuid.uuid4(),
                market_id,
                wallets[(index * 7 + j) % len(wallets)],
                j < likes,
                now - timedelta(seconds=j),
                None,
            )
            for index, market_id in enumerate(ids)
            for likes in (rng.randint(0, per_market * 7 // 10 - 1),)
            for j in range(per_market)
        )
        await connection.copy_records_to_table(
            "proposal_votes",
            records=records,
            columns=["id", "market_id", "user_wallet", "vote", "voted_at", "tx_signature"],
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def settings_for(url: str, **values: Any) -> Settings:
    return Settings(_env_file=None, database_url=url, **values)  # type: ignore[call-arg]


async def sweep_figures(url: str, repeats: int) -> None:
    database = Database(create_engine(settings_for(url)))
    settings = settings_for(url)
    aggregator = VoteAggregator.from_settings(
        settings,
        database,
        InProcessBus(),
        MemoryLocks(),
        ThresholdSource(settings, None),
        lambda: None,
    )
    try:
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            report = await aggregator.sweep()
            timings.append(time.perf_counter() - started)
        assert report.results == [], "the seed must decide nothing"
        started = time.perf_counter()
        naive_decided = 0
        async with database.session() as session:
            proposed = select(Market.id).where(Market.state == MarketState.PROPOSED.value)
            ids = list(await session.scalars(proposed))
            repository = VoteRepository(session)
            for market_id in ids:  # one query per market, as a naive sweep would
                tally = await repository.tally(VoteKind.PROPOSAL, market_id)
                naive_decided += tally.passes(7000, 10)
        naive = time.perf_counter() - started
    finally:
        await database.dispose()
    best, median = min(timings), statistics.median(timings)
    print(
        f"\n== sweep of {report.proposals} proposed markets ({repeats} runs, ONE grouped query "
        f"per kind)\n   first {timings[0] * 1000:.0f} ms, best {best * 1000:.0f} ms, "
        f"median {median * 1000:.0f} ms, worst {max(timings) * 1000:.0f} ms"
    )
    print(
        f"== naive sweep: {len(ids)} queries (one per market) {naive * 1000:.0f} ms, "
        f"decided {naive_decided}\n   ratio naive / grouped (median): {naive / median:.1f}x"
    )


class Chain:
    """The local chain with an initialized GlobalConfig (backend key = admin)."""

    def __init__(self, client: ChainClient, chain: LocalChain) -> None:
        self.client, self.chain = client, chain
        self.backend = BackendKey(Keypair())
        self.creator = Keypair()
        chain.airdrop(self.backend.pubkey, 1_000 * SOL)
        chain.airdrop(self.creator.pubkey(), 10_000 * SOL)

    async def send(
        self, name: str, args: dict[str, Any], accounts: dict[str, Any], signer: Keypair
    ) -> None:
        instruction = self.client.instruction(name, args, accounts)
        for _ in range(3):  # the local chain drops a transaction signed at a blockhash's end
            try:
                await self.client.send_and_confirm(await self.client.build([instruction], [signer]))
                return
            except BlockhashExpired:
                continue
        raise RuntimeError(f"{name} did not land")

    async def initialize(self) -> None:
        await self.send(
            "initialize_global_config",
            {"backend_authority": self.backend.pubkey},
            {
                "admin": self.backend.pubkey,
                "global_config": self.client.global_config_address(),
                "protocol_fee_wallet": Keypair().pubkey(),
            },
            self.backend.signer,
        )

    async def create_market(self, market_id: str) -> None:
        await self.send(
            "create_market",
            {
                "market_id": market_id_bytes(market_id),
                "b_parameter": 100 * SOL,
                "initial_liquidity": 10 * SOL,
                "ipfs_question_hash": b"Q" * 46,
            },
            {
                "creator": self.creator.pubkey(),
                "market": self.client.market_address(market_id),
                "global_config": self.client.global_config_address(),
            },
            self.creator,
        )

    def _accounts(self, market_id: str, **signers: Any) -> dict[str, Any]:
        return {
            "market": self.client.market_address(market_id),
            "global_config": self.client.global_config_address(),
            **signers,
        }

    async def dispute_market(self, market_id: str, local: LocalChain) -> int:
        """Drive a created market to Disputed (proposed YES) by real instructions; returns the
        on-chain resolution_proposed_at."""
        backend = self.backend.pubkey
        await self.send(
            "aggregate_proposal_votes",
            {"final_likes": 9, "final_dislikes": 1},
            self._accounts(market_id, backend_authority=backend),
            self.backend.signer,
        )
        await self.send(
            "approve_proposal", {}, self._accounts(market_id, admin=backend), self.backend.signer
        )
        await self.send(
            "activate_market", {}, self._accounts(market_id, authority=backend), self.backend.signer
        )
        local.set_unix_timestamp(local.unix_timestamp + 1)  # not in the activation second
        await self.send(
            "resolve_market",
            {"proposed_outcome": True, "ipfs_evidence_hash": b"E" * 46},
            self._accounts(market_id, resolver=self.creator.pubkey()),
            self.creator,
        )
        local.set_unix_timestamp(local.unix_timestamp + 1)
        await self.send(
            "initiate_dispute",
            {},
            self._accounts(market_id, initiator=self.creator.pubkey()),
            self.creator,
        )
        account = await self.client.market(market_id)
        assert account is not None and account.state == MarketState.DISPUTED
        return int(account.data["resolution_proposed_at"])


async def sign_in(http: httpx.AsyncClient, keypair: Keypair) -> dict[str, str]:
    challenge = await http.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
    message = challenge.json()["message"]
    verified = await http.post(
        "/api/auth/verify",
        json={"message": message, "signature": str(keypair.sign_message(message.encode()))},
    )
    return {"Authorization": f"Bearer {verified.json()['token']}"}


class Moments:
    """When the moments the latency runs wait for happened (perf_counter), by what and market:
    "enqueued" (the aggregator decided), "landed" (the runner confirmed the action on chain), or
    the new state of a market_state_change on the bus. Only expected moments are recorded."""

    def __init__(self) -> None:
        self._futures: dict[tuple[str, str], asyncio.Future[float]] = {}

    def expect(self, what: str, market_id: str) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        self._futures[(what, market_id)] = future
        return future

    def seen(self, what: str, market_id: str) -> None:
        future = self._futures.get((what, market_id))
        if future is not None and not future.done():
            future.set_result(time.perf_counter())

    async def decided(self, report: Any) -> None:
        if report.result is TallyResult.ENQUEUED:
            self.seen("enqueued", report.market_id)

    async def observe(self, step: str, row: Any) -> None:
        if step == "landed":
            self.seen("landed", row.market_id)

    async def listen(self, bus: EventBus) -> None:
        async with bus.subscribe("markets") as events:
            async for message in events:
                if message.get("type") == "market_state_change":
                    self.seen(message["newState"], message["marketId"])


@dataclass
class Rig:
    """What both latency runs time: `marketd serve` in its own process, the aggregator and the
    outbox runner in this one (as `marketd worker` runs them: the aggregator on the chain's
    clock), the local chain (LiteSVM + the twin, JSON-RPC) beside them, a creator and ten
    signed-in voters."""

    http: httpx.AsyncClient
    chain: Chain
    local: LocalChain
    client: ChainClient
    database: Database
    creator: dict[str, str]
    voters: list[dict[str, str]]
    moments: Moments

    async def new_market(self, question: str) -> str:
        """Proposed through the API, then created on chain by its creator."""
        created = await self.http.post(
            "/api/markets", json={"question": question}, headers=self.creator
        )
        market_id: str = created.json()["id"]
        await self.chain.create_market(market_id)
        return market_id

    async def deciding_vote(self, kind: str, market_id: str) -> float:
        """Nine votes (6 yes, 3 no: awaiting the 10-vote quorum), then the deciding yes; the
        moment its HTTP response arrived."""
        for voter, choice in zip(self.voters, [True] * 6 + [False] * 3 + [True], strict=True):
            response = await self.http.post(
                f"/api/votes/{kind}", json={"market_id": market_id, "vote": choice}, headers=voter
            )
            assert response.status_code == 200, response.text
        return time.perf_counter()


@contextlib.asynccontextmanager
async def latency_rig(url: str) -> AsyncIterator[Rig]:
    prefix = f"bench-agg-{uuid.uuid4().hex[:6]}:"
    settings = settings_for(url, redis_url=REDIS_URL, redis_prefix=prefix)
    port = free_port()
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        **SIMULATED_CLIENTS,
    }
    local = LocalChain()
    local.load_program(Pubkey.from_string(DEFAULT_PROGRAM_ID), program_artifact())
    container = Container.build(settings)
    moments = Moments()
    with server_process(env, port):
        async with (
            serve_local_rpc(local) as endpoint,
            ChainClient.from_settings(settings, rpc_url=endpoint.http_url) as client,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http,
        ):
            chain = Chain(client, local)
            await chain.initialize()
            creator = await sign_in(http, chain.creator)
            voters = [await sign_in(http, Keypair()) for _ in range(10)]
            handlers, failures = vote_outbox_handlers(container.bus, client)
            runner = OutboxRunner(
                container.database,
                client,
                chain.backend,
                handlers=handlers,
                failure_handlers=failures,
                observer=moments.observe,
            )
            aggregator = VoteAggregator.from_settings(
                settings,
                container.database,
                container.bus,
                container.locks,
                ThresholdSource(settings, client),
                runner.notify,
                chain_clock=ChainClock(client),
                observer=moments.decided,
            )
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(runner.run(stop)),
                asyncio.create_task(aggregator.run(stop)),
            ]
            listener = asyncio.create_task(moments.listen(container.bus))
            try:
                await asyncio.wait_for(aggregator.leading.wait(), 30)
                yield Rig(http, chain, local, client, container.database, creator, voters, moments)
            finally:
                stop.set()
                runner.notify()
                listener.cancel()
                await asyncio.gather(*tasks, listener, return_exceptions=True)
                await container.close()


async def latency_figures(rig: Rig, count: int) -> None:
    """For each market: the deciding like, then its approval enqueued, confirmed, announced."""
    market_ids = [  # the first one warms up (and waits out the first sweep)
        await rig.new_market(f"Will latency market {index} be approved?")
        for index in range(count + 1)
    ]
    to_confirm, to_announce, to_enqueue = [], [], []
    for index, market_id in enumerate(market_ids):
        enqueued = rig.moments.expect("enqueued", market_id)
        confirmed = rig.moments.expect("landed", market_id)
        announced = rig.moments.expect(MarketState.APPROVED.value, market_id)
        responded = await rig.deciding_vote("proposal", market_id)
        decided_at = await asyncio.wait_for(enqueued, 60)
        landed = await asyncio.wait_for(confirmed, 60)
        event = await asyncio.wait_for(announced, 60)
        if index:  # the first market is the warm-up
            to_confirm.append(landed - responded)
            to_announce.append(event - responded)
            to_enqueue.append(decided_at - responded)
    confirm, announce = percentiles(to_confirm), percentiles(to_announce)
    enqueue = percentiles(to_enqueue)
    print(f"\n== deciding vote latency over {len(to_confirm)} markets (local chain)")
    print(
        f"   HTTP response -> approval enqueued:      p50 {enqueue['p50']:.0f} ms, "
        f"p99 {enqueue['p99']:.0f} ms, max {max(to_enqueue) * 1000:.0f} ms"
    )
    print(
        f"   HTTP response -> approval confirmed:     p50 {confirm['p50']:.0f} ms, "
        f"p99 {confirm['p99']:.0f} ms, max {max(to_confirm) * 1000:.0f} ms"
    )
    print(
        f"   HTTP response -> market_state_change:    p50 {announce['p50']:.0f} ms, "
        f"p99 {announce['p99']:.0f} ms, max {max(to_announce) * 1000:.0f} ms"
    )


async def dispute_latency_figures(rig: Rig, count: int) -> None:
    """Markets driven to Disputed on chain (and so recorded), the chain's clock past every
    dispute period, then for each: the deciding agree, and its market_state_change to
    FINALIZED."""
    config = await rig.client.global_config()
    assert config is not None
    period = int(config.data["dispute_period"])
    market_ids = []
    for index in range(count + 1):  # the first one warms up
        market_id = await rig.new_market(f"Will dispute latency market {index} be flipped?")
        proposed_at = await rig.chain.dispute_market(market_id, rig.local)
        async with rig.database.session() as session, session.begin():
            market = await session.get(Market, market_id)
            assert market is not None
            market.state = MarketState.DISPUTED.value
            market.proposed_outcome = True
            market.resolution_proposed_at = datetime.fromtimestamp(proposed_at, UTC)
        market_ids.append(market_id)
    rig.local.set_unix_timestamp(rig.local.unix_timestamp + period + 1)  # every period is over
    to_final: list[float] = []
    for index, market_id in enumerate(market_ids):
        announced = rig.moments.expect(MarketState.FINALIZED.value, market_id)
        responded = await rig.deciding_vote("dispute", market_id)
        finalized = await asyncio.wait_for(announced, 60)
        if index:
            to_final.append(finalized - responded)
    account = await rig.client.market(market_ids[-1])
    assert account is not None and account.data["final_outcome"] is False  # flipped
    final = percentiles(to_final)
    print(f"\n== deciding dispute vote latency over {len(to_final)} markets (twin, chain clock)")
    print(
        f"   HTTP response -> FINALIZED (flipped):    p50 {final['p50']:.0f} ms, "
        f"p99 {final['p99']:.0f} ms, max {max(to_final) * 1000:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", type=int, default=10_000)
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--latency", type=int, default=200, help="markets timed end to end")
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument(
        "--dispute-latency", type=int, default=100, help="disputed markets timed end to end"
    )
    args = parser.parse_args()
    async with scratch_database("aggregation") as url:
        started = time.monotonic()
        await seed(url, args.markets, args.votes)
        print(
            f"seeded {args.markets} proposed markets and {args.votes} votes "
            f"in {time.monotonic() - started:.1f} s"
        )
        await sweep_figures(url, args.sweeps)
        if not (args.latency or args.dispute_latency):
            return
        async with latency_rig(url) as rig:
            if args.latency:
                await latency_figures(rig, args.latency)
            if args.dispute_latency:
                await dispute_latency_figures(rig, args.dispute_latency)


if __name__ == "__main__":
    asyncio.run(main())
