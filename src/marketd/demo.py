"""Realistic demo data for `marketd demo`: markets in every state, users, votes, posts, trades.

Deterministic (fixed random seed and wallet seeds) so every fresh demo looks the same.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import market_address
from marketd.markets.rules import MarketState
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

QUESTIONS = [
    ("crypto", "Will SOL close above $300 on 31 December?"),
    ("crypto", "Will Bitcoin set a new all-time high this quarter?"),
    ("crypto", "Will Ethereum's next upgrade ship before June?"),
    ("crypto", "Will a Solana ETF be approved this year?"),
    ("sports", "Will the home team win the championship final?"),
    ("sports", "Will the marathon record fall at the next major race?"),
    ("sports", "Will the transfer window bring a record fee?"),
    ("politics", "Will the budget bill pass the senate this month?"),
    ("politics", "Will turnout exceed 60% in the next general election?"),
    ("tech", "Will the new phone launch sell out in its first week?"),
    ("tech", "Will an open model top the main leaderboard by summer?"),
    ("tech", "Will the big chip merger close before year end?"),
    ("science", "Will the lunar lander touch down successfully?"),
    ("science", "Will this year be the warmest on record?"),
    ("culture", "Will the festival headliner be announced before March?"),
    ("culture", "Will the sequel gross $1B worldwide?"),
    ("economy", "Will the central bank cut rates at its next meeting?"),
    ("economy", "Will inflation print below 3% next month?"),
]
STATE_PLAN = [
    (MarketState.PROPOSED, 8),
    (MarketState.APPROVED, 4),
    (MarketState.ACTIVE, 10),
    (MarketState.RESOLVING, 4),
    (MarketState.DISPUTED, 4),
    (MarketState.FINALIZED, 4),
    (MarketState.CANCELLED, 2),
]
POSTS = [
    "What source will the resolver use for this?",
    "Priced too low in my view, buying YES.",
    "The deadline is tight; NO looks safer.",
    "Anyone tracking the official announcements?",
    "Liquidity is decent now, spreads are fine.",
    "Resolution criteria are clear enough for me.",
]
B_PARAMETER = 100_000_000_000
SHARE = 1_000_000_000


def demo_wallets(count: int = 24) -> list[Keypair]:
    return [Keypair.from_seed(bytes([index + 1]) * 32) for index in range(count)]


def price_yes(shares_yes: int, shares_no: int, b: int) -> Decimal:
    """The demo's simple monotonic pricing: (yes + b) / (yes + no + 2b), in (0, 1)."""
    value = Decimal(shares_yes + b) / Decimal(shares_yes + shares_no + 2 * b)
    return value.quantize(Decimal("0.000000001"))


async def seed_demo(session: AsyncSession, program_id: Pubkey, now: datetime | None = None) -> int:
    """Insert the demo data once; returns the number of markets created (0 if already seeded)."""
    if (await session.scalar(select(func.count()).select_from(Market))) or 0:
        return 0
    now = now or datetime.now(UTC)
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    wallets = [str(k.pubkey()) for k in demo_wallets()]
    for index, wallet in enumerate(wallets):
        session.add(
            User(
                wallet=wallet,
                display_name=f"trader{index + 1}",
                created_at=now - timedelta(days=60 - index),
                last_seen_at=now,
            )
        )
    count = 0
    for state, how_many in STATE_PLAN:
        for _ in range(how_many):
            category, question = QUESTIONS[count % len(QUESTIONS)]
            count += 1
            created = now - timedelta(days=rng.randint(3, 40), minutes=rng.randint(0, 1440))
            market = _market(program_id, state, category, question, rng, wallets, created, now)
            session.add(market)
            await session.flush()
            session.add(
                MarketSchedule(
                    market_id=market.id, closes_at=now + timedelta(days=rng.randint(1, 90))
                )
            )
            await session.flush()
            _votes(session, market, state, rng, wallets, created)
            _posts(session, market, rng, wallets, created, now)
            if state not in (MarketState.PROPOSED, MarketState.APPROVED):
                _trades(session, market, rng, wallets, created, now)
    await session.commit()
    return count


