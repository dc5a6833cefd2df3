"""Persistence of indexed transactions: dedupe, load, apply the handlers, write, in one go.

`apply_transactions` takes a run of transactions and, in the caller's database transaction:

1. inserts every event into `chain_events` (INSERT … ON CONFLICT DO NOTHING RETURNING), which
   tells which events are new: only those are applied, so a replay changes nothing;
2. loads every row the new events may touch in a handful of Core queries (markets, locked in id
   order, then positions and votes) as plain records (`marketd.indexer.rows`);
3. runs the handlers in chain order on those records (`marketd.indexer.handlers`);
4. writes users (first seen), markets (new ones upserted; for the others only the columns the
   batch changed), positions and on-chain votes (upserts), trades (insert-if-absent on the
   signature), the vote log, and settles relayed trades.

Every write is one multi-row statement per table (`marketd.indexer.bulk`), never a statement
per row and never the ORM's unit of work: the round trips are per batch, not per event, which
is what makes a backfill fast. The upserts and insert-if-absent writes mean a row that appeared
meanwhile (a position or vote written by a concurrent instance, a market registered by the API)
never makes the batch fail.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from solders.pubkey import Pubkey
from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.addresses import market_address
from marketd.chain.stream import TransactionEvents
from marketd.core.database import upsert_insert
from marketd.core.events import DomainEvent, VoteCast
from marketd.indexer import rollups
from marketd.indexer.bulk import BulkInsert, BulkUpdate, member_of
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.handlers import (
    UNKNOWN_QUESTION,
    IndexedEvent,
    Workspace,
    apply,
    normalise,
)
from marketd.indexer.rows import (
    MARKET_CHAIN_COLUMNS,
    MARKET_COLUMNS,
    POSITION_COLUMNS,
    POSITION_FIELDS,
    TRADE_COLUMNS,
    VOTE_COLUMNS,
    VOTE_FIELDS,
    BallotRow,
    MarketRow,
    PositionRow,
)
from marketd.markets import lifecycle
from marketd.models import (
    DisputeVote,
    IndexedEventRow,
    Market,
    Position,
    ProposalVote,
    Trade,
    TradeSubmission,
    User,
    VoteLog,
    utcnow,
)
from marketd.shared.market_state import DEFAULT_CATEGORY, MarketState
from marketd.trades.status import SubmissionStatus

MARKETS = cast(Table, Market.__table__)
POSITIONS_TABLE = cast(Table, Position.__table__)
SUBMISSIONS = cast(Table, TradeSubmission.__table__)
VOTE_TABLES = {
    "proposal": cast(Table, ProposalVote.__table__),
    "dispute": cast(Table, DisputeVote.__table__),
}
# Events whose "user" owns a position the event changes.
POSITION_EVENTS = frozenset({"SharesBought", "SharesSold", "WinningsClaimed"})
VOTE_EVENTS = {"ProposalVoteSubmitted": "proposal", "DisputeVoteSubmitted": "dispute"}

CHAIN_EVENTS = BulkInsert(
    cast(Table, IndexedEventRow.__table__),
    (
        "signature",
        "event_index",
        "slot",
        "name",
        "market_id",
        "data",
        "block_time",
        "commitment",
        "created_at",
    ),
    conflict=("signature", "event_index"),
    returning=("signature", "event_index"),
)
USERS_TABLE = cast(Table, User.__table__)
USERS = BulkInsert(USERS_TABLE, ("wallet", "created_at", "last_seen_at"), conflict=("wallet",))
POSITION_COUNTERS = (
    "shares_yes",
    "shares_no",
    "total_invested",
    "trades_count",
    "realized_pnl",
    "updated_at",
    "has_claimed",
    "claimed_amount",
    "first_trade_at",
    "last_trade_at",
)
# Read back as the indexer counts them: the platform's rows may hold NULL where it defaults.
POSITION_NULLS = {"trades_count": 0, "realized_pnl": 0, "has_claimed": False}
# New positions: upserted, so a row that appeared meanwhile never fails the batch. Loaded ones
# (their market rows are locked by the batch) are updated by id, which is cheaper.
NEW_POSITIONS = BulkInsert(
    POSITIONS_TABLE,
    POSITION_COLUMNS,
    conflict=("market_id", "user_wallet"),
    update=POSITION_COUNTERS,
    fresh_id="id",
)
STORED_POSITIONS = BulkUpdate(POSITIONS_TABLE, "id", POSITION_COUNTERS)
VOTES = {
    kind: BulkInsert(
        table,
        VOTE_COLUMNS,
        conflict=("market_id", "user_wallet"),
        update=("vote", "voted_at", "tx_signature"),
        fresh_id="id",
    )
    for kind, table in VOTE_TABLES.items()
}
TRADES = BulkInsert(
    cast(Table, Trade.__table__), TRADE_COLUMNS, conflict=("tx_signature",), fresh_id="id"
)
VOTE_LOG = BulkInsert(
    cast(Table, VoteLog.__table__),
    ("kind", "market_id", "user_wallet", "vote", "source", "tx_signature", "recorded_at"),
    fresh_id="id",
)


@dataclass
class Applied:
    """What one `apply_transactions` call did; its events are published after the commit."""

    new_events: int = 0
    replayed_events: int = 0
    events: list[DomainEvent] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    reread: set[str] = field(default_factory=set)


def indexed_events(batch: TransactionEvents) -> list[IndexedEvent]:
    """A successful transaction's events in normalised form (a failed one has none)."""
    block_time = (
        datetime.fromtimestamp(batch.block_time, UTC) if batch.block_time is not None else None
    )
    return [
        IndexedEvent(
            batch.signature, event.index, batch.slot, block_time, event.name, normalise(event.data)
        )
        for event in batch.events
    ]


