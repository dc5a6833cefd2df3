"""Periodic repair of database drift from the program's market accounts.

getProgramAccounts (memcmp on the MarketAccount discriminator at offset 0) returns every market
of the program; each decoded account is compared field by field with its `markets` row and the
row is corrected where they differ (a missing row is created, as the MarketCreated handler
would). Every fix is logged and returned; a state fix is published like any state change.

A repair never moves a row back. The snapshot reflects the chain at its RPC context slot S; the
rows reflect the indexer's checkpoint C. They are only compared where both reflect the same
history:

* the database must hold every program transaction up to S: C > S (the stream is in order), or
  no program transaction is newer than C at all (the newest one, read after the snapshot, is at
  or before C). Otherwise the indexer is behind the snapshot: a "repair" now would be applied a
  second time when the indexer catches up, so the round repairs nothing;
* a market with indexed events after S is newer in the database than in the snapshot: skipped;
* each fix is a compare-and-set (the columns must still hold what was compared), so a commit of
  the indexer between the comparison and the write makes that fix a no-op, not a step back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from prometheus_client import Counter
from solders.pubkey import Pubkey
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import market_id_from_bytes
from marketd.chain.client import ChainClient
from marketd.core.container import Container
from marketd.core.events import MarketStateChanged, publish
from marketd.core.jobs import RunReport, run_rounds
from marketd.indexer.bulk import BulkInsert
from marketd.indexer.checkpoint import checkpoint_name, load_checkpoint
from marketd.indexer.handlers import UNKNOWN_QUESTION
from marketd.markets import lifecycle
from marketd.markets.cache import MarketCache
from marketd.markets.columns import COUNTERS
from marketd.markets.lifecycle import Writer
from marketd.models import IndexedEventRow, Market, User, utcnow
from marketd.shared.market_state import MarketState

log = structlog.get_logger(__name__)

MARKET_ACCOUNT = "MarketAccount"
RECONCILE_SKIPPED = Counter(
    "marketd_reconcile_skipped_total",
    "Markets (or whole rounds) reconcile left alone rather than move a row back, by reason.",
    ["reason"],
)


@dataclass(frozen=True)
class Fix:
    market_id: str
    field: str
    database: Any
    chain: Any


def expected_columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The `markets` columns a decoded MarketAccount determines (pure): the integer columns
    (`COUNTERS`, the account's fields of the same names), state, creator and outcomes."""
    columns: dict[str, Any] = {name: int(fields[name]) for name in COUNTERS}
    state = fields["state"]
    columns["state"] = MarketState.from_program_name(state).value
    columns["creator_wallet"] = str(fields["creator"])
    columns["proposed_outcome"] = fields["proposed_outcome"]
    columns["final_outcome"] = fields["final_outcome"]
    columns["is_cancelled"] = bool(fields["is_cancelled"])
    return columns


@dataclass(frozen=True)
class Snapshot:
    slot: int  # the RPC context slot the accounts reflect
    accounts: list[tuple[Pubkey, dict[str, Any]]]


async def market_snapshot(client: ChainClient) -> Snapshot:
    """Every MarketAccount with the RPC context slot they reflect."""
    found = await client.program_accounts(MARKET_ACCOUNT)
    return Snapshot(found.slot, found.accounts)


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


async def newest_program_slot(client: ChainClient) -> int | None:
    response = await client.rpc.get_signatures_for_address(
        client.program_id, limit=1, commitment=client.commitment
    )
    return int(response.value[0].slot) if response.value else None


def database_complete_through(snapshot_slot: int, checkpoint: int, newest: int | None) -> bool:
    """Whether the rows hold every program transaction up to the snapshot's slot (pure)."""
    return checkpoint > snapshot_slot or newest is None or newest <= checkpoint


Race = Callable[[str], Awaitable[None]]
"""A test seam: awaited after the snapshot ("snapshot") and after the comparison ("compared")."""


async def reconcile(
    container: Container, client: ChainClient, *, race: Race | None = None
) -> list[Fix]:
    """Compare every market account with its row and repair the row; returns the fixes."""
    snapshot = await market_snapshot(client)
    newest = await newest_program_slot(client)
    if race is not None:
        await race("snapshot")
    fixes: list[Fix] = []
    published: list[MarketStateChanged] = []
    touched: set[str] = set()
    async with container.database.session() as session, session.begin():
        saved = await load_checkpoint(session, checkpoint_name(str(client.program_id)))
        checkpoint = saved.slot if saved is not None else 0
        if not database_complete_through(snapshot.slot, checkpoint, newest):
            RECONCILE_SKIPPED.labels("indexer_behind").inc()
            log.info(
                "reconcile skipped: the indexer is behind the snapshot",
                snapshot_slot=snapshot.slot,
                checkpoint_slot=checkpoint,
                newest_slot=newest,
            )
            return []
        await _first_seen(
            session, [expected_columns(fields) for _address, fields in snapshot.accounts]
        )
        newer = set(
            (
                await session.scalars(
                    select(IndexedEventRow.market_id)
                    .where(
                        IndexedEventRow.slot > snapshot.slot, IndexedEventRow.market_id.is_not(None)
                    )
                    .distinct()
                )
            ).all()
        )
        planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for address, fields in snapshot.accounts:
            try:
                market_id = market_id_from_bytes(bytes(fields["market_id"]))
            except ValueError:
                continue
            if market_id in newer:
                RECONCILE_SKIPPED.labels("newer_in_database").inc()
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
            seen = {name: getattr(market, name) for name in expected}
            changes = {name: value for name, value in expected.items() if seen[name] != value}
            if changes:
                planned.append((market_id, seen, changes))
        if race is not None:
            await race("compared")
        for market_id, seen, changes in planned:
            change = None
            if "state" in changes:
                # Through the one owner of transitions; an account holds no event time.
                _columns, change = lifecycle.plan(
                    market_id, seen["state"], MarketState(changes["state"]), None, Writer.RECONCILE
                )
            if not await _compare_and_set(session, market_id, seen, changes):
                RECONCILE_SKIPPED.labels("changed_meanwhile").inc()
                continue
            touched.add(market_id)
            for name, value in changes.items():
                fixes.append(Fix(market_id, name, seen[name], value))
            if change is not None:
                published.append(change)
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
    for change in published:
        await publish(container.bus, change)
    return fixes


async def _compare_and_set(
    session: AsyncSession, market_id: str, seen: dict[str, Any], changes: dict[str, Any]
) -> bool:
    """Write `changes` only if the row still holds `seen` (re-checked by the database on the
    newest committed row): False when another writer got there first."""
    table = Market.__table__
    conditions = [table.c.id == market_id]
    for name, value in seen.items():
        column = table.c[name]
        conditions.append(column.is_(None) if value is None else column == value)
    result = await session.execute(
        update(Market).where(*conditions).values(**changes, updated_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


async def run_reconcile(
    container: Container, client: ChainClient, stop: asyncio.Event, interval: float
) -> None:
    async def round_() -> RunReport:
        return RunReport.tally(fixed=len(await reconcile(container, client)))

    await run_rounds("indexer-reconcile", stop, round_, interval)
