"""`marketd demo` seeds the simulated chain, the indexer builds the database from the chain's
history, and the two agree."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from marketd import cli
from marketd.chain.addresses import market_id_bytes, position_address
from marketd.chain.events import ProgramEvent, parse_program_events
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.chain.localnet.seed import (
    LocalTransactionError,
    demo_plan,
    demo_wallets,
    vote_record_address,
)
from marketd.chain.localnet.svm import Commitment, LocalChain
from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.demo import DemoMismatchError
from marketd.indexer.checkpoint import checkpoint_name, load_checkpoint
from marketd.indexer.handlers import UNKNOWN_QUESTION, price_of
from marketd.models import (
    Discussion,
    DisputeVote,
    IndexedEventRow,
    Market,
    MarketSchedule,
    MarketStats,
    Position,
    ProposalVote,
    Trade,
    User,
)
from marketd.shared.market_state import MarketState

pytestmark = pytest.mark.integration  # seeds and indexes a local chain

TABLES = (User, Market, ProposalVote, DisputeVote, Trade, Position, Discussion)


def settings_for(data_dir: Path) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir)


@pytest.fixture
def real_coder(zmart_idl_path: Path) -> IdlCoder:
    return IdlCoder(Idl.from_path(zmart_idl_path))


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(create_engine(settings_for(tmp_path)))
    try:
        yield database
    finally:
        await database.dispose()


async def rows(database: Database, model: type[Any]) -> list[Any]:
    async with database.session() as session:
        return list((await session.scalars(select(model))).all())


async def counts(database: Database) -> dict[str, int]:
    async with database.session() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in TABLES
        }


def decode(chain: LocalChain, coder: IdlCoder, name: str, address: Pubkey) -> dict[str, Any]:
    account = chain.get_account(address)
    assert account is not None, f"no {name} at {address}"
    return coder.decode_account(name, account.data, allow_trailing=True)


def program_events(
    chain: LocalChain, program_id: Pubkey, coder: IdlCoder
) -> dict[str, list[ProgramEvent]]:
    """Every landed transaction's decoded events (with the real IDL), by signature."""
    found = {}
    for record in chain.signatures_for_address(
        str(program_id), limit=10**6, commitment=Commitment.CONFIRMED
    ):
        if record.err is None:
            found[record.signature] = parse_program_events(record.logs, program_id, coder)
    return found