# ------------------------------------------------------------------------------ recording
async def market_ids_by_address(
    session: AsyncSession, events: Sequence[IndexedEvent], program_id: Pubkey
) -> dict[str, str]:
    """Market ids of the events that name their market by address only (WinningsClaimed).

    Stored with the event, so a market rebuilt from its events (fork rollback) replays them."""
    wanted = {e.market_key for e in events if e.market_id is None and e.market_key is not None}
    if not wanted:
        return {}
    found = {
        str(market_address(program_id, e.market_id)): e.market_id
        for e in events
        if e.name == "MarketCreated" and e.market_id is not None
    }
    rows = await session.execute(
        select(MARKETS.c.on_chain_address, MARKETS.c.id).where(
            member_of(session, MARKETS.c.on_chain_address, wanted - set(found))
        )
    )
    found.update({address: market_id for address, market_id in rows.all()})
    return found


async def record_events(
    session: AsyncSession,
    events: Sequence[IndexedEvent],
    commitment: dict[str, str],
    market_ids: dict[str, str] | None = None,
) -> list[IndexedEvent]:
    """Insert-if-absent into chain_events; the events that were not there yet, in order.

    An event given twice in one call is new at most once. `market_ids` maps market addresses
    to ids for events that name their market by address (see `market_ids_by_address`)."""
    if not events:
        return []
    by_address = market_ids or {}
    now = utcnow()
    rows = [
        (
            e.signature,
            e.index,
            e.slot,
            e.name,
            e.market_id if e.market_id is not None else by_address.get(e.market_key or ""),
            dict(e.data),
            e.block_time,
            commitment.get(e.signature, "confirmed"),
            now,
        )
        for e in events
    ]
    inserted = {
        (signature, index) for signature, index in await CHAIN_EVENTS.execute(session, rows)
    }
    fresh = []
    for event in events:
        key = (event.signature, event.index)
        if key in inserted:
            inserted.discard(key)
            fresh.append(event)
    return fresh


# ------------------------------------------------------------------------------ loading
async def load_markets(
    session: AsyncSession, ids: Collection[str], addresses: Collection[str] = ()
) -> list[MarketRow]:
    """The markets with any of the ids or on-chain addresses, as plain records, locked.

    FOR UPDATE (PostgreSQL), in id order: the batch's writes to these markets and to their
    positions and votes cannot interleave with another writer's (a fork rebuild, a vote tally,
    an off-chain vote, which share-locks its market), and ordered locking cannot deadlock."""
    if not ids and not addresses:
        return []
    query = (
        select(*(MARKETS.c[name] for name in MARKET_COLUMNS))
        .where(
            or_(
                member_of(session, MARKETS.c.id, ids),
                member_of(session, MARKETS.c.on_chain_address, addresses),
            )
        )
        .order_by(MARKETS.c.id)
        .with_for_update()
    )
    return [MarketRow(*row) for row in (await session.execute(query)).all()]


