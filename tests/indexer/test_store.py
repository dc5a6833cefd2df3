"""Handlers + persistence on PostgreSQL and SQLite (the `api` fixture runs both backends)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from marketd.chain.addresses import market_address, new_market_id
from marketd.chain.stream import TransactionEvents
from marketd.core.container import Container
from marketd.core.events import wire
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.handlers import UNKNOWN_QUESTION
from marketd.models import (
    DisputeVote,
    Market,
    Position,
    ProposalVote,
    Trade,
    TradeSubmission,
    User,
    VoteLog,
)

from ..helpers.indexer import FEES, PROGRAM_ID, T0, Tape, index


async def snapshot(container: Container) -> dict[str, Any]:
    """Every row the indexer writes, comparable across runs."""
    out: dict[str, Any] = {}
    async with container.database.session() as session:
        for table in (Market, Trade, Position, ProposalVote, DisputeVote, User, VoteLog):
            rows = (await session.scalars(select(table))).all()
            out[table.__tablename__] = sorted(
                (
                    {
                        c.name: getattr(r, c.name)
                        for c in table.__table__.columns
                        if c.name != "updated_at"
                    }
                    for r in rows
                ),
                key=repr,
            )
    return out


def lifecycle(tape: Tape) -> tuple[list[TransactionEvents], dict[str, Any]]:
    creator, alice, bob, carol = (str(tape.wallet()) for _ in range(4))
    mid = tape.mid()
    txs = [
        tape.tx(
            (
                "MarketCreated",
                {
                    "market_id": mid,
                    "creator": creator,
                    "b_parameter": 5,
                    "state": 0,
                    "timestamp": T0,
                },
            )
        ),
        tape.tx(
            (
                "ProposalVoteSubmitted",
                {"market_id": mid, "user": alice, "vote": True, "timestamp": T0 + 1},
            )
        ),
        tape.tx(
            (
                "ProposalVoteSubmitted",
                {"market_id": mid, "user": bob, "vote": False, "timestamp": T0 + 2},
            )
        ),
        tape.tx(
            (
                "ProposalAggregated",
                {
                    "market_id": mid,
                    "likes": 1,
                    "dislikes": 1,
                    "approval_percentage": 50,
                    "approved": True,
                    "timestamp": T0 + 3,
                },
            ),
            ("ProposalApproved", {"market_id": mid, "approved_by": creator, "timestamp": T0 + 3}),
        ),
        tape.tx(
            (
                "MarketActivated",
                {
                    "market_id": mid,
                    "creator": creator,
                    "initial_liquidity": 1000,
                    "timestamp": T0 + 4,
                },
            )
        ),
        tape.tx(
            (
                "SharesBought",
                {
                    "market_id": mid,
                    "user": alice,
                    "outcome": True,
                    "shares": 300,
                    "cost": 200,
                    "new_price_yes": 600_000_000,
                    "timestamp": T0 + 5,
                },
            )
        ),
        tape.tx(
            (
                "SharesBought",
                {
                    "market_id": mid,
                    "user": bob,
                    "outcome": False,
                    "shares": 100,
                    "cost": 50,
                    "new_price_yes": 550_000_000,
                    "timestamp": T0 + 6,
                },
            )
        ),
        tape.tx(
            (
                "SharesSold",
                {
                    "market_id": mid,
                    "user": alice,
                    "outcome": True,
                    "shares": 100,
                    "proceeds": 90,
                    "new_price_yes": 525_000_000,
                    "timestamp": T0 + 7,
                },
            )
        ),
        tape.tx(
            (
                "MarketResolved",
                {
                    "market_id": mid,
                    "resolver": carol,
                    "outcome": True,
                    "evidence_hash": b"Qm" + b"x" * 44,
                    "timestamp": T0 + 8,
                },
            )
        ),
        tape.tx(
            (
                "DisputeInitiated",
                {"market_id": mid, "initiator": bob, "disputed_outcome": True, "timestamp": T0 + 9},
            )
        ),
        tape.tx(
            (
                "DisputeVoteSubmitted",
                {"market_id": mid, "user": carol, "vote": True, "timestamp": T0 + 10},
            )
        ),
        tape.tx(
            (
                "DisputeAggregated",
                {
                    "market_id": mid,
                    "agrees": 1,
                    "disagrees": 0,
                    "agreement_percentage": 100,
                    "dispute_succeeded": True,
                    "timestamp": T0 + 11,
                },
            ),
            (
                "MarketFinalized",
                {
                    "market_id": mid,
                    "final_outcome": False,
                    "was_disputed": True,
                    "timestamp": T0 + 11,
                },
            ),
        ),
    ]
    return txs, {"creator": creator, "alice": alice, "bob": bob, "carol": carol}


async def test_a_whole_lifecycle_builds_the_rows_and_a_replay_changes_nothing(api, tape):
    txs, who = lifecycle(tape)
    applied = await index(api.container, txs)
    assert (applied.new_events, applied.replayed_events) == (14, 0)
    assert applied.touched == {tape.market_id}

    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
        assert market is not None
        assert market.question == UNKNOWN_QUESTION  # created on chain only
        assert (market.state, market.creator_wallet, market.b_parameter) == (
            "FINALIZED",
            who["creator"],
            5,
        )
        assert (market.proposal_likes, market.proposal_dislikes) == (1, 1)
        assert (market.dispute_agree, market.dispute_disagree) == (1, 0)
        assert (market.shares_yes, market.shares_no) == (200, 100)
        # The program's accounting (§3.7, §3.8, fees 300/200/500 bps): the buys' costs are
        # totals incl. fees (200 = 182 + 18 -> resolver 3 + LP 10 stay; 50 = 46 + 4 -> 0 + 3);
        # the sale's 90 is net of the gross 99 (fees 9: protocol 2), paying out 90 + 2.
        assert FEES.cost_before_fees(200) == 182 and FEES.gross_from_net(90) == 99
        assert market.current_liquidity == 1000 + (3 + 10) + (0 + 3) - (90 + 2) == 924
        assert market.total_volume == 200 + 50 + 99
        assert market.current_price_yes == Decimal("0.525000000")
        assert market.current_price_no == Decimal("0.475000000")
        assert (market.proposed_outcome, market.final_outcome) == (True, False)
        assert market.ipfs_evidence_hash == "Qm" + "x" * 44
        assert market.resolver_wallet == who["carol"]
        assert market.finalized_at is not None and market.finalized_at.timestamp() == T0 + 11
        trades = (await session.scalars(select(Trade).order_by(Trade.block_time))).all()
        assert [(t.trade_type, t.outcome, t.shares, t.cost) for t in trades] == [
            ("buy", True, 300, 200),
            ("buy", False, 100, 50),
            ("sell", True, 100, 90),
        ]
        assert [t.price_after for t in trades] == [
            Decimal("0.600000000"),
            Decimal("0.550000000"),
            Decimal("0.525000000"),
        ]
        # The platform's copies of the keys, and when each trade was recorded.
        assert {(t.market_pubkey, t.trader_pubkey == t.user_wallet) for t in trades} == {
            (market.on_chain_address, True)
        }
        assert all(t.created_at is not None for t in trades)
        positions = {p.user_wallet: p for p in (await session.scalars(select(Position))).all()}
        alice = positions[who["alice"]]
        assert (alice.shares_yes, alice.shares_no, alice.trades_count) == (200, 0, 2)
        assert alice.total_invested == 200  # SharesBought.cost includes the fees
        assert alice.realized_pnl == 90
        assert (alice.market_pubkey, alice.user_pubkey) == (market.on_chain_address, who["alice"])
        # Her buy, then her sell (the events' own times).
        assert alice.first_trade_at is not None and alice.last_trade_at is not None
        assert alice.first_trade_at < alice.last_trade_at
        assert positions[who["bob"]].first_trade_at == positions[who["bob"]].last_trade_at
        assert (alice.has_claimed, alice.claimed_amount) == (False, None)
        totals = {
            u.wallet: (u.total_trades, u.total_volume)
            for u in (await session.scalars(select(User))).all()
        }
        assert totals[who["alice"]] == (2, 200 + 90) and totals[who["bob"]] == (1, 50)
        assert totals[who["carol"]] == (0, 0)
        assert positions[who["bob"]].shares_no == 100
        votes = {v.user_wallet: v for v in (await session.scalars(select(ProposalVote))).all()}
        assert {w: v.vote for w, v in votes.items()} == {who["alice"]: True, who["bob"]: False}
        assert all(v.tx_signature for v in votes.values())
        disputes = (await session.scalars(select(DisputeVote))).all()
        assert [(d.user_wallet, d.vote) for d in disputes] == [(who["carol"], True)]
        users = set((await session.scalars(select(User.wallet))).all())
        assert users == set(who.values())

    states = [
        (wire(n)["oldState"], wire(n)["newState"]) for n in applied.events if n.topic == "markets"
    ]
    assert states == [
        ("PROPOSED", "APPROVED"),
        ("APPROVED", "ACTIVE"),
        ("ACTIVE", "RESOLVING"),
        ("RESOLVING", "DISPUTED"),
        ("DISPUTED", "RESOLVING"),  # an upheld aggregate_dispute_votes re-opens (§3.12)
        ("RESOLVING", "FINALIZED"),
    ]
    trades_out = [wire(n) for n in applied.events if n.topic == "trades"]
    assert [(t["tradeType"], t["outcome"], t["price"]) for t in trades_out] == [
        ("BUY", "YES", "0.600000000"),
        ("BUY", "NO", "0.550000000"),
        ("SELL", "YES", "0.525000000"),
    ]
    votes_out = [wire(n) for n in applied.events if n.topic == "votes"]
    assert [(v["voteType"], v["likes"], v["dislikes"]) for v in votes_out] == [
        ("proposal", 1, 1),
        ("proposal", 1, 1),
        ("dispute", 1, 0),
    ]

    before = await snapshot(api.container)
    again = await index(api.container, txs)
    assert (again.new_events, again.replayed_events, again.events) == (0, 14, [])
    # Replaying overlapping ranges (the second half, then everything) still changes nothing.
    await index(api.container, txs[6:])
    await index(api.container, txs)
    assert await snapshot(api.container) == before


async def test_a_registered_market_keeps_its_text_and_an_on_chain_vote_replaces_an_off_chain_one(
    api, tape
):
    _keypair, headers = await api.sign_in()
    tape.market_id = await api.market(headers)
    voter = str(tape.wallet())
    await api.execute(
        "INSERT INTO users (wallet, created_at) VALUES (:w, CURRENT_TIMESTAMP)", w=voter
    )
    response = await api.client.get(f"/api/markets/{tape.market_id}")
    assert response.json()["state"] == "PROPOSED"
    async with api.container.database.session() as session, session.begin():
        session.add(ProposalVote(market_id=tape.market_id, user_wallet=voter, vote=False))
    creator = str(tape.wallet())
    await index(
        api.container,
        [
            tape.tx(
                (
                    "MarketCreated",
                    {
                        "market_id": tape.mid(),
                        "creator": creator,
                        "b_parameter": 7,
                        "state": 0,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "ProposalVoteSubmitted",
                    {"market_id": tape.mid(), "user": voter, "vote": True, "timestamp": T0},
                )
            ),
        ],
    )
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
        assert market is not None
        assert market.question == "Will the integration test pass today?"
        assert (market.b_parameter, market.creator_wallet) == (7, creator)
        votes = (await session.scalars(select(ProposalVote))).all()
        assert [(v.user_wallet, v.vote, v.tx_signature is not None) for v in votes] == [
            (voter, True, True)
        ]
        log = (await session.scalars(select(VoteLog))).all()
        assert [(entry.source, entry.vote) for entry in log] == [("chain", True)]


async def test_cancel_withdraw_claim_config_and_unknown_events(api, tape):
    creator, user = str(tape.wallet()), str(tape.wallet())
    mid = tape.mid()
    await index(
        api.container,
        [
            tape.tx(
                (
                    "MarketCreated",
                    {
                        "market_id": mid,
                        "creator": creator,
                        "b_parameter": 1,
                        "state": 0,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "MarketActivated",
                    {
                        "market_id": mid,
                        "creator": creator,
                        "initial_liquidity": 500,
                        "timestamp": T0,
                    },
                )
            ),
        ],
    )
    async with api.container.database.session() as session:
        address = (await session.get(Market, tape.market_id)).on_chain_address  # type: ignore[union-attr]
    applied = await index(
        api.container,
        [
            tape.tx(
                (
                    "GlobalConfigInitialized",
                    {
                        "admin": creator,
                        "backend_authority": creator,
                        "protocol_fee_bps": 100,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "ConfigUpdated",
                    {
                        "protocol_fee_bps": 0,
                        "resolver_reward_bps": 0,
                        "liquidity_provider_fee_bps": 1000,
                        "proposal_approval_threshold": 1,
                        "dispute_success_threshold": 1,
                        "min_resolution_delay": 1,
                        "dispute_period": 1,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "ProtocolPauseStatusChanged",
                    {"is_paused": True, "paused_by": creator, "timestamp": T0},
                )
            ),
            tape.tx(
                (
                    "LiquidityWithdrawn",
                    {"market_id": mid, "creator": creator, "amount": 200, "timestamp": T0},
                )
            ),
            tape.tx(
                (
                    "WinningsClaimed",
                    {
                        "market": address,
                        "user": user,
                        "outcome": True,
                        "amount": 77,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "MarketCancelled",
                    {"market_id": mid, "cancelled_by": creator, "cancelled_at": T0 + 50},
                )
            ),
            tape.tx(("SomethingNew", {"market_id": mid})),
            tape.tx(
                (
                    "SharesBought",
                    {
                        "market_id": tape.mid(new_market_id()),
                        "user": user,
                        "outcome": True,
                        "shares": 1,
                        "cost": 1,
                        "new_price_yes": 1,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "MarketCreated",
                    {
                        "market_id": b"z" * 32,
                        "creator": creator,
                        "b_parameter": 1,
                        "state": 0,
                        "timestamp": T0,
                    },
                )
            ),
            tape.tx(
                (
                    "WinningsClaimed",
                    {
                        "market": str(tape.wallet()),
                        "user": user,
                        "outcome": None,
                        "amount": 1,
                        "timestamp": T0,
                    },
                )
            ),
        ],
    )
    assert applied.new_events == 10
    assert applied.fees == FeeSchedule(0, 0, 1000)
    async with api.container.database.session() as session:
        market = await session.get(Market, tape.market_id)
        assert market is not None
        assert (market.state, market.is_cancelled, market.current_liquidity) == (
            "CANCELLED",
            False,  # as the program leaves the account's flag (cancel_market, §3.17)
            0,  # withdraw_liquidity sets current_liquidity to 0 (§3.14)
        )
        position = (await session.scalars(select(Position))).one()
        assert (position.user_wallet, position.realized_pnl) == (user, 77)
        assert (position.has_claimed, position.claimed_amount) == (True, 77)
        assert (position.first_trade_at, position.last_trade_at) == (None, None)  # no trade
        # Any 32 bytes are a market (a foreign client's id): indexed under their hex.
        foreign = await session.get(Market, "7a" * 32)
        assert foreign is not None and foreign.creator_wallet == creator
        assert foreign.on_chain_address == str(market_address(PROGRAM_ID, "7a" * 32))
        assert len((await session.scalars(select(Market))).all()) == 2


async def test_a_trade_without_shares_or_amount_moves_the_position_but_writes_no_trade_row(
    api, tape
):
    """The platform's trades table holds positive shares and cost only (positive_shares,
    positive_cost): such an event must not fail the batch."""
    creator, user = str(tape.wallet()), str(tape.wallet())
    mid = tape.mid()
    created = {"market_id": mid, "creator": creator, "b_parameter": 1, "state": 2, "timestamp": T0}
    trade = {"market_id": mid, "user": user, "outcome": True, "new_price_yes": 5 * 10**8}
    await index(
        api.container,
        [
            tape.tx(("MarketCreated", created)),
            tape.tx(("SharesBought", trade | {"shares": 10, "cost": 0, "timestamp": T0 + 1})),
            tape.tx(("SharesSold", trade | {"shares": 0, "proceeds": 3, "timestamp": T0 + 2})),
        ],
    )
    async with api.container.database.session() as session:
        assert (await session.scalars(select(Trade))).all() == []
        position = (await session.scalars(select(Position))).one()
        assert (position.shares_yes, position.trades_count, position.realized_pnl) == (10, 2, 3)
        assert (await session.get(User, user)).total_trades in (0, None)  # type: ignore[union-attr]


async def test_relayed_trades_are_confirmed_or_failed_by_the_chain(api, tape):
    _keypair, headers = await api.sign_in()
    tape.market_id = await api.market(headers, state="ACTIVE")
    ok, failed = (
        tape.tx(
            (
                "SharesBought",
                {
                    "market_id": tape.mid(),
                    "user": str(tape.wallet()),
                    "outcome": True,
                    "shares": 3,
                    "cost": 2,
                    "new_price_yes": 500_000_001,
                    "timestamp": T0,
                },
            )
        ),
        tape.tx(err={"InstructionError": [0, {"Custom": 6000}]}),
    )
    async with api.container.database.session() as session, session.begin():
        for batch in (ok, failed):
            session.add(
                TradeSubmission(
                    signature=batch.signature,
                    market_id=tape.market_id,
                    user_wallet="w",
                    trade_type="buy",
                    outcome=True,
                    amount=2,
                    raw_transaction=b"raw",
                )
            )
    applied = await index(api.container, [ok, failed])
    assert applied.new_events == 1
    async with api.container.database.session() as session:
        rows = {r.signature: r for r in (await session.scalars(select(TradeSubmission))).all()}
    assert rows[ok.signature].status == "confirmed"
    assert rows[failed.signature].status == "failed"
    assert "6000" in (rows[failed.signature].error or "")


async def test_an_aggregation_by_another_signer_moves_the_market_as_the_program_does(
    api, make_tape
):
    """DisputeAggregated is a state change with no state event (PROGRAM.md §3.12): upheld ->
    RESOLVING, rejected -> FINALIZED with no final outcome; a later one never moves back."""
    results = {}
    for succeeded in (True, False):
        tape = make_tape()
        mid, creator = tape.mid(), str(tape.wallet())
        created = {"market_id": mid, "creator": creator, "b_parameter": 5, "state": 0}
        resolved = {
            "market_id": mid,
            "resolver": creator,
            "outcome": True,
            "evidence_hash": b"E" * 46,
            "timestamp": T0 + 2,
        }
        aggregated = {
            "market_id": mid,
            "agrees": 8 if succeeded else 2,
            "disagrees": 2 if succeeded else 8,
            "agreement_percentage": 80 if succeeded else 20,
            "dispute_succeeded": succeeded,
            "timestamp": T0 + 4,
        }
        applied = await index(
            api.container,
            [
                tape.tx(("MarketCreated", {**created, "timestamp": T0})),
                tape.tx(("MarketResolved", resolved)),
                tape.tx(
                    (
                        "DisputeInitiated",
                        {
                            "market_id": mid,
                            "initiator": creator,
                            "disputed_outcome": True,
                            "timestamp": T0 + 3,
                        },
                    )
                ),
                tape.tx(("DisputeAggregated", aggregated)),
                tape.tx(("DisputeAggregated", {**aggregated, "timestamp": T0 + 5})),
            ],
        )
        async with api.container.database.session() as session:
            market = await session.get(Market, tape.market_id)
            assert market is not None
            results[succeeded] = (
                market.state,
                market.final_outcome,
                market.dispute_agree,
                market.finalized_at is not None,
            )
        states = [wire(n)["newState"] for n in applied.events if n.topic == "markets"]
        # The second aggregation moved nothing.
        assert states[-2:] == ["DISPUTED", "RESOLVING" if succeeded else "FINALIZED"]
    assert results == {
        True: ("RESOLVING", None, 8, False),
        False: ("FINALIZED", None, 2, True),
    }


async def test_an_older_markets_ascii_id_is_indexed_under_its_uuid(api, make_tape):
    """marketd's older markets: their 32 on-chain bytes are the ASCII of their UUID's hex, and
    their rows keep the UUID as id; events of such a market land on that row."""
    tape = make_tape()
    tape.market_id = "0b7c3b49-8f0a-4c2b-9a0e-4b8e6f1d2c3a"
    creator, mid = str(tape.wallet()), tape.mid()
    assert mid == b"0b7c3b498f0a4c2b9a0e4b8e6f1d2c3a"
    created = {"market_id": mid, "creator": creator, "b_parameter": 1, "state": 0, "timestamp": T0}
    await index(api.container, [tape.tx(("MarketCreated", created))])
    async with api.container.database.session() as session:
        market = (await session.scalars(select(Market))).one()
    assert market.id == tape.market_id
    assert market.on_chain_address == str(market_address(PROGRAM_ID, tape.market_id))
