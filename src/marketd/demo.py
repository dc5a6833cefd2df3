"""Demo data for `marketd demo`: markets in every state, users, votes, posts, trades.

The on-chain part comes first and from the chain: `LocalChainRuntime.seed_demo_chain` creates
and drives the markets on the simulated chain (`marketd.chain.localnet.seed`), then this module
reads back what the chain did — the market and position accounts, and the events of every
transaction — and writes the database rows from them. States, shares, prices, volumes, vote
counts, votes, trades (with their real signatures and block times) and positions therefore
agree with the chain. Only what has no on-chain home is made up here: question texts,
categories, display names, discussion posts and closing dates (deterministic, fixed seeds).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import market_id_from_bytes
from marketd.chain.events import parse_program_events
from marketd.chain.localnet.runtime import LocalChainRuntime
from marketd.chain.localnet.seed import (
    LocalProgram,
    PlannedMarket,
    demo_plan,
    demo_wallets,
)
from marketd.chain.localnet.svm import Commitment
from marketd.chain.stream import Checkpoint
from marketd.indexer.checkpoint import checkpoint_name, save_checkpoint
from marketd.models import (
    Discussion,
    DisputeVote,
    Market,
    MarketSchedule,
    Position,
    ProposalVote,
    Trade,
    User,
)
from marketd.shared.market_state import MarketState

POSTS = [
    "What source will the resolver use for this?",
    "Priced too low in my view, buying YES.",
    "The deadline is tight; NO looks safer.",
    "Anyone tracking the official announcements?",
    "Liquidity is decent now, spreads are fine.",
    "Resolution criteria are clear enough for me.",
]
PRICE_SCALE = Decimal(1_000_000_000)
PRICE_QUANTUM = Decimal("0.000000001")
OFF_CHAIN_SEED = 9


class DemoMismatchError(Exception):
    """The database holds the demo but the chain does not: they would disagree."""


def price_from_chain(new_price_yes: int) -> Decimal:
    """An event's 1e9 fixed-point price as the database's 9-decimal price."""
    return (Decimal(new_price_yes) / PRICE_SCALE).quantize(PRICE_QUANTUM)


def timestamp(seconds: int) -> datetime | None:
    """An on-chain i64 time (0 = never) as a datetime."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


@dataclass
class _ChainHistory:
    """What the program's events say about the demo markets."""

    trades: list[Trade] = field(default_factory=list)
    proposal_votes: list[ProposalVote] = field(default_factory=list)
    dispute_votes: list[DisputeVote] = field(default_factory=list)
    last_price: dict[str, int] = field(default_factory=dict)
    traders: dict[str, dict[str, datetime]] = field(default_factory=dict)


def read_history(program: LocalProgram, market_ids: Iterable[str]) -> _ChainHistory:
    """Votes and trades of `market_ids` from the events of every landed program transaction."""
    wanted = set(market_ids)
    history = _ChainHistory()
    records = program.chain.signatures_for_address(
        str(program.program_id), limit=2**62, commitment=Commitment.CONFIRMED
    )
    for record in reversed(records):
        if record.err is not None:
            continue
        moment = datetime.fromtimestamp(record.block_time, UTC)
        for event in parse_program_events(record.logs, program.program_id, program.coder):
            data = event.data
            raw_id = data.get("market_id")
            market_id = market_id_from_bytes(bytes(raw_id)) if raw_id is not None else None
            if market_id not in wanted:
                continue
            assert market_id is not None
            _add_event(history, event.name, data, market_id, record.signature, moment)
    return history


def _add_event(
    history: _ChainHistory,
    name: str,
    data: dict[str, Any],
    market_id: str,
    signature: str,
    moment: datetime,
) -> None:
    if name in ("SharesBought", "SharesSold"):
        user = str(data["user"])
        history.trades.append(
            Trade(
                market_id=market_id,
                user_wallet=user,
                trade_type="buy" if name == "SharesBought" else "sell",
                outcome=data["outcome"],
                shares=data["shares"],
                cost=data["cost"] if name == "SharesBought" else data["proceeds"],
                price_after=price_from_chain(data["new_price_yes"]),
                tx_signature=signature,
                block_time=moment,
            )
        )
        history.last_price[market_id] = data["new_price_yes"]
        history.traders.setdefault(market_id, {}).setdefault(user, moment)
    elif name in ("ProposalVoteSubmitted", "DisputeVoteSubmitted"):
        vote_type = ProposalVote if name == "ProposalVoteSubmitted" else DisputeVote
        vote = vote_type(
            market_id=market_id,
            user_wallet=str(data["user"]),
            vote=data["vote"],
            voted_at=datetime.fromtimestamp(data["timestamp"], UTC),
            tx_signature=signature,
        )
        if isinstance(vote, ProposalVote):
            history.proposal_votes.append(vote)
        else:
            history.dispute_votes.append(vote)