async def _pairs(
    session: AsyncSession, table: Table, market_ids: Collection[str], wallets: Collection[str]
) -> list[Any]:
    """Rows of a (market, wallet)-keyed table for any of the markets and wallets."""
    if table is POSITIONS_TABLE:
        picked = [
            func.coalesce(table.c[name], POSITION_NULLS[name]).label(name)
            if name in POSITION_NULLS
            else table.c[name]
            for name in POSITION_FIELDS
        ]
    else:
        picked = [table.c[name] for name in VOTE_FIELDS]
    query = select(*picked).where(
        member_of(session, table.c.market_id, market_ids),
        member_of(session, table.c.user_wallet, wallets),
    )
    return list((await session.execute(query)).all())


def _wallets(events: Iterable[IndexedEvent], names: Collection[str]) -> set[str]:
    return {
        e.data["user"] for e in events if e.name in names and isinstance(e.data.get("user"), str)
    }


async def load_workspace(
    session: AsyncSession,
    events: Sequence[IndexedEvent],
    program_id: Pubkey,
    fees: FeeSchedule,
    markets: Sequence[MarketRow] = (),
) -> Workspace:
    """Every row `events` may touch, loaded in a few queries (`markets`: loaded and locked
    already by the caller)."""
    ws = Workspace(program_id=program_id, fees=fees)
    for market in markets:
        ws.markets[market.id] = market
    ids = {e.market_id for e in events if e.market_id is not None} - set(ws.markets)
    keys = {e.market_key for e in events if e.market_key is not None} - {
        m.on_chain_address for m in markets
    }
    for market in await load_markets(session, ids, keys):
        ws.markets[market.id] = market
    ws.originals = {market_id: market.values() for market_id, market in ws.markets.items()}
    market_ids = set(ws.markets)
    if not market_ids:
        return ws
    if wallets := _wallets(events, POSITION_EVENTS):
        for row in await _pairs(session, POSITIONS_TABLE, market_ids, wallets):
            key = (row.market_id, row.user_wallet)
            ws.positions[key] = PositionRow(*row)
            ws.stored_positions.add(key)
    for kind, votes in (("proposal", ws.proposal_votes), ("dispute", ws.dispute_votes)):
        names = {name for name, of in VOTE_EVENTS.items() if of == kind}
        if wallets := _wallets(events, names):
            for row in await _pairs(session, VOTE_TABLES[kind], market_ids, wallets):
                votes[(row.market_id, row.user_wallet)] = BallotRow(*row)
    return ws


# ------------------------------------------------------------------------------ writing
@functools.cache
def _market_update(columns: tuple[str, ...]) -> BulkUpdate:
    return BulkUpdate(MARKETS, "id", columns)


async def _write_markets(session: AsyncSession, ws: Workspace) -> None:
    if ws.new_markets:
        insert = upsert_insert(session)(MARKETS)
        # Registered (API) or created (reconcile) meanwhile: the chain's values win, the text stays.
        statement = insert.on_conflict_do_update(
            index_elements=["id"],
            set_={name: insert.excluded[name] for name in MARKET_CHAIN_COLUMNS},
        )
        new = [
            ws.markets[market_id].as_dict()
            | {
                "question": UNKNOWN_QUESTION,
                "tags": [],
                "description": None,
                "category": DEFAULT_CATEGORY,
            }
            for market_id in sorted(ws.new_markets)
        ]
        await session.execute(statement, new)
    # The other writers of `markets` (vote tallies, reconcile) keep the columns we did not change.
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for market_id, market in ws.markets.items():
        original = ws.originals.get(market_id)
        if original is None:
            continue  # new (inserted above)
        if changes := market.changes(original):
            changes.setdefault("updated_at", utcnow())  # as the column's onupdate would
            columns = tuple(sorted(changes))
            groups.setdefault(columns, []).append((market_id, *(changes[c] for c in columns)))
    for columns, rows in groups.items():
        await _market_update(columns).execute(session, rows)