def _market(
    program_id: Pubkey,
    state: MarketState,
    category: str,
    question: str,
    rng: random.Random,
    wallets: list[str],
    created: datetime,
    now: datetime,
) -> Market:
    market_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    reached = list(MarketState).index(state)
    approved = created + timedelta(hours=6) if 1 <= reached <= 5 else None
    activated = created + timedelta(hours=12) if 2 <= reached <= 5 else None
    resolving = now - timedelta(days=2) if 3 <= reached <= 5 else None
    finalized = now - timedelta(hours=1) if state is MarketState.FINALIZED else None
    outcome = rng.random() < 0.5
    return Market(
        id=market_id,
        on_chain_address=str(market_address(program_id, market_id)),
        question=question,
        description=f"Resolves YES if: {question.rstrip('?').lower()}. Otherwise NO.",
        category=category,
        tags=[category, "demo"],
        creator_wallet=rng.choice(wallets),
        resolver_wallet=wallets[0],
        state=state.value,
        b_parameter=B_PARAMETER,
        initial_liquidity=10 * SHARE,
        current_liquidity=10 * SHARE,
        shares_yes=0,
        shares_no=0,
        current_price_yes=Decimal("0.5"),
        current_price_no=Decimal("0.5"),
        total_volume=0,
        proposed_outcome=outcome if resolving else None,
        final_outcome=(not outcome if rng.random() < 0.25 else outcome) if finalized else None,
        proposal_likes=0,
        proposal_dislikes=0,
        dispute_agree=0,
        dispute_disagree=0,
        created_at=created,
        approved_at=approved,
        activated_at=activated,
        resolution_proposed_at=resolving,
        finalized_at=finalized,
        is_cancelled=state is MarketState.CANCELLED,
        updated_at=now,
    )


def _votes(
    session: AsyncSession,
    market: Market,
    state: MarketState,
    rng: random.Random,
    wallets: list[str],
    created: datetime,
) -> None:
    voters = rng.sample(wallets, rng.randint(3, 9) if state is MarketState.PROPOSED else 12)
    likes = 0
    for offset, wallet in enumerate(voters):
        vote = rng.random() < 0.75
        likes += vote
        session.add(
            ProposalVote(
                market_id=market.id,
                user_wallet=wallet,
                vote=vote,
                voted_at=created + timedelta(minutes=5 * (offset + 1)),
            )
        )
    if state is not MarketState.PROPOSED:
        market.proposal_likes, market.proposal_dislikes = likes, len(voters) - likes
    if state is MarketState.DISPUTED:
        for offset, wallet in enumerate(rng.sample(wallets, rng.randint(4, 8))):
            session.add(
                DisputeVote(
                    market_id=market.id,
                    user_wallet=wallet,
                    vote=rng.random() < 0.5,
                    voted_at=created + timedelta(days=1, minutes=offset),
                )
            )


def _posts(
    session: AsyncSession,
    market: Market,
    rng: random.Random,
    wallets: list[str],
    created: datetime,
    now: datetime,
) -> None:
    for _ in range(rng.randint(1, 6)):
        moment = created + (now - created) * rng.random()
        session.add(
            Discussion(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                market_id=market.id,
                user_wallet=rng.choice(wallets),
                content=rng.choice(POSTS),
                created_at=moment,
            )
        )


def _trades(
    session: AsyncSession,
    market: Market,
    rng: random.Random,
    wallets: list[str],
    created: datetime,
    now: datetime,
) -> None:
    start = market.activated_at or created
    end = market.resolution_proposed_at or now
    positions: dict[str, Position] = {}
    moments = sorted(start + (end - start) * rng.random() for _ in range(rng.randint(5, 25)))
    for moment in moments:
        wallet = rng.choice(wallets)
        outcome = rng.random() < 0.55
        shares = rng.randint(1, 20) * SHARE
        price_before = price_yes(market.shares_yes, market.shares_no, market.b_parameter)
        unit = price_before if outcome else 1 - price_before
        cost = int(unit * shares)
        if outcome:
            market.shares_yes += shares
        else:
            market.shares_no += shares
        after = price_yes(market.shares_yes, market.shares_no, market.b_parameter)
        market.total_volume += cost
        market.current_liquidity += cost
        session.add(
            Trade(
                market_id=market.id,
                user_wallet=wallet,
                trade_type="buy",
                outcome=outcome,
                shares=shares,
                cost=cost,
                price_after=after,
                tx_signature=str(Keypair.from_seed(rng.randbytes(32)).sign_message(b"demo")),
                block_time=moment,
            )
        )
        position = positions.get(wallet)
        if position is None:
            position = positions[wallet] = Position(
                market_id=market.id,
                user_wallet=wallet,
                shares_yes=0,
                shares_no=0,
                total_invested=0,
                trades_count=0,
                realized_pnl=0,
            )
            session.add(position)
        if outcome:
            position.shares_yes += shares
        else:
            position.shares_no += shares
        position.total_invested += cost
        position.trades_count += 1
    market.current_price_yes = price_yes(market.shares_yes, market.shares_no, market.b_parameter)
    market.current_price_no = Decimal(1) - market.current_price_yes
