"""Automatic state transitions, from chain time and the GlobalConfig, through the outbox.

* APPROVED markets are activated (`activate_market`) when `INDEXER_AUTO_ACTIVATE` is on;
* RESOLVING markets whose dispute window (`resolution_proposed_at + dispute_period`) is over
  are finalized (`finalize_market`, no tally);
* DISPUTED markets whose dispute vote (`dispute_initiated_at + dispute_period`) is over get
  `resolve_dispute` with the counted dispute votes.

Exactly once: each intent is enqueued under the outbox's default key `<intent>:<market>`, the
same key the dispute aggregator uses, so a second sweep (or the aggregator) adds nothing; the
job runs under a leader lock so only one instance sweeps. The market accounts are read from the
chain (its state and timestamps are the truth); the database only says which markets to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from solders.pubkey import Pubkey
from sqlalchemy import func, select

from marketd.chain.actions import Intent
from marketd.chain.client import ChainClient, OnChainState
from marketd.chain.outbox import enqueue
from marketd.core.database import Database
from marketd.markets.rules import MarketState
from marketd.models import ChainOutbox, DisputeVote, Market

log = structlog.get_logger(__name__)

CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
_CLOCK_UNIX_TIMESTAMP = slice(32, 40)  # slot, epoch_start_timestamp, epoch, leader_epoch, unix


@dataclass(frozen=True)
class Enqueued:
    intent: str
    market_id: str


async def chain_time(client: ChainClient) -> int:
    """The cluster's unix time (the Clock sysvar), which the program's checks use."""
    data = await client.account_data(CLOCK_SYSVAR)
    if data is None or len(data) < 40:
        raise RuntimeError("the Clock sysvar is not readable")
    return int.from_bytes(data[_CLOCK_UNIX_TIMESTAMP], "little", signed=True)


def due_intent(
    state: OnChainState, fields: dict[str, int], now: int, dispute_period: int, auto_activate: bool
) -> str | None:
    """Which intent a market in `state` needs at chain time `now` (pure)."""
    if state is OnChainState.APPROVED and auto_activate:
        return Intent.ACTIVATE_MARKET.value
    if state is OnChainState.RESOLVING and now >= fields["resolution_proposed_at"] + dispute_period:
        return Intent.FINALIZE_MARKET.value
    if state is OnChainState.DISPUTED and now >= fields["dispute_initiated_at"] + dispute_period:
        return Intent.RESOLVE_DISPUTE.value
    return None


async def _dispute_tally(database: Database, market_id: str) -> dict[str, int]:
    async with database.session() as session:
        rows = await session.execute(
            select(DisputeVote.vote, func.count())
            .where(DisputeVote.market_id == market_id)
            .group_by(DisputeVote.vote)
        )
        counts = {bool(vote): int(count) for vote, count in rows.all()}
    return {"agrees": counts.get(True, 0), "disagrees": counts.get(False, 0)}


async def sweep(database: Database, client: ChainClient, *, auto_activate: bool) -> list[Enqueued]:
    """Enqueue every transition that is due now; returns the new outbox rows."""
    config = await client.global_config()
    if config is None:
        return []
    dispute_period = int(config.data["dispute_period"])
    now = await chain_time(client)
    watched = [MarketState.RESOLVING.value, MarketState.DISPUTED.value]
    if auto_activate:
        watched.append(MarketState.APPROVED.value)
    async with database.session() as session:
        ids = list(
            (await session.scalars(select(Market.id).where(Market.state.in_(watched)))).all()
        )
    done: list[Enqueued] = []
    for market_id in sorted(ids):
        account = await client.market(market_id)
        if account is None:
            continue
        intent = due_intent(account.state, account.data, now, dispute_period, auto_activate)
        if intent is None:
            continue
        arguments = (
            await _dispute_tally(database, market_id)
            if intent == Intent.RESOLVE_DISPUTE.value
            else {}
        )
        async with database.session() as session, session.begin():
            existing = await session.scalar(
                select(ChainOutbox.id).where(ChainOutbox.idempotency_key == f"{intent}:{market_id}")
            )
            if existing is None:
                await enqueue(session, intent, market_id, arguments)
                done.append(Enqueued(intent, market_id))
    if done:
        log.info(
            "automatic transitions enqueued", transitions=[(e.intent, e.market_id) for e in done]
        )
    return done


async def run_transitions(
    database: Database,
    client: ChainClient,
    stop: asyncio.Event,
    *,
    auto_activate: bool,
    interval: float,
    on_enqueued: Callable[[], None] | None = None,
) -> None:
    """Sweep every `interval` seconds until `stop`; errors are logged, the loop goes on."""
    while not stop.is_set():
        try:
            done = await sweep(database, client, auto_activate=auto_activate)
            if done and on_enqueued is not None:
                on_enqueued()
        except Exception:
            log.exception("transition sweep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
