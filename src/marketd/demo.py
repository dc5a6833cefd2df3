"""Demo data for `marketd demo`: markets in every state, users, votes, posts, trades.

The chain's part takes the production path, so the demo cannot drift from it:

1. `LocalChainRuntime.seed_demo_chain` creates the markets on the simulated chain and drives
   them to their states with the program's instructions (`marketd.chain.localnet.seed`);
2. the indexer builds the database from the chain's history exactly as the worker's indexer job
   does when it starts: the program's signatures are backfilled from the indexer's checkpoint
   (`ProgramEventStream.backfill` over the local chain's JSON-RPC) and indexed in the job's
   batches (`Indexer.index`: the event handlers, the rollups, the checkpoint). Markets, votes,
   trades, positions, users and the 24-hour rollups are therefore the indexer's rows, and the
   worker's indexer continues from where this left off;
3. one round of the worker's reconcile job then makes the rows agree with the market accounts,
   as it would a round later on a cluster (it logs each field it repairs): on a fresh chain it
   copies what no event carries (the liquidity of a market never activated: MarketCreated
   lacks it);
4. what no chain event carries is written here, as the API would have written it: each market's
   texts (question, description, category, tags: `POST /api/markets` registers them) and closing
   date (`market_schedules`), the demo wallets' display names (a profile), and the discussion
   posts (off-chain by design). Deterministic, from fixed seeds.

Every step is idempotent: a restart seeds nothing, indexes what the chain did since (nothing,
unless someone used the demo), and describes no market twice. A lost database is rebuilt from
the chain's history; a lost chain beside a database that holds markets is refused.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.client import ChainClient
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.chain.localnet.seed import PlannedMarket, demo_plan, demo_wallets
from marketd.chain.stream import ProgramEventStream, TransactionEvents
from marketd.core.container import Container
from marketd.indexer.checkpoint import load_checkpoint
from marketd.indexer.handlers import UNKNOWN_QUESTION
from marketd.indexer.indexer import Indexer, fee_schedule
from marketd.indexer.reconcile import reconcile
from marketd.models import Discussion, Market, MarketSchedule, User

POSTS = [
    "What source will the resolver use for this?",
    "Priced too low in my view, buying YES.",
    "The deadline is tight; NO looks safer.",
    "Anyone tracking the official announcements?",
    "Liquidity is decent now, spreads are fine.",
    "Resolution criteria are clear enough for me.",
]
OFF_CHAIN_SEED = 9

log = structlog.get_logger(__name__)


class DemoMismatchError(Exception):
    """The database holds the demo but the chain does not: they would disagree."""


async def seed_demo(runtime: LocalChainRuntime, now: datetime | None = None) -> int:
    """Seed the chain (unless done), index its history, describe the new markets; the number
    of markets described (0 when the database already holds the demo)."""
    now = now or datetime.now(UTC)
    plan = demo_plan()
    container = Container.build(runtime.settings_for_clients())
    client = ChainClient.from_settings(container.settings)
    try:
        async with container.database.session() as session:
            await _refuse_a_lost_chain(session, runtime, plan)
        runtime.seed_demo_chain(int(now.timestamp()))
        indexed = await index_history(container, client)
        repaired = await reconcile(container, client)
        async with container.database.session() as session, session.begin():
            described = await describe(session, plan, now)
        log.info(
            "demo database built from the chain's history",
            transactions_indexed=indexed,
            fields_reconciled=len(repaired),
            markets_described=described,
        )
        return described
    finally:
        await client.close()
        await container.close()


async def _refuse_a_lost_chain(
    session: AsyncSession, runtime: LocalChainRuntime, plan: Sequence[PlannedMarket]
) -> None:
    if not await session.scalar(select(func.count()).select_from(Market)):
        return
    program = runtime.program()
    missing = [m.id for m in plan if program.chain.get_account(program.market(m.id)) is None]
    if missing:
        raise DemoMismatchError(
            f"the database holds demo markets but the local chain lacks {len(missing)} of "
            f"them (e.g. {missing[0]}); remove the data directory to start over"
        )


async def index_history(container: Container, client: ChainClient) -> int:
    """Index the program's transactions after the indexer's checkpoint, up to the chain's
    head, with the worker's indexer (its backfill, batches, fees and checkpoint); the number
    of transactions indexed."""
    async with ProgramEventStream.of_client(
        client, ws_url=container.settings.solana_ws_url
    ) as stream:
        indexer = Indexer(container, client, stream)
        indexer.fees = await fee_schedule(client)  # as `Indexer.run` starts
        async with container.database.session() as session:
            since = await load_checkpoint(session, indexer.name)
        indexed = 0
        batch: list[TransactionEvents] = []
        async for transaction in stream.backfill(since):
            batch.append(transaction)
            if len(batch) == indexer.max_batch:
                await indexer.index(batch)
                indexed, batch = indexed + len(batch), []
        if batch:
            await indexer.index(batch)
        return indexed + len(batch)


async def describe(session: AsyncSession, plan: Sequence[PlannedMarket], now: datetime) -> int:
    """Write what no chain event carries to the planned markets the indexer built and nobody
    described yet (texts, closing date, posts) and name the demo wallets; the number of
    markets described."""
    ids = [planned.id for planned in plan]
    markets = {m.id: m for m in (await session.scalars(select(Market).where(Market.id.in_(ids))))}
    wallets = [str(keypair.pubkey()) for keypair in demo_wallets()]
    rng = random.Random(OFF_CHAIN_SEED)  # noqa: S311 - demo data, not security
    described = 0
    for planned in plan:
        market = markets[planned.id]  # indexed, or made from its account by reconcile
        closes_at = now + timedelta(days=rng.randint(1, 90))
        posts = _posts(market, rng, wallets, now)  # drawn for every market: same data always
        if market.question != UNKNOWN_QUESTION:
            continue
        market.question = planned.question
        market.description = (
            f"Resolves YES if: {planned.question.rstrip('?').lower()}. Otherwise NO."
        )
        market.category = planned.category
        market.tags = [planned.category, "demo"]
        session.add(MarketSchedule(market_id=market.id, closes_at=closes_at))
        session.add_all(posts)
        described += 1
    if described:
        await _name_users(session, wallets, now)
    return described


async def _name_users(session: AsyncSession, wallets: Sequence[str], now: datetime) -> None:
    """Display names for the demo wallets (the indexer made the rows of those it saw)."""
    users = {
        u.wallet: u for u in await session.scalars(select(User).where(User.wallet.in_(wallets)))
    }
    for index, wallet in enumerate(wallets):
        user = users.get(wallet)
        if user is None:
            user = User(wallet=wallet, created_at=now)
            session.add(user)
        user.display_name = f"trader{index + 1}"
        user.last_seen_at = now


def _posts(
    market: Market, rng: random.Random, wallets: list[str], now: datetime
) -> list[Discussion]:
    posts = []
    for _ in range(rng.randint(1, 6)):
        moment = market.created_at + (now - market.created_at) * rng.random()
        posts.append(
            Discussion(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                market_id=market.id,
                user_wallet=rng.choice(wallets),
                content=rng.choice(POSTS),
                created_at=moment,
            )
        )
    return posts