async def write_workspace(session: AsyncSession, ws: Workspace) -> None:
    """Persist what the handlers did: users, markets first (foreign keys), then the rest."""
    if ws.users:
        await USERS.execute(session, [(wallet, at, at) for wallet, at in ws.users.items()])
    await _write_markets(session, ws)
    stored, new = [], []
    for key, position in ws.changed_positions.items():
        if key in ws.stored_positions:
            stored.append((position.id, *(getattr(position, c) for c in POSITION_COUNTERS)))
        else:
            new.append(position.values())
    if stored:
        await STORED_POSITIONS.execute(session, stored)
    if new:
        await NEW_POSITIONS.execute(session, new)
    for kind, statement in VOTES.items():
        rows = [vote.values() for (of, _m, _w), vote in ws.changed_votes.items() if of == kind]
        if rows:
            await statement.execute(session, rows)
    if ws.trades:
        await TRADES.execute(session, ws.trades)
        await _count_user_trades(session, {trade.user_wallet for trade in ws.trades})
    if ws.vote_log:
        await VOTE_LOG.execute(
            session,
            [
                (
                    entry["kind"],
                    entry["market_id"],
                    entry["user_wallet"],
                    entry["vote"],
                    entry["source"],
                    entry["tx_signature"],
                    entry["recorded_at"],
                )
                for entry in ws.vote_log
            ],
        )


async def _roll_up(session: AsyncSession, ws: Workspace) -> None:
    """The rollups of the markets the batch traded in (`marketd.indexer.rollups`)."""
    trade_times: dict[str, list[datetime]] = {}
    for trade in ws.trades:
        trade_times.setdefault(trade.market_id, []).append(trade.block_time)
    if trade_times:
        await rollups.after_batch(session, trade_times)


async def _count_user_trades(session: AsyncSession, wallets: Collection[str]) -> None:
    """The platform's `users.total_trades` and `total_volume`, recounted from the trades table
    (so a market rebuilt from its events after a fork cannot count a trade twice)."""
    trades = TRADES.table
    mine = trades.c.user_wallet == USERS_TABLE.c.wallet
    await session.execute(
        update(USERS_TABLE)
        .where(member_of(session, USERS_TABLE.c.wallet, wallets))
        .values(
            total_trades=select(func.count()).where(mine).scalar_subquery(),
            total_volume=select(func.coalesce(func.sum(trades.c.cost), 0))
            .where(mine)
            .scalar_subquery(),
        )
    )


async def _vote_counts(session: AsyncSession, kind: str, market_id: str) -> tuple[int, int]:
    table = VOTE_TABLES[kind]
    rows = await session.execute(
        select(table.c.vote, func.count())
        .where(table.c.market_id == market_id)
        .group_by(table.c.vote)
    )
    counts = {bool(vote): int(count) for vote, count in rows.all()}
    return counts.get(True, 0), counts.get(False, 0)


async def with_tallies(session: AsyncSession, events: Sequence[DomainEvent]) -> list[DomainEvent]:
    """The batch's events, each vote with the tally after the batch: likes (yes) and
    dislikes (no), counted once per market and kind."""
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    out: list[DomainEvent] = []
    for event in events:
        if isinstance(event, VoteCast):
            key = (event.kind, event.market_id)
            if key not in counts:
                counts[key] = await _vote_counts(session, *key)
            likes, dislikes = counts[key]
            event = replace(event, likes=likes, dislikes=dislikes)
        out.append(event)
    return out


async def settle_submissions(session: AsyncSession, batches: Sequence[TransactionEvents]) -> None:
    """Relayed trades: pending -> confirmed when indexed, failed when the chain failed them."""
    now = utcnow()
    ok = [b.signature for b in batches if b.err is None]
    if ok:
        await session.execute(
            update(SUBMISSIONS)
            .where(
                member_of(session, SUBMISSIONS.c.signature, ok),
                SUBMISSIONS.c.status == SubmissionStatus.PENDING,
            )
            .values(status=SubmissionStatus.CONFIRMED, updated_at=now)
        )
    failed = [
        {"target_signature": b.signature, "failure": str(b.err)}
        for b in batches
        if b.err is not None
    ]
    if failed:
        await session.execute(
            update(SUBMISSIONS)
            .where(
                SUBMISSIONS.c.signature == bindparam("target_signature"),
                SUBMISSIONS.c.status == SubmissionStatus.PENDING,
            )
            .values(status=SubmissionStatus.FAILED, error=bindparam("failure"), updated_at=now),
            failed,
        )


