"""The market monitor on the real local chain, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import delete, func, select

from marketd.chain.addresses import market_id_bytes
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.stream import ProgramEventStream, StreamEvent, TransactionEvents
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.waits import Backoff
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.indexer import Indexer
from marketd.indexer.reconcile import reconcile
from marketd.indexer.transitions import sweep
from marketd.markets.cache import MarketCache
from marketd.markets.service import MarketService
from marketd.models import (
    Base,
    ChainOutbox,
    DisputeVote,
    IndexedEventRow,
    Market,
    Position,
    ProposalVote,
    Trade,
)

from ..helpers.chain import PROGRAM_ID, SOL, ChainWorld
from ..helpers.twin import vote_pda


@pytest.fixture
def chain_fixed_program() -> bool:
    """The fixed build of the twin: sales pay out (SharesSold), so the indexer's sale
    accounting is checked against the accounts too."""
    return True


@pytest_asyncio.fixture
async def monitor_container(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[Container]:
    settings = Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix + f"indexer-{uuid.uuid4().hex[:6]}:",
        _env_file=None,  # type: ignore[call-arg]
    )
    container = Container.build(settings)
    async with container.database.session() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
    yield container
    await container.close()


class Running:
    """An indexer following the local chain in a task."""

    def __init__(self, world: ChainWorld, container: Container) -> None:
        self.stream = ProgramEventStream(
            http_url=world.endpoint.http_url,
            ws_url=world.endpoint.ws_url,
            program_id=PROGRAM_ID,
            coder=world.coder,
            commitment=Confirmed,
            backoff=Backoff(initial=0.01, maximum=0.05),
        )
        self.indexer = Indexer(container, world.client, self.stream, missing_checks=1)
        self.container = container
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.indexer.run(self.stop))

    async def caught_up(self, world: ChainWorld) -> None:
        """Wait (event-driven) until every program event on the chain is indexed."""
        wanted = sum(
            1
            for record in world.chain.records()
            if record.err is None and any(line.startswith("Program data:") for line in record.logs)
            for line in record.logs
            if line.startswith("Program data:")
        )
        async with asyncio.timeout(30):
            while True:
                async with self.container.database.session() as session:
                    count = await session.scalar(select(func.count()).select_from(IndexedEventRow))
                if count == wanted:
                    return
                self.indexer.indexed.clear()
                await self.indexer.indexed.wait()

    async def close(self) -> None:
        self.stop.set()
        await self.task
        await self.stream.aclose()


def vote(world: ChainWorld, kind: str, market_id: str, user: Keypair, choice: bool) -> None:
    market = world.client.market_address(market_id)
    world.send(
        f"submit_{kind}_vote",
        {"vote": choice},
        {
            "market": market,
            "vote_record": vote_pda(market, user.pubkey(), 0 if kind == "proposal" else 1),
            "user": user.pubkey(),
        },
        [user],
    )


def trade(
    world: ChainWorld, market_id: str, user: Keypair, name: str, args: dict[str, Any]
) -> None:
    market = world.client.market_address(market_id)
    world.send(
        name,
        args,
        {
            "global_config": world.client.global_config_address(),
            "market": market,
            "position": world.client.position_address(market, user.pubkey()),
            "user": user.pubkey(),
            "protocol_fee_wallet": world.fee_wallet.pubkey(),
        },
        [user],
    )


async def on_chain_position(world: ChainWorld, market_id: str, user: Pubkey) -> dict[str, Any]:
    address = world.client.position_address(world.client.market_address(market_id), user)
    data = await world.client.account_data(address)
    assert data is not None
    return world.coder.decode_account("UserPosition", data, allow_trailing=True)


async def assert_matches_chain(world: ChainWorld, container: Container, market_id: str) -> Market:
    account = await world.client.market(market_id)
    assert account is not None
    chain = account.data
    async with container.database.session() as session:
        market = await session.get(Market, market_id)
        assert market is not None
        for name in (
            "b_parameter",
            "initial_liquidity",
            "current_liquidity",
            "shares_yes",
            "shares_no",
            "total_volume",
            "proposal_likes",
            "proposal_dislikes",
            "dispute_agree",
            "dispute_disagree",
            "proposed_outcome",
            "final_outcome",
            "is_cancelled",
        ):
            assert getattr(market, name) == chain[name], name
        assert market.state == account.state.value.upper()
        assert market.creator_wallet == str(chain["creator"])
        positions = (
            await session.scalars(select(Position).where(Position.market_id == market_id))
        ).all()
        for position in positions:
            address = world.client.position_address(
                account.address, Pubkey.from_string(position.user_wallet)
            )
            data = await world.client.account_data(address)
            assert data is not None
            onchain = world.coder.decode_account("UserPosition", data, allow_trailing=True)
            assert (position.shares_yes, position.shares_no, position.trades_count) == (
                onchain["shares_yes"],
                onchain["shares_no"],
                onchain["trades_count"],
            )
            assert position.total_invested == onchain["total_invested"]
    return market


async def test_a_scripted_lifecycle_is_indexed_exactly_as_the_chain_has_it(
    chain_world: ChainWorld, monitor_container: Container, zmart_idl_path: Any
) -> None:
    world = chain_world
    world.coder = IdlCoder(Idl.from_path(zmart_idl_path))
    world.initialize()
    creator = world.funded()
    running = Running(world, monitor_container)
    async with monitor_container.bus.subscribe("markets", "trades", "votes") as sub:
        try:
            market_id = world.create_market(creator)
            voters = [world.funded() for _ in range(3)]
            for i, voter in enumerate(voters):
                vote(world, "proposal", market_id, voter, i != 2)
            world.approve(market_id)
            world.activate(market_id)
            traders = [world.funded() for _ in range(3)]
            for i, trader in enumerate(traders):
                trade(
                    world,
                    market_id,
                    trader,
                    "buy_shares",
                    {"outcome": i % 2 == 0, "target_cost": (i + 1) * SOL},
                )
            await running.caught_up(world)

            # Kill the websocket mid-stream: what lands meanwhile is backfilled, once.
            await world.control("close_subscriptions")
            trade(
                world,
                market_id,
                traders[0],
                "sell_shares",
                {"outcome": True, "shares_to_sell": SOL // 10, "min_proceeds": 0},
            )
            trade(world, market_id, traders[1], "buy_shares", {"outcome": True, "target_cost": SOL})
            world.resolve(market_id)
            world.dispute(market_id)
            for i, voter in enumerate(voters):
                vote(world, "dispute", market_id, voter, i == 0)
            # marketd's dispute settlement: ONE finalize with the counts (1/3 < 60%: YES stands).
            world.send(
                "finalize_market",
                {"dispute_agree": 1, "dispute_disagree": 2},
                {**world._market_accounts(market_id), "backend_authority": world.backend.pubkey},
                [world.backend.signer],
            )
            # A YES holder claims (pro rata of current_liquidity), then the creator withdraws.
            account = await world.client.market(market_id)
            assert account is not None
            world.send(
                "claim_winnings",
                {},
                {
                    **world._market_accounts(market_id),
                    "position": world.client.position_address(account.address, traders[2].pubkey()),
                    "user": traders[2].pubkey(),
                    "resolver": account.data["resolver"],
                },
                [traders[2]],
            )
            world.send(
                "withdraw_liquidity",
                {},
                {"market": account.address, "creator": creator.pubkey()},
                [creator],
            )
            await running.caught_up(world)
            assert running.stream.reconnects >= 1
        finally:
            await running.close()

        market = await assert_matches_chain(world, monitor_container, market_id)
        assert market.state == "FINALIZED" and market.final_outcome is True
        assert market.current_liquidity == 0  # withdrawn
        claimed = await on_chain_position(world, market_id, traders[2].pubkey())
        assert claimed["has_claimed"] and claimed["claimed_amount"] > 0
        async with monitor_container.database.session() as session:
            claimer = await session.scalar(
                select(Position).where(
                    Position.market_id == market_id,
                    Position.user_wallet == str(traders[2].pubkey()),
                )
            )
            assert claimer is not None and claimer.realized_pnl == claimed["claimed_amount"]
            trades = (await session.scalars(select(Trade).order_by(Trade.block_time))).all()
            assert len(trades) == 5
            assert len({t.tx_signature for t in trades}) == 5
            assert [t.trade_type for t in trades].count("sell") == 1
            votes = (await session.scalars(select(ProposalVote))).all()
            assert sorted(v.vote for v in votes) == [False, True, True]
            assert len((await session.scalars(select(DisputeVote))).all()) == 3
        cached = await MarketCache(monitor_container.pages).get(market_id)
        assert cached is not None and cached.state.value == "FINALIZED"
        assert cached.current_price_yes == market.current_price_yes
        assert cached.total_volume == market.total_volume

        received: list[dict[str, Any]] = []
        while len(received) < 3 + 5 + 3 + 5:
            async with asyncio.timeout(5):
                received.append(await sub.get())
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in received:
        by_type.setdefault(event["type"], []).append(event)
    assert [e["newState"] for e in by_type["market_state_change"]] == [
        "APPROVED",
        "ACTIVE",
        "RESOLVING",
        "DISPUTED",
        "FINALIZED",
    ]
    assert [t["signature"] for t in by_type["trade"]] == [t.tx_signature for t in trades]
    assert len(by_type["vote"]) == 6

    # Replaying the whole history again changes nothing; reconcile finds no drift.
    again = Running(world, monitor_container)
    async with monitor_container.database.session() as session, session.begin():
        await session.execute(delete(IndexedEventRow).where(IndexedEventRow.name == "__none__"))
    await again.indexer.index([b async for b in again.stream.backfill(None)])
    await again.close()
    await assert_matches_chain(world, monitor_container, market_id)
    fixes = await reconcile(monitor_container, world.client)
    assert fixes == []


async def test_a_transaction_dropped_by_a_fork_is_rolled_back(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    world = chain_world
    world.initialize()
    market_id = world.market_in("Active")
    running = Running(world, monitor_container)
    try:
        trade(world, market_id, world.funded(), "buy_shares", {"outcome": True, "target_cost": SOL})
        await running.caught_up(world)
    finally:
        await running.close()
    before = await assert_matches_chain(world, monitor_container, market_id)

    # A confirmed trade the chain no longer knows (it was on a dropped fork).
    ghost = str(Keypair().sign_message(b"ghost"))
    event = StreamEvent(
        ghost,
        world.chain.slot,
        None,
        0,
        "SharesBought",
        {
            "market_id": market_id_bytes(market_id),
            "user": Keypair().pubkey(),
            "outcome": False,
            "shares": 5 * SOL,
            "cost": SOL,
            "new_price_yes": 400_000_000,
            "timestamp": 1,
        },
        "confirmed",
    )
    indexer = running.indexer
    await indexer.index(
        [TransactionEvents(ghost, world.chain.slot, None, "confirmed", None, (event,), "live")]
    )
    async with monitor_container.database.session() as session:
        seed = 100 * SOL // 1000  # create_market's unowned floor(b / 1000) shares
        assert (await session.get(Market, market_id)).shares_no == seed + 5 * SOL  # type: ignore[union-attr]

    world.chain.advance_slots(40)  # the real transactions finalize
    report = await indexer.check_finality()
    assert report.rolled_back == [ghost]
    assert report.rebuilt == [market_id]
    assert len(report.finalized) >= 1
    after = await assert_matches_chain(world, monitor_container, market_id)
    assert after.current_price_yes == before.current_price_yes
    async with monitor_container.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Trade)) == 1
        assert (
            await session.scalar(
                select(func.count())
                .select_from(IndexedEventRow)
                .where(IndexedEventRow.commitment == "confirmed")
            )
            == 0
        )
    cached = await MarketCache(monitor_container.pages).get(market_id)
    assert cached is not None and cached.shares_no == 100 * SOL // 1000  # the seed shares


async def test_transitions_are_enqueued_once_from_chain_time(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    world = chain_world
    world.initialize()
    approved, resolving, disputed = (
        world.market_in(s) for s in ("Approved", "Resolving", "Disputed")
    )
    running = Running(world, monitor_container)
    try:
        await running.caught_up(world)
    finally:
        await running.close()
    database = monitor_container.database
    first = await sweep(database, world.client, auto_activate=True)
    assert {(e.intent, e.market_id) for e in first} == {("activate_market", approved)}
    assert await sweep(database, world.client, auto_activate=False) == []

    config = await world.client.global_config()
    assert config is not None
    world.chain.set_unix_timestamp(
        world.chain.unix_timestamp + int(config.data["dispute_period"]) + 1
    )
    second = await sweep(database, world.client, auto_activate=True)
    # The disputed market is left to the vote aggregator (it has no votes: it waits).
    assert {(e.intent, e.market_id) for e in second} == {("finalize_market", resolving)}
    assert disputed not in {e.market_id for e in second}
    assert await sweep(database, world.client, auto_activate=True) == []
    async with database.session() as session:
        rows = (await session.scalars(select(ChainOutbox))).all()
    assert sorted(r.idempotency_key for r in rows) == sorted(
        [
            f"activate_market:{approved}",
            f"finalize_market:{resolving}",
        ]
    )


async def index_everything(world: ChainWorld, container: Container) -> None:
    running = Running(world, container)
    try:
        await running.caught_up(world)
    finally:
        await running.close()


async def db_columns(container: Container, market_id: str) -> dict[str, Any]:
    async with container.database.session() as session:
        market = await session.get(Market, market_id)
        assert market is not None
        return {name: getattr(market, name) for name in ("state", "shares_yes", "total_volume")}


async def test_reconcile_never_moves_a_row_back_when_the_indexer_is_quicker(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    """The race of the issue, made deterministic: reconcile reads the accounts (slot S), then a
    trade and a resolution land and are indexed before it writes. Their markets are newer in
    the database than in the snapshot: left alone (no shares/volume reverted, no state going
    back, no market_state_change)."""
    world = chain_world
    world.initialize()
    market_id = world.market_in("Active")
    trader = world.funded()
    await index_everything(world, monitor_container)

    async def land_and_index(stage: str) -> None:
        if stage == "snapshot":
            world.chain.advance_slots(1)
            trade(world, market_id, trader, "buy_shares", {"outcome": True, "target_cost": SOL})
            world.resolve(market_id)
            await index_everything(world, monitor_container)

    before = await db_columns(monitor_container, market_id)
    # No fix at all, hence no market_state_change published by reconcile either.
    assert await reconcile(monitor_container, world.client, race=land_and_index) == []
    after = await db_columns(monitor_container, market_id)
    assert after["state"] == "RESOLVING" and after["shares_yes"] > before["shares_yes"]
    await assert_matches_chain(world, monitor_container, market_id)
    assert await reconcile(monitor_container, world.client) == []  # and the next round agrees


async def test_reconcile_skips_a_fix_the_indexer_overtook_between_compare_and_write(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    world = chain_world
    world.initialize()
    market_id = world.market_in("Active")
    await index_everything(world, monitor_container)
    async with monitor_container.database.session() as session:
        await session.execute(
            Market.__table__.update().where(Market.id == market_id).values(total_volume=1)
        )
        await session.commit()

    async def another_writer(stage: str) -> None:
        if stage == "compared":  # after the comparison, before the write
            async with monitor_container.database.session() as session:
                await session.execute(
                    Market.__table__.update().where(Market.id == market_id).values(total_volume=2)
                )
                await session.commit()

    assert await reconcile(monitor_container, world.client, race=another_writer) == []
    assert (await db_columns(monitor_container, market_id))["total_volume"] == 2
    fixes = await reconcile(monitor_container, world.client)
    assert [(f.field, f.database, f.chain) for f in fixes] == [("total_volume", 2, 0)]


async def test_reconcile_repairs_drift_and_get_market_reads_through_the_cache(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    world = chain_world
    world.initialize()
    market_id = world.market_in("Active")
    # The indexer behind the snapshot (it has not run): nothing is repaired, not even a row
    # created (the indexer would then apply the market's events on top of it).
    assert await reconcile(monitor_container, world.client) == []
    await index_everything(world, monitor_container)
    async with monitor_container.database.session() as session:
        await session.execute(delete(Market).where(Market.id == market_id))
        await session.commit()
    fixes = await reconcile(monitor_container, world.client)
    assert ("row", "created") in {(f.field, f.chain) for f in fixes}
    await monitor_container.cache.delete(f"market:{market_id}")
    async with monitor_container.database.session() as session:
        await session.execute(
            Market.__table__.update()
            .where(Market.id == market_id)
            .values(state="PROPOSED", shares_yes=9)
        )
        await session.commit()
    async with monitor_container.bus.subscribe("markets") as sub:
        fixes = await reconcile(monitor_container, world.client)
        assert {(f.field, f.database, f.chain) for f in fixes} == {
            ("state", "PROPOSED", "ACTIVE"),
            ("shares_yes", 9, 100 * SOL // 1000),  # the seed shares
        }
        change = await sub.get()
        assert (change["oldState"], change["newState"]) == ("PROPOSED", "ACTIVE")
    cache = MarketCache(monitor_container.pages)
    async with monitor_container.database.session() as session:
        service = MarketService(session, monitor_container.settings, monitor_container.bus, cache)
        hit = await cache.detail(market_id, lambda: service.get_market(market_id))
        assert hit.headers["X-Cache"] == "hit" and b'"state":"ACTIVE"' in hit.body
        await cache.invalidate([market_id])
        assert await cache.get(market_id) is None
        miss = await cache.detail(market_id, lambda: service.get_market(market_id))
        assert miss.headers["X-Cache"] == "miss" and miss.body == hit.body  # from the DB
        assert (await cache.get(market_id)) is not None  # read through
    assert await reconcile(monitor_container, world.client) == []
    assert FeeSchedule().gross_from_net(0) == 0
    assert Decimal("0.5") == Decimal("0.500000000")


async def test_the_jobs_index_and_activate_under_leader_locks(
    chain_world: ChainWorld, monitor_container: Container
) -> None:
    from marketd.config import IndexerSettings
    from marketd.core.jobs import JobHost
    from marketd.indexer.jobs import indexer_jobs

    world = chain_world
    world.initialize()
    settings = IndexerSettings(
        finality_interval_seconds=0.05,
        reconcile_interval_seconds=0.05,
        transitions_interval_seconds=0.05,
    )
    jobs = indexer_jobs(monitor_container, world.client, None, settings)
    assert [job.name for job in jobs] == [
        "indexer",
        "indexer-finality",
        "indexer-reconcile",
        "market-transitions",
    ]
    host = JobHost(jobs, grace_seconds=5)
    async with monitor_container.bus.subscribe("markets") as sub:
        host.start()
        try:
            market_id = world.market_in("Approved")
            async with asyncio.timeout(20):
                change = await sub.get()
                while change["newState"] != "APPROVED":  # reconcile may see PROPOSED first
                    change = await sub.get()
            assert change["marketId"] == market_id
            async with asyncio.timeout(20):
                while True:
                    async with monitor_container.database.session() as session:
                        row = await session.scalar(
                            select(ChainOutbox).where(ChainOutbox.market_id == market_id)
                        )
                    if row is not None:
                        break
                    await asyncio.sleep(0.05)  # polling the job's database effect
        finally:
            await host.stop()
    assert row.intent == "activate_market"
    # A second instance cannot take a job whose lock is held.
    async with monitor_container.locks.hold("job:indexer", 5) as lease:
        assert lease is not None
        stop = asyncio.Event()
        stop.set()
        await jobs[0].run(stop)  # returns at once: not the leader, shutting down