async def test_every_state_is_on_chain_and_in_the_database_and_they_agree(
    tmp_path: Path, database: Database, real_coder: IdlCoder
) -> None:
    settings = settings_for(tmp_path)
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        chain, program_id = runtime.chain, runtime.program_id
        markets = await rows(database, Market)
        assert {m.state for m in markets} == {state.value for state in MarketState}
        events = program_events(chain, program_id, real_coder)

        for market in markets:
            address = Pubkey.from_string(market.on_chain_address)
            account = decode(chain, real_coder, "MarketAccount", address)
            assert bytes(account["market_id"]) == market_id_bytes(market.id)
            assert str(account["state"]).upper() == market.state
            for column in (
                "shares_yes",
                "shares_no",
                "total_volume",
                "current_liquidity",
                "b_parameter",
                "proposal_likes",
                "proposal_dislikes",
                "dispute_agree",
                "dispute_disagree",
                "proposed_outcome",
                "final_outcome",
                "is_cancelled",
            ):
                assert getattr(market, column) == account[column], (market.state, column)
            assert str(account["creator"]) == market.creator_wallet
            assert int(market.created_at.timestamp()) == account["created_at"]
            assert market.current_price_yes + market.current_price_no == 1
            assert 0 < market.current_price_yes < 1

        trades = await rows(database, Trade)
        # The real program refuses every sale (PrivilegeEscalation): the demo only buys.
        assert {t.trade_type for t in trades} == {"buy"}
        markets_by_state = {m.id: m for m in await rows(database, Market)}
        finalized = [m for m in markets_by_state.values() if m.state == "FINALIZED"]
        assert any(m.current_liquidity == 0 for m in finalized)  # a creator withdrew
        claimed = [p for p in await rows(database, Position) if p.realized_pnl > 0]
        assert claimed and all(markets_by_state[p.market_id].state == "FINALIZED" for p in claimed)
        last_price: dict[str, Decimal] = {}
        landed = {}
        for trade in trades:
            record = chain.get_record(trade.tx_signature)
            assert record is not None and record.err is None
            landed[trade.tx_signature] = record
        for trade in sorted(trades, key=lambda t: landed[t.tx_signature].seq):
            record = landed[trade.tx_signature]
            assert int(trade.block_time.timestamp()) == record.block_time
            [event] = events[trade.tx_signature]
            assert event.name == ("SharesBought" if trade.trade_type == "buy" else "SharesSold")
            assert (str(event.data["user"]), event.data["outcome"], event.data["shares"]) == (
                trade.user_wallet,
                trade.outcome,
                trade.shares,
            )
            assert trade.price_after == price_of(event.data["new_price_yes"])[0]
            last_price[trade.market_id] = trade.price_after
        traded = {m.id: m for m in markets if m.id in last_price}
        assert {m.state for m in traded.values()} == {
            "ACTIVE",
            "RESOLVING",
            "DISPUTED",
            "FINALIZED",
        }
        for market_id, price in last_price.items():
            assert traded[market_id].current_price_yes == price
        for market in markets:
            if market.id not in last_price:
                assert market.total_volume == 0 and market.current_price_yes == Decimal("0.5")

        for model, dispute in ((ProposalVote, False), (DisputeVote, True)):
            votes = await rows(database, model)
            assert votes, model
            by_market = {m.id: m for m in markets}
            for vote in votes:
                market = Pubkey.from_string(by_market[vote.market_id].on_chain_address)
                user = Pubkey.from_string(vote.user_wallet)
                address = vote_record_address(program_id, market, user, dispute)
                on_chain = decode(chain, real_coder, "VoteRecord", address)
                assert (on_chain["vote"], int(vote.voted_at.timestamp())) == (
                    vote.vote,
                    on_chain["voted_at"],
                )
                assert vote.tx_signature in events

        positions = await rows(database, Position)
        assert positions
        for position in positions:
            market = Pubkey.from_string(traded[position.market_id].on_chain_address)
            address = position_address(program_id, market, Pubkey.from_string(position.user_wallet))
            on_chain = decode(chain, real_coder, "UserPosition", address)
            for column in ("shares_yes", "shares_no", "total_invested", "trades_count"):
                assert getattr(position, column) == on_chain[column]
        assert sum(p.trades_count for p in positions) == len(trades)
        await assert_indexed_and_described(database, markets, trades)


async def assert_indexed_and_described(
    database: Database, markets: list[Market], trades: list[Trade]
) -> None:
    """The rows are the indexer's (each vote and trade an indexed event's, the rollups count
    the trades); the demo added only what no event carries: texts, closing dates, posts."""
    async with database.session() as session:
        indexed = set(await session.scalars(select(IndexedEventRow.signature).distinct()))
        stats = {s.market_id: s.trades_count for s in await session.scalars(select(MarketStats))}
        closing = set(await session.scalars(select(MarketSchedule.market_id)))
        posted = set(await session.scalars(select(Discussion.market_id)))
        names = set(await session.scalars(select(User.display_name)))
    for model in (ProposalVote, DisputeVote):
        assert {vote.tx_signature for vote in await rows(database, model)} <= indexed
    assert {trade.tx_signature for trade in trades} <= indexed
    traded: dict[str, int] = {}
    for trade in trades:
        traded[trade.market_id] = traded.get(trade.market_id, 0) + 1
    assert {market_id: count for market_id, count in stats.items() if count} == traded
    plan = {planned.id: planned for planned in demo_plan()}
    for market in markets:
        planned = plan[market.id]
        assert market.question == planned.question != UNKNOWN_QUESTION
        assert (market.category, market.tags) == (planned.category, [planned.category, "demo"])
    assert closing == posted == set(plan)
    assert {f"trader{n}" for n in range(1, len(demo_wallets()) + 1)} <= names


async def test_seeding_twice_and_restarting_change_nothing(
    tmp_path: Path, database: Database
) -> None:
    settings = settings_for(tmp_path)
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        seeded = await counts(database)
        records = len(list(runtime.chain.records()))
        assert await cli.seed(settings, runtime) == 0
        assert len(list(runtime.chain.records())) == records  # no transaction sent
        accounts = {
            str(key): account.data
            for key, account in runtime.chain.program_accounts(runtime.program_id)
        }
    assert await counts(database) == seeded
    async with LocalChainRuntime(settings, port=0) as restarted:
        assert await cli.seed(settings, restarted) == 0
        assert len(list(restarted.chain.records())) == records
        assert {
            str(key): account.data
            for key, account in restarted.chain.program_accounts(restarted.program_id)
        } == accounts
    assert await counts(database) == seeded


