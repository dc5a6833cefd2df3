"""The store's bulk writes: duplicates, rows that appear meanwhile, other writers, fork rebuilds.

Both backends (the `api` fixture runs PostgreSQL and the embedded SQLite)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from marketd.chain.addresses import new_market_id
from marketd.core.container import Container
from marketd.core.events import wire
from marketd.indexer import bulk
from marketd.indexer.handlers import UNKNOWN_QUESTION, apply
from marketd.indexer.store import (
    indexed_events,
    load_workspace,
    rebuild_markets,
    record_events,
    write_workspace,
)
from marketd.models import (
    IndexedEventRow,
    Market,
    Position,
    ProposalVote,
    Trade,
    TradeSubmission,
    User,
    VoteLog,
)

from ..helpers.indexer import FEES, PROGRAM_ID, T0, Tape, index


def created(tape: Tape, market_id: str, creator: str, state: int = 0) -> tuple[str, dict[str, Any]]:
    data = {
        "market_id": tape.mid(market_id),
        "creator": creator,
        "b_parameter": 10,
        "state": state,
        "timestamp": T0,
    }
    return ("MarketCreated", data)


def bought(
    tape: Tape, market_id: str, user: str, shares: int, price: int = 600_000_000
) -> tuple[str, dict[str, Any]]:
    data = {
        "market_id": tape.mid(market_id),
        "user": user,
        "outcome": True,
        "shares": shares,
        "cost": shares,
        "new_price_yes": price,
        "timestamp": T0 + shares,
    }
    return ("SharesBought", data)


def voted(tape: Tape, market_id: str, user: str, vote: bool) -> tuple[str, dict[str, Any]]:
    data = {"market_id": tape.mid(market_id), "user": user, "vote": vote, "timestamp": T0 + 1}
    return ("ProposalVoteSubmitted", data)


async def test_a_transaction_given_twice_in_one_batch_is_applied_once(
    api, tape, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(bulk, "CHUNK", 3)  # the batch spans several statements per table
    creator, alice = str(tape.wallet()), str(tape.wallet())
    first = tape.tx(created(tape, tape.market_id, creator, state=2))
    trades = [tape.tx(bought(tape, tape.market_id, alice, n)) for n in range(1, 8)]
    applied = await index(api.container, [first, *trades, trades[0], first])
    assert (applied.new_events, applied.replayed_events) == (8, 2)
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
        position = (await session.scalars(select(Position))).one()
        trade_count = len((await session.scalars(select(Trade.id))).all())
    assert market is not None and market.shares_yes == sum(range(1, 8))
    assert (position.shares_yes, position.trades_count) == (sum(range(1, 8)), 7)
    assert trade_count == 7


async def test_two_trades_of_one_transaction_are_two_rows_and_a_replay_adds_none(api, tape):
    creator, alice = str(tape.wallet()), str(tape.wallet())
    await index(api.container, [tape.tx(created(tape, tape.market_id, creator, state=2))])
    both = tape.tx(
        bought(tape, tape.market_id, alice, 5), bought(tape, tape.market_id, alice, 6, 700_000_000)
    )
    await index(api.container, [both])
    await index(api.container, [both])
    async with api.container.database.session() as session:
        trades = (await session.scalars(select(Trade).order_by(Trade.shares))).all()
    assert [(t.tx_signature, t.shares) for t in trades] == [
        (both.signature, 5),
        (f"{both.signature[:80]}#1", 6),
    ]
    assert trades[1].price_after == Decimal("0.700000000")


async def test_rows_that_appear_between_load_and_write_never_fail_the_batch(api, tape):
    """A market registered, a position and an off-chain vote written and a trade recorded by
    someone else after the batch loaded its rows: the batch still commits, the chain wins."""
    creator, alice, bob = (str(tape.wallet()) for _ in range(3))
    other = Tape()
    await index(api.container, [tape.tx(created(tape, other.market_id, creator, state=2))])
    trade = tape.tx(bought(tape, other.market_id, alice, 9))
    batches = [
        tape.tx(created(tape, tape.market_id, creator)),
        tape.tx(voted(tape, tape.market_id, bob, True)),
        trade,
    ]
    async with api.container.database.session() as session, session.begin():
        events = [e for b in batches for e in indexed_events(b)]
        fresh = await record_events(session, events, {})
        ws = await load_workspace(session, fresh, PROGRAM_ID, FEES)
        assert tape.market_id not in ws.markets and not ws.positions  # nothing there yet
        # ... and now the other writers (as the platform's rows reference users, with theirs):
        session.add_all([User(wallet=wallet) for wallet in ("api", alice, bob, "someone")])
        await session.flush()
        other_address = await session.scalar(
            select(Market.on_chain_address).where(Market.id == other.market_id)
        )
        session.add(
            Market.new(
                id=tape.market_id,
                on_chain_address="registered-address",
                question="Registered meanwhile?",
                creator_wallet="api",
                state="PROPOSED",
            )
        )
        await session.flush()
        session.add_all(
            [
                Position(
                    market_id=other.market_id,
                    user_wallet=alice,
                    market_pubkey=other_address,
                    user_pubkey=alice,
                    shares_yes=1000,
                    shares_no=0,
                    total_invested=0,
                    trades_count=99,
                    realized_pnl=0,
                ),
                ProposalVote(market_id=tape.market_id, user_wallet=bob, vote=False),
                Trade(
                    market_id=other.market_id,
                    user_wallet="someone",
                    market_pubkey=other_address,
                    trader_pubkey="someone",
                    trade_type="buy",
                    outcome=False,
                    shares=1,
                    cost=1,
                    price_after=Decimal("0.5"),
                    tx_signature=trade.signature,
                    block_time=fresh[0].at,
                ),
            ]
        )
        await session.flush()
        for event in fresh:
            apply(ws, event)
        await write_workspace(session, ws)
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
        position = (await session.scalars(select(Position))).one()
        vote = (await session.scalars(select(ProposalVote))).one()
        trades = (await session.scalars(select(Trade))).all()
    assert market is not None
    assert (market.question, market.creator_wallet, market.b_parameter) == (
        "Registered meanwhile?",  # the registered text stays
        creator,  # the chain's values win
        10,
    )
    assert (position.shares_yes, position.trades_count) == (9, 1)  # the batch's absolute values
    assert (vote.vote, vote.tx_signature) == (True, batches[1].signature)
    assert [t.user_wallet for t in trades] == ["someone"]  # insert-if-absent on the signature


async def test_columns_the_batch_did_not_change_keep_another_writers_value(api, tape):
    creator, alice = str(tape.wallet()), str(tape.wallet())
    await index(api.container, [tape.tx(created(tape, tape.market_id, creator, state=2))])
    trade = tape.tx(bought(tape, tape.market_id, alice, 4))
    async with api.container.database.session() as session, session.begin():
        fresh = await record_events(session, indexed_events(trade), {})
        ws = await load_workspace(session, fresh, PROGRAM_ID, FEES)
        # A vote tally lands meanwhile (it only writes its own columns).
        await session.execute(
            update(Market)
            .where(Market.id == tape.market_id)
            .values(proposal_likes=7, state="APPROVED")
        )
        for event in fresh:
            apply(ws, event)
        await write_workspace(session, ws)
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
    assert market is not None
    assert (market.proposal_likes, market.state) == (7, "APPROVED")
    assert (market.shares_yes, market.current_price_yes) == (4, Decimal("0.600000000"))


async def test_a_claim_in_the_batch_that_creates_its_market_is_stored_with_the_market_id(api, tape):
    creator, alice = str(tape.wallet()), str(tape.wallet())
    create = tape.tx(created(tape, tape.market_id, creator, state=2))
    await index(api.container, [create])
    async with api.container.database.session() as session:
        address = await session.scalar(
            select(Market.on_chain_address).where(Market.id == tape.market_id)
        )
    late = Tape()
    claim_data = {"user": alice, "outcome": True, "amount": 5, "timestamp": T0}
    claims = [
        tape.tx(("WinningsClaimed", {"market": address} | claim_data)),
        tape.tx(created(tape, late.market_id, creator, state=2)),
        tape.tx(("WinningsClaimed", {"market": _address_of(late.market_id)} | claim_data)),
        tape.tx(("WinningsClaimed", {"market": str(tape.wallet())} | claim_data)),  # unknown
    ]
    await index(api.container, claims)
    async with api.container.database.session() as session:
        stored = dict(
            (
                await session.execute(
                    select(IndexedEventRow.signature, IndexedEventRow.market_id).where(
                        IndexedEventRow.name == "WinningsClaimed"
                    )
                )
            ).all()
        )
    assert stored == {
        claims[0].signature: tape.market_id,
        claims[2].signature: late.market_id,
        claims[3].signature: None,
    }


def _address_of(market_id: str) -> str:
    from marketd.chain.addresses import market_address

    return str(market_address(PROGRAM_ID, market_id))


async def test_a_fork_rebuild_keeps_claims_and_shared_transactions_and_reports_state(api, tape):
    """Market A and B share a transaction (a trade in each); A has a claim, then a resolution
    that a fork drops. Rebuilding both gives back exactly the rows the kept events give."""
    creator, alice, bob = (str(tape.wallet()) for _ in range(3))
    b = Tape()
    address = _address_of(tape.market_id)
    claim = {"market": address, "user": alice, "outcome": True, "amount": 3, "timestamp": 1}
    history = [  # in chain order (slots increase)
        tape.tx(created(tape, tape.market_id, creator, state=2)),
        tape.tx(created(tape, b.market_id, creator, state=2)),
        tape.tx(bought(tape, tape.market_id, alice, 5), bought(tape, b.market_id, alice, 6)),
        tape.tx(voted(tape, tape.market_id, bob, True)),
        tape.tx(("WinningsClaimed", claim)),
    ]
    resolved = tape.tx(
        (
            "MarketResolved",
            {
                "market_id": tape.mid(),
                "resolver": bob,
                "outcome": True,
                "evidence_hash": b"",
                "timestamp": T0 + 50,
            },
        )
    )
    await index(api.container, [*history, resolved])
    before = await _rows(api.container)

    async with api.container.database.session() as session, session.begin():
        await session.execute(
            delete(IndexedEventRow).where(IndexedEventRow.signature == resolved.signature)
        )
        notices = await rebuild_markets(
            session, [b.market_id, tape.market_id, new_market_id()], PROGRAM_ID, FEES
        )
    after = await _rows(api.container)
    assert [(wire(n)["marketId"], wire(n)["oldState"], wire(n)["newState"]) for n in notices] == [
        (tape.market_id, "RESOLVING", "ACTIVE")
    ]
    shared = history[2].signature
    assert {(t[0], t[1]) for t in before["trades"]} == {
        (tape.market_id, shared),
        (b.market_id, f"{shared[:80]}#1"),
    }
    assert after["trades"] == before["trades"]  # the same signatures again
    assert after["positions"] == before["positions"]  # the claim's pnl survived
    assert after["votes"] == before["votes"]
    assert after["vote_log"] == before["vote_log"]  # not logged twice
    assert after["markets"][b.market_id] == before["markets"][b.market_id]
    a_before, a_after = before["markets"][tape.market_id], after["markets"][tape.market_id]
    assert (a_after["state"], a_after["resolution_proposed_at"], a_after["proposed_outcome"]) == (
        "ACTIVE",
        None,
        None,
    )
    assert {k: v for k, v in a_after.items() if k not in DROPPED} == {
        k: v for k, v in a_before.items() if k not in DROPPED
    }


DROPPED = {"state", "resolution_proposed_at", "proposed_outcome", "updated_at", "resolver_wallet"}


async def _rows(container: Container) -> dict[str, Any]:
    async with container.database.session() as session:
        markets = {
            m.id: {c.name: getattr(m, c.name) for c in Market.__table__.columns}
            for m in (await session.scalars(select(Market))).all()
        }
        trades = sorted(
            (t.market_id, t.tx_signature, t.shares, t.price_after)
            for t in (await session.scalars(select(Trade))).all()
        )
        positions = sorted(
            (p.market_id, p.user_wallet, p.shares_yes, p.trades_count, p.realized_pnl)
            for p in (await session.scalars(select(Position))).all()
        )
        votes = sorted(
            (v.market_id, v.user_wallet, v.vote, v.tx_signature)
            for v in (await session.scalars(select(ProposalVote))).all()
        )
        log = len((await session.scalars(select(VoteLog.id))).all())
        users = set((await session.scalars(select(User.wallet))).all())
    return {
        "markets": markets,
        "trades": trades,
        "positions": positions,
        "votes": votes,
        "vote_log": log,
        "users": users,
    }


async def test_a_market_created_on_chain_gets_the_placeholder_question(api, tape):
    await index(api.container, [tape.tx(created(tape, tape.market_id, str(tape.wallet())))])
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
    assert market is not None
    assert (market.question, market.tags, market.current_price_yes) == (
        UNKNOWN_QUESTION,
        [],
        Decimal("0.500000000"),
    )


async def test_a_batch_of_failed_transactions_only_settles_their_submissions(api, tape):
    _keypair, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    failed = tape.tx(err={"InstructionError": [0, {"Custom": 6001}]})
    async with api.container.database.session() as session, session.begin():
        session.add(
            TradeSubmission(
                signature=failed.signature,
                market_id=market_id,
                user_wallet="w",
                trade_type="buy",
                outcome=True,
                amount=1,
                raw_transaction=b"raw",
            )
        )
    applied = await index(api.container, [failed])
    assert (applied.new_events, applied.replayed_events, applied.events) == (0, 0, [])
    async with api.container.database.session() as session:
        row = await session.get(TradeSubmission, failed.signature)
    assert row is not None and (row.status, "6001" in (row.error or "")) == ("failed", True)


MARKET_EVENTS = (
    "ProposalVoteSubmitted",
    "ProposalAggregated",
    "ProposalApproved",
    "MarketActivated",
    "MarketResolved",
    "DisputeInitiated",
    "DisputeVoteSubmitted",
    "DisputeAggregated",
    "MarketFinalized",
    "MarketCancelled",
    "LiquidityWithdrawn",
    "SharesSold",
)


async def test_events_of_a_market_never_created_change_nothing(api, tape):
    batches = [tape.tx((name, {"market_id": tape.mid()})) for name in MARKET_EVENTS]
    applied = await index(api.container, batches)
    assert (applied.new_events, applied.events, applied.touched) == (len(MARKET_EVENTS), [], set())
    rows = await _rows(api.container)
    assert rows == {
        "markets": {},
        "trades": [],
        "positions": [],
        "votes": [],
        "vote_log": 0,
        "users": set(),
    }