async def apply_transactions(
    session: AsyncSession,
    batches: Sequence[TransactionEvents],
    program_id: Pubkey,
    fees: FeeSchedule,
) -> Applied:
    """Index `batches` (in chain order) inside the session's transaction; see the module doc."""
    events = [event for batch in batches for event in indexed_events(batch)]
    commitment = {batch.signature: batch.commitment for batch in batches}
    by_address = await market_ids_by_address(session, events, program_id)
    fresh = await record_events(session, events, commitment, by_address)
    result = Applied(new_events=len(fresh), replayed_events=len(events) - len(fresh), fees=fees)
    if fresh:
        ws = await load_workspace(session, fresh, program_id, fees)
        for event in fresh:
            apply(ws, event)
        await write_workspace(session, ws)
        await _roll_up(session, ws)
        result.events = await with_tallies(session, ws.events)
        result.touched, result.fees = ws.touched, ws.fees
        result.reread = ws.reread
    await settle_submissions(session, batches)
    return result


# ------------------------------------------------------------------------------ rebuilding
def reset_market(market: MarketRow) -> None:
    """Back to the state create_market leaves on chain; the events then replay onto it."""
    market.state = MarketState.PROPOSED.value
    market.current_liquidity = market.initial_liquidity
    market.shares_yes = market.shares_no = market.total_volume = 0
    market.current_price_yes = market.current_price_no = Decimal("0.5")
    market.proposal_likes = market.proposal_dislikes = 0
    market.dispute_agree = market.dispute_disagree = 0
    market.proposed_outcome = market.final_outcome = None
    market.approved_at = market.activated_at = None
    market.resolution_proposed_at = market.finalized_at = None
    market.is_cancelled = False


async def _stored_events(session: AsyncSession, market_id: str) -> list[IndexedEvent]:
    rows = await session.execute(
        select(
            IndexedEventRow.signature,
            IndexedEventRow.event_index,
            IndexedEventRow.slot,
            IndexedEventRow.block_time,
            IndexedEventRow.name,
            IndexedEventRow.data,
        )
        .where(IndexedEventRow.market_id == market_id)
        .order_by(IndexedEventRow.slot, IndexedEventRow.created_at, IndexedEventRow.event_index)
    )
    return [IndexedEvent(*row) for row in rows.all()]


async def rebuild_markets(
    session: AsyncSession, market_ids: Iterable[str], program_id: Pubkey, fees: FeeSchedule
) -> list[DomainEvent]:
    """Recompute markets from their stored events (after events were removed by a fork).

    Positions, trades and on-chain votes of the markets are derived rows: they are deleted and
    rebuilt by the same handlers. Returns one state change per market whose state moved.
    """
    changes: list[DomainEvent] = []
    for market_id in sorted(set(market_ids)):
        loaded = await load_markets(session, [market_id])  # locked first, see load_markets
        if not loaded:
            continue
        market = loaded[0]
        original, before = market.values(), market.state
        await session.execute(
            delete(POSITIONS_TABLE).where(POSITIONS_TABLE.c.market_id == market_id)
        )
        await session.execute(delete(TRADES.table).where(TRADES.table.c.market_id == market_id))
        for table in VOTE_TABLES.values():
            await session.execute(
                delete(table).where(
                    table.c.market_id == market_id, table.c.tx_signature.isnot(None)
                )
            )
        reset_market(market)
        events = await _stored_events(session, market_id)
        ws = await load_workspace(session, events, program_id, fees, markets=[market])
        ws.originals[market_id] = original  # write every column the rebuild changed
        # A transaction that traded in another market too keeps its trade there under its
        # plain signature; this market's trade of it then gets the suffixed one, as before.
        signatures = {e.signature for e in events}
        if signatures:
            ws.trade_signatures.update(
                (
                    await session.scalars(
                        select(Trade.tx_signature).where(
                            member_of(session, Trade.tx_signature, signatures)
                        )
                    )
                ).all()
            )
        for event in events:
            apply(ws, event)
        ws.vote_log.clear()  # the log already holds these votes
        await write_workspace(session, ws)
        await rollups.rebuild(session, market_id)
        if (change := lifecycle.rebuilt(market_id, before, market.state)) is not None:
            changes.append(change)
    return changes
