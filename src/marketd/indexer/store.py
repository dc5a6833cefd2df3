"""Persistence of indexed transactions: dedupe, load, apply the handlers, write, in one go.

`apply_transactions` takes a run of transactions and, in the caller's database transaction:

1. inserts every event into `chain_events` (INSERT … ON CONFLICT DO NOTHING RETURNING), which
   tells which events are new: only those are applied, so a replay changes nothing;
2. loads every row the new events may touch in a handful of queries (markets, positions, votes);
3. runs the handlers in chain order on those rows (`marketd.indexer.handlers`);
4. writes users (first seen), new and changed rows, the vote log, settles relayed trades.

Batching many transactions into one call is what makes backfill fast: the round trips are per
batch, not per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy import insert as insert_
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.stream import TransactionEvents
from marketd.core.database import upsert_insert
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.handlers import IndexedEvent, Notice, Workspace, apply, normalise
from marketd.markets.rules import MarketState
from marketd.models import (
    ChainEvent,
    DisputeVote,
    Market,
    Position,
    ProposalVote,
    Trade,
    TradeSubmission,
    User,
    VoteLog,
    utcnow,
)

INSERT_CHUNK = 1000  # rows per multi-row INSERT (well under the bind-parameter limits)


@dataclass
class Applied:
    """What one `apply_transactions` call did; notices go out after the commit."""

    new_events: int = 0
    replayed_events: int = 0
    notices: list[Notice] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    fees: FeeSchedule = field(default_factory=FeeSchedule)


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


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), INSERT_CHUNK):
        yield rows[start : start + INSERT_CHUNK]


async def record_events(
    session: AsyncSession, events: Sequence[IndexedEvent], commitment: dict[str, str]
) -> list[IndexedEvent]:
    """Insert-if-absent into chain_events; the events that were not there yet, in order."""
    if not events:
        return []
    insert = upsert_insert(session)
    now = utcnow()
    rows = [
        {
            "signature": e.signature,
            "event_index": e.index,
            "slot": e.slot,
            "name": e.name,
            "market_id": e.market_id,
            "data": dict(e.data),
            "block_time": e.block_time,
            "commitment": commitment.get(e.signature, "confirmed"),
            "created_at": now,
        }
        for e in events
    ]
    statement = (
        insert(ChainEvent)
        .on_conflict_do_nothing(index_elements=["signature", "event_index"])
        .returning(ChainEvent.signature, ChainEvent.event_index)
    )
    # executemany with RETURNING: SQLAlchemy batches it into multi-row statements it compiles
    # once ("insertmanyvalues"), much cheaper than building one huge VALUES list per call.
    result = await session.execute(statement, rows)
    inserted = {(signature, index) for signature, index in result.all()}
    return [e for e in events if (e.signature, e.index) in inserted]


async def _pairs(
    session: AsyncSession, table: Any, market_ids: set[str], wallets: set[str]
) -> list[Any]:
    """Rows of a (market, wallet)-keyed table for any of the markets and wallets."""
    query = select(table).where(table.market_id.in_(market_ids), table.user_wallet.in_(wallets))
    return list((await session.scalars(query)).all())


async def load_workspace(
    session: AsyncSession, events: Sequence[IndexedEvent], program_id: Pubkey, fees: FeeSchedule
) -> Workspace:
    """Every row `events` may touch, loaded in a few queries."""
    ws = Workspace(program_id=program_id, fees=fees)
    ids = {e.market_id for e in events if e.market_id is not None}
    keys = {e.market_key for e in events if e.market_key is not None}
    if not ids and not keys:
        return ws
    query = select(Market).where(or_(Market.id.in_(ids), Market.on_chain_address.in_(keys)))
    for market in (await session.scalars(query)).all():
        ws.markets[market.id] = market
    wallets = {e.data["user"] for e in events if isinstance(e.data.get("user"), str)}
    market_ids = set(ws.markets)
    if wallets and market_ids:
        for row in await _pairs(session, Position, market_ids, wallets):
            ws.positions[(row.market_id, row.user_wallet)] = row
        for row in await _pairs(session, ProposalVote, market_ids, wallets):
            ws.proposal_votes[(row.market_id, row.user_wallet)] = row
        for row in await _pairs(session, DisputeVote, market_ids, wallets):
            ws.dispute_votes[(row.market_id, row.user_wallet)] = row
    return ws


async def write_workspace(session: AsyncSession, ws: Workspace) -> None:
    """Persist what the handlers did: users, new rows (markets first), the vote log."""
    insert = upsert_insert(session)
    users = [
        {"wallet": wallet, "created_at": at, "last_seen_at": at} for wallet, at in ws.users.items()
    ]
    if users:
        await session.execute(insert(User).on_conflict_do_nothing(index_elements=["wallet"]), users)
    new_markets = [row for row in ws.new_rows if isinstance(row, Market)]
    session.add_all(new_markets)
    await session.flush()
    session.add_all([row for row in ws.new_rows if not isinstance(row, Market)])
    await session.flush()
    if ws.vote_log:
        await session.execute(insert_(VoteLog), ws.vote_log)


async def _vote_counts(session: AsyncSession, kind: str, market_id: str) -> tuple[int, int]:
    table = ProposalVote if kind == "proposal" else DisputeVote
    rows = await session.execute(
        select(table.vote, func.count()).where(table.market_id == market_id).group_by(table.vote)
    )
    counts = {bool(vote): int(count) for vote, count in rows.all()}
    return counts.get(True, 0), counts.get(False, 0)


async def complete_vote_notices(session: AsyncSession, notices: Sequence[Notice]) -> None:
    """Votes carry the tally after the batch: likes (yes) and dislikes (no)."""
    cache: dict[tuple[str, str], tuple[int, int]] = {}
    for notice in notices:
        if notice.topic != "votes":
            continue
        key = (notice.payload["voteType"], notice.payload["marketId"])
        if key not in cache:
            cache[key] = await _vote_counts(session, *key)
        notice.payload["likes"], notice.payload["dislikes"] = cache[key]


async def settle_submissions(session: AsyncSession, batches: Sequence[TransactionEvents]) -> None:
    """Relayed trades: pending -> confirmed when indexed, failed when the chain failed them."""
    ok = [b.signature for b in batches if b.err is None]
    if ok:
        await session.execute(
            update(TradeSubmission)
            .where(TradeSubmission.signature.in_(ok), TradeSubmission.status == "pending")
            .values(status="confirmed", updated_at=utcnow())
        )
    for batch in batches:
        if batch.err is not None:
            await session.execute(
                update(TradeSubmission)
                .where(
                    TradeSubmission.signature == batch.signature,
                    TradeSubmission.status == "pending",
                )
                .values(status="failed", error=str(batch.err), updated_at=utcnow())
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
    fresh = await record_events(session, events, commitment)
    result = Applied(new_events=len(fresh), replayed_events=len(events) - len(fresh), fees=fees)
    if fresh:
        ws = await load_workspace(session, fresh, program_id, fees)
        for event in fresh:
            apply(ws, event)
        await write_workspace(session, ws)
        await complete_vote_notices(session, ws.notices)
        result.notices, result.touched, result.fees = ws.notices, ws.touched, ws.fees
    await settle_submissions(session, batches)
    return result


# ------------------------------------------------------------------------------ rebuilding
def reset_market(market: Market) -> None:
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


async def rebuild_markets(
    session: AsyncSession, market_ids: Iterable[str], program_id: Pubkey, fees: FeeSchedule
) -> list[Notice]:
    """Recompute markets from their stored events (after events were removed by a fork).

    Positions, trades and on-chain votes of the markets are derived rows: they are deleted and
    rebuilt by the same handlers. Returns one state-change notice per market whose state moved.
    """
    notices: list[Notice] = []
    for market_id in sorted(set(market_ids)):
        market = await session.get(Market, market_id)
        if market is None:
            continue
        before = market.state
        await session.execute(delete(Position).where(Position.market_id == market_id))
        await session.execute(delete(Trade).where(Trade.market_id == market_id))
        for vote_table in (ProposalVote, DisputeVote):
            await session.execute(
                delete(vote_table).where(
                    vote_table.market_id == market_id, vote_table.tx_signature.is_not(None)
                )
            )
        await session.flush()
        reset_market(market)
        rows = await session.scalars(
            select(ChainEvent)
            .where(ChainEvent.market_id == market_id)
            .order_by(ChainEvent.slot, ChainEvent.created_at, ChainEvent.event_index)
        )
        events = [
            IndexedEvent(r.signature, r.event_index, r.slot, r.block_time, r.name, r.data)
            for r in rows.all()
        ]
        ws = await load_workspace(session, events, program_id, fees)
        ws.markets[market_id] = market
        for event in events:
            apply(ws, event)
        ws.vote_log.clear()  # the log already holds these votes
        await write_workspace(session, ws)
        if market.state != before:
            notices.append(
                Notice(
                    "markets",
                    {
                        "type": "market_state_change",
                        "marketId": market_id,
                        "oldState": before,
                        "newState": market.state,
                        "timestamp": utcnow().isoformat(),
                    },
                )
            )
    return notices
