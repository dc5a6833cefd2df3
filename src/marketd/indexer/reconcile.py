"""Periodic repair of database drift from the program's market accounts.

getProgramAccounts (memcmp on the MarketAccount discriminator at offset 0) returns every market
of the program; each decoded account is compared field by field with its `markets` row and the
row is corrected where they differ (a missing row is created, as the MarketCreated handler
would). Every fix is logged and returned; a state fix is published like any state change.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import base58
import structlog
from solana.rpc.models import MemcmpOpts
from solders.pubkey import Pubkey
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import market_id_from_bytes
from marketd.chain.client import ChainClient
from marketd.core.container import Container
from marketd.indexer.bulk import BulkInsert
from marketd.indexer.handlers import UNKNOWN_QUESTION
from marketd.markets.cache import MarketCache
from marketd.markets.rules import MarketState
from marketd.models import Market, User, utcnow

log = structlog.get_logger(__name__)

MARKET_ACCOUNT = "MarketAccount"
COUNTERS = (
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
)


@dataclass(frozen=True)
class Fix:
    market_id: str
    field: str
    database: Any
    chain: Any


def expected_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The `markets` columns a decoded MarketAccount determines (pure)."""
    columns: dict[str, Any] = {name: int(fields[name]) for name in COUNTERS}
    state = fields["state"]
    columns["state"] = MarketState.from_program_name(state).value
    columns["creator_wallet"] = str(fields["creator"])
    columns["proposed_outcome"] = fields["proposed_outcome"]
    columns["final_outcome"] = fields["final_outcome"]
    columns["is_cancelled"] = bool(fields["is_cancelled"])
    return columns


async def market_accounts(client: ChainClient) -> list[tuple[Pubkey, dict[str, Any]]]:
    discriminator = client.coder.account_discriminator(MARKET_ACCOUNT)
    response = await client.rpc.get_program_accounts(
        client.program_id,
        encoding="base64",
        filters=[MemcmpOpts(offset=0, bytes=base58.b58encode(discriminator).decode())],
    )
    out = []
    for keyed in response.value:
        data = bytes(keyed.account.data)
        fields = client.coder.decode_account(MARKET_ACCOUNT, data, allow_trailing=True)
        out.append((keyed.pubkey, fields))
    return out


FIRST_SEEN = BulkInsert(cast(Table, User.__table__), ("wallet", "created_at"), conflict=("wallet",))


async def _first_seen(session: AsyncSession, expected: list[dict[str, Any]]) -> None:
    """The users rows of the accounts' creators and resolvers (the platform's markets
    reference users), in one statement."""
    wallets = {
        wallet
        for columns in expected
        for wallet in (columns.get("creator_wallet"), columns.get("resolver_wallet"))
        if wallet
    }
    now = utcnow()
    await FIRST_SEEN.execute(session, [(wallet, now) for wallet in sorted(wallets)])


async def reconcile(container: Container, client: ChainClient) -> list[Fix]:
    """Compare every market account with its row and repair the row; returns the fixes."""
    accounts = await market_accounts(client)
    fixes: list[Fix] = []
    notices: list[dict[str, Any]] = []
    touched: set[str] = set()
    async with container.database.session() as session, session.begin():
        await _first_seen(session, [expected_columns(fields) for _address, fields in accounts])
        for address, fields in accounts:
            try:
                market_id = market_id_from_bytes(bytes(fields["market_id"]))
            except ValueError:
                continue
            expected = expected_columns(fields)
            market = await session.get(Market, market_id)
            if market is None:
                session.add(
                    Market.new(
                        id=market_id,
                        on_chain_address=str(address),
                        question=UNKNOWN_QUESTION,
                        created_at=datetime.fromtimestamp(int(fields["created_at"]), UTC),
                        **expected,
                    )
                )
                fixes.append(Fix(market_id, "row", None, "created"))
                touched.add(market_id)
                continue
            for name, value in expected.items():
                current = getattr(market, name)
                if current == value:
                    continue
                fixes.append(Fix(market_id, name, current, value))
                if name == "state":
                    notices.append(
                        {
                            "type": "market_state_change",
                            "marketId": market_id,
                            "oldState": current,
                            "newState": value,
                            "timestamp": utcnow().isoformat(),
                        }
                    )
                setattr(market, name, value)
                touched.add(market_id)
    for fix in fixes:
        log.warning(
            "reconcile repaired drift",
            market=fix.market_id,
            field=fix.field,
            database=fix.database,
            chain=fix.chain,
        )
    if touched:
        async with container.database.session() as session:
            await MarketCache(container.pages).refresh(session, touched)
    for notice in notices:
        await container.bus.publish("markets", notice)
    return fixes


async def run_reconcile(
    container: Container, client: ChainClient, stop: asyncio.Event, interval: float
) -> None:
    while not stop.is_set():
        try:
            await reconcile(container, client)
        except Exception:
            log.exception("reconcile failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