async def test_a_lost_database_is_rebuilt_from_the_chain_and_a_lost_chain_is_refused(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    async with LocalChainRuntime(settings, port=0) as runtime:
        await cli.seed(settings, runtime)
    first = Database(create_engine(settings))
    try:
        signatures = {t.tx_signature for t in await rows(first, Trade)}
    finally:
        await first.dispose()

    (tmp_path / "marketd.db").unlink()
    async with LocalChainRuntime(settings, port=0) as runtime:
        records = len(list(runtime.chain.records()))
        assert await cli.seed(settings, runtime) == 36
        assert len(list(runtime.chain.records())) == records  # the chain was already seeded
    again = Database(create_engine(settings))
    try:
        assert {t.tx_signature for t in await rows(again, Trade)} == signatures
    finally:
        await again.dispose()

    shutil.rmtree(tmp_path / "chain")
    async with LocalChainRuntime(settings, port=0) as runtime:
        with pytest.raises(DemoMismatchError, match="lacks 36"):
            await cli.seed(settings, runtime)


async def test_failed_transactions_leave_no_rows(tmp_path: Path, database: Database) -> None:
    """A transaction the program refused is in the chain's history; indexing it (the next
    start's backfill) moves the checkpoint past it and writes nothing else."""
    settings = settings_for(tmp_path)
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        seeded = await counts(database)
        votes = {v.tx_signature for v in await rows(database, ProposalVote)}
        program = runtime.program()
        plan = demo_plan()
        first_vote = next(
            v for v in await rows(database, ProposalVote) if v.market_id == plan[0].id
        )
        voter = {str(k.pubkey()): k for k in demo_wallets()}[first_vote.user_wallet]
        proposed = program.market(plan[0].id)
        record = vote_record_address(program.program_id, proposed, voter.pubkey(), False)
        with pytest.raises(LocalTransactionError, match="'Custom': 0") as refused:
            program.call(  # a second vote of the same wallet: the vote record exists
                "submit_proposal_vote",
                {"vote": True},
                {"market": proposed, "vote_record": record, "user": voter.pubkey()},
                [voter],
            )
        failed = runtime.chain.get_record(str(refused.value.signature))
        assert failed is not None and failed.err is not None  # it landed, as a failure
        runtime.chain.advance_slots(settings.localnet_confirmation_slots)  # now confirmed
        assert await cli.seed(settings, runtime) == 0
        async with database.session() as session:
            checkpoint = await load_checkpoint(session, checkpoint_name(str(runtime.program_id)))
            recorded = await session.scalar(
                select(func.count()).where(IndexedEventRow.signature == failed.signature)
            )
    assert checkpoint is not None and checkpoint.signature == failed.signature
    assert recorded == 0
    assert {v.tx_signature for v in await rows(database, ProposalVote)} == votes
    assert await counts(database) == seeded


async def test_the_indexer_starts_after_what_the_seed_indexed(
    tmp_path: Path, database: Database
) -> None:
    """The demo's backfill leaves the indexer's checkpoint at the newest program transaction:
    the worker's indexer continues from there and replays nothing."""
    from marketd.chain.stream import ProgramEventStream

    settings = settings_for(tmp_path)
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        newest = runtime.chain.signatures_for_address(
            str(runtime.program_id), limit=1, commitment=Commitment.CONFIRMED
        )[0]
        async with database.session() as session:
            checkpoint = await load_checkpoint(session, checkpoint_name(str(runtime.program_id)))
        assert checkpoint is not None
        assert (checkpoint.signature, checkpoint.slot) == (newest.signature, newest.slot)
        stream = ProgramEventStream.from_settings(runtime.settings_for_clients())
        try:
            assert [batch async for batch in stream.backfill(checkpoint)] == []
        finally:
            await stream.aclose()


async def test_a_chain_that_kept_little_history_still_gives_every_market_its_row(
    tmp_path: Path, database: Database
) -> None:
    """With LOCALNET_HISTORY_SLOTS the seed's early transactions are gone from the node: the
    indexer cannot see those markets created, and reconcile makes their rows from the accounts,
    as in production."""
    settings = settings_for(tmp_path).model_copy(update={"localnet_history_slots": 64})
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        program = runtime.program()
        for market in await rows(database, Market):
            account = program.read("MarketAccount", program.market(market.id))
            assert account is not None
            assert (market.state, market.shares_yes) == (
                str(account["state"]).upper(),
                account["shares_yes"],
            )
