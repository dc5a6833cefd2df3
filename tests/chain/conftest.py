"""Fixtures of the chain client / outbox / relay tests (all named `chain_*`).

`chain_world` is a real local chain (LiteSVM + the faithful twin of zmart_core, as deployed
unless a module asks for the fixed build with `chain_fixed_program`) served over JSON-RPC, a
`ChainClient` on it, an initialized GlobalConfig (admin = backend key unless asked otherwise)
and helpers that drive markets into any state with real instructions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from sqlalchemy import delete

from marketd.chain.client import ChainClient
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.program import BUNDLED_IDL
from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.models import ChainOutbox, Market, TradeSubmission, User

from ..helpers.chain import PROGRAM_ID, ChainWorld


@pytest.fixture(scope="session")
def chain_coder() -> IdlCoder:
    return IdlCoder(Idl.from_path(BUNDLED_IDL))


@pytest.fixture
def chain_fixed_program() -> bool:
    """The twin as deployed (sell_shares fails as on Solana); a module overrides this with
    True for the fixed build (sales pay out and emit SharesSold)."""
    return False


@pytest_asyncio.fixture
async def chain_world(
    chain_coder: IdlCoder, chain_fixed_program: bool
) -> AsyncIterator[ChainWorld]:
    chain = LocalChain()
    chain.load_program(PROGRAM_ID, program_artifact(fixed=chain_fixed_program))
    async with serve_local_rpc(chain) as endpoint:
        client = ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed),
            chain_coder,
            PROGRAM_ID,
            poll_interval=0.01,
            rpc_url=endpoint.http_url,
        )
        async with client:
            yield ChainWorld(chain, endpoint, client, chain_coder)


@pytest_asyncio.fixture
async def chain_database(postgres_url: str) -> AsyncIterator[Database]:
    """The run's PostgreSQL database with empty outbox and trade submission tables."""
    database = Database(create_engine(Settings(database_url=postgres_url)))
    async with database.session() as session, session.begin():
        await session.execute(delete(ChainOutbox))
        await session.execute(delete(TradeSubmission))
    yield database
    await database.dispose()


@pytest.fixture
def chain_add_market(
    chain_database: Database, chain_world: ChainWorld
) -> Callable[[str], Awaitable[None]]:
    """Insert the `markets` row of an on-chain market (trade_submissions references it)."""

    async def add(market_id: str) -> None:
        creator = str(Pubkey.new_unique())
        async with chain_database.session() as session, session.begin():
            session.add(User(wallet=creator))  # the platform's markets reference users
            await session.flush()
            session.add(
                Market(
                    id=market_id,
                    on_chain_address=str(chain_world.client.market_address(market_id)),
                    question="Will the relay test pass?",
                    creator_wallet=creator,
                    state="ACTIVE",
                )
            )

    return add