def market_row(
    planned: PlannedMarket, address: Pubkey, account: dict[str, Any], last_price: int | None
) -> Market:
    """The markets row of a demo market, from its decoded MarketAccount."""
    price_yes = Decimal("0.5") if last_price is None else price_from_chain(last_price)
    resolver = account["resolver"]
    evidence = bytes(account["ipfs_evidence_hash"]).rstrip(b"\0")
    created = timestamp(account["created_at"])
    assert created is not None
    return Market(
        id=planned.id,
        on_chain_address=str(address),
        question=planned.question,
        description=f"Resolves YES if: {planned.question.rstrip('?').lower()}. Otherwise NO.",
        category=planned.category,
        tags=[planned.category, "demo"],
        creator_wallet=str(account["creator"]),
        resolver_wallet=None if resolver == Pubkey.default() else str(resolver),
        state=MarketState[str(account["state"]).upper()].value,
        b_parameter=account["b_parameter"],
        initial_liquidity=account["initial_liquidity"],
        current_liquidity=account["current_liquidity"],
        shares_yes=account["shares_yes"],
        shares_no=account["shares_no"],
        current_price_yes=price_yes,
        current_price_no=Decimal(1) - price_yes,
        total_volume=account["total_volume"],
        proposed_outcome=account["proposed_outcome"],
        final_outcome=account["final_outcome"],
        ipfs_evidence_hash=evidence.decode("ascii") if evidence else None,
        proposal_likes=account["proposal_likes"],
        proposal_dislikes=account["proposal_dislikes"],
        dispute_agree=account["dispute_agree"],
        dispute_disagree=account["dispute_disagree"],
        created_at=created,
        approved_at=timestamp(account["approved_at"]),
        activated_at=timestamp(account["activated_at"]),
        resolution_proposed_at=timestamp(account["resolution_proposed_at"]),
        finalized_at=timestamp(account["finalized_at"]),
        is_cancelled=account["is_cancelled"],
        updated_at=datetime.now(UTC),
    )


def _position_row(
    market_id: str, market_pubkey: str, wallet: str, account: dict[str, Any], first: datetime
) -> Position:
    return Position(
        market_id=market_id,
        user_wallet=wallet,
        shares_yes=account["shares_yes"],
        shares_no=account["shares_no"],
        total_invested=account["total_invested"],
        trades_count=account["trades_count"],
        realized_pnl=account["claimed_amount"],  # the demo sells nowhere the program refuses
        has_claimed=account["has_claimed"],
        claimed_amount=account["claimed_amount"] if account["has_claimed"] else None,
        market_pubkey=market_pubkey,
        user_pubkey=wallet,
        first_trade_at=first,
        last_trade_at=timestamp(account["last_trade_at"]) or first,
        created_at=first,
        updated_at=timestamp(account["last_trade_at"]) or first,
    )


async def seed_demo(
    session: AsyncSession, runtime: LocalChainRuntime, now: datetime | None = None
) -> int:
    """Seed the chain (unless done) and the database from it; the number of markets written
    (0 when the database already holds the demo)."""
    now = now or datetime.now(UTC)
    plan = demo_plan()
    program = runtime.program()
    if (await session.scalar(select(func.count()).select_from(Market))) or 0:
        missing = [m.id for m in plan if program.chain.get_account(program.market(m.id)) is None]
        if missing:
            raise DemoMismatchError(
                f"the database holds demo markets but the local chain lacks {len(missing)} of "
                f"them (e.g. {missing[0]}); remove the data directory to start over"
            )
        return 0
    runtime.seed_demo_chain(int(now.timestamp()))
    history = read_history(program, (m.id for m in plan))
    _add_users(session, program, now)
    rng = random.Random(OFF_CHAIN_SEED)  # noqa: S311 - demo data, not security
    wallets = [str(k.pubkey()) for k in demo_wallets()]
    for planned in plan:
        address = program.market(planned.id)
        account = program.read("MarketAccount", address)
        assert account is not None, "seed_demo_chain created every planned market"
        market = market_row(planned, address, account, history.last_price.get(planned.id))
        session.add(market)
        await session.flush()
        session.add(
            MarketSchedule(market_id=market.id, closes_at=now + timedelta(days=rng.randint(1, 90)))
        )
        _add_posts(session, market, rng, wallets, now)
        for wallet, first in history.traders.get(planned.id, {}).items():
            position = program.read(
                "UserPosition", program.position(address, Pubkey.from_string(wallet))
            )
            assert position is not None, "every trade writes its position"
            session.add(_position_row(planned.id, str(address), wallet, position, first))
    session.add_all(history.proposal_votes)
    session.add_all(history.dispute_votes)
    for trade in history.trades:  # the platform's copies of the keys
        trade.market_pubkey = str(program.market(trade.market_id))
        trade.trader_pubkey = trade.user_wallet
    session.add_all(history.trades)
    await _start_indexer_after(session, program, runtime)
    await session.commit()
    return len(plan)


async def _start_indexer_after(
    session: AsyncSession, program: LocalProgram, runtime: LocalChainRuntime
) -> None:
    """The rows above already hold everything the chain has done: the indexer's checkpoint
    is set to the newest program transaction, so it indexes only what comes after (instead
    of replaying the seed into rows that exist)."""
    program_key = str(runtime.program_id)
    newest = program.chain.signatures_for_address(
        program_key, limit=1, commitment=Commitment.CONFIRMED
    )
    if newest:
        checkpoint = Checkpoint(newest[0].signature, newest[0].slot)
        await save_checkpoint(session, checkpoint_name(program_key), checkpoint)


def _add_users(session: AsyncSession, program: LocalProgram, now: datetime) -> None:
    for index, keypair in enumerate(demo_wallets()):
        wallet = str(keypair.pubkey())
        first = program.chain.signatures_for_address(
            wallet, limit=2**62, commitment=Commitment.CONFIRMED
        )
        joined = datetime.fromtimestamp(first[-1].block_time, UTC) if first else now
        session.add(
            User(
                wallet=wallet,
                display_name=f"trader{index + 1}",
                created_at=joined,
                last_seen_at=now,
            )
        )


def _add_posts(
    session: AsyncSession, market: Market, rng: random.Random, wallets: list[str], now: datetime
) -> None:
    for _ in range(rng.randint(1, 6)):
        moment = market.created_at + (now - market.created_at) * rng.random()
        session.add(
            Discussion(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                market_id=market.id,
                user_wallet=rng.choice(wallets),
                content=rng.choice(POSTS),
                created_at=moment,
            )
        )
