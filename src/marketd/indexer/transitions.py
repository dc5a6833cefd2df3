"""Automatic state transitions, from chain time and the GlobalConfig, through the outbox.

* APPROVED markets are activated (`activate_market`) when `INDEXER_AUTO_ACTIVATE` is on;
* RESOLVING markets whose dispute window (`resolution_proposed_at + dispute_period`) is over
  are finalized (`finalize_market`, no tally);
* DISPUTED markets are NOT handled here: the vote aggregator (`votes.aggregator`) decides a
  dispute, by the chain's clock, with the counted votes, the quorum rule and the no-votes
  wait (the program refuses a tally without votes). Enqueuing `resolve_dispute` here too, with
  a raw count, would bypass those rules under the same outbox key.

Exactly once: each intent is enqueued under the outbox's default key `<intent>:<market>`, so
a second sweep adds nothing; the job runs under a leader lock so only one instance sweeps. The
market accounts are read from the chain (its state and timestamps are the truth); the database
only says which markets to look at.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from marketd.chain.actions import Intent
from marketd.chain.client import ChainClient
from marketd.chain.clock import CLOCK_SYSVAR, chain_time
from marketd.chain.outbox import enqueue
from marketd.core.database import Database
from marketd.core.jobs import RunReport, run_rounds
from marketd.models import ChainOutbox, Market
from marketd.shared.market_state import MarketState

log = structlog.get_logger(__name__)

__all__ = ["CLOCK_SYSVAR", "Enqueued", "chain_time", "due_intent", "run_transitions", "sweep"]


@dataclass(frozen=True)
class Enqueued:
    intent: str
    market_id: str


def due_intent(
    state: MarketState, fields: dict[str, int], now: int, dispute_period: int, auto_activate: bool
) -> str | None:
    """Which intent a market in `state` needs at chain time `now` (pure)."""
    if state is MarketState.APPROVED and auto_activate:
        return Intent.ACTIVATE_MARKET.value
    if state is MarketState.RESOLVING and now >= fields["resolution_proposed_at"] + dispute_period:
        return Intent.FINALIZE_MARKET.value
    return None


async def sweep(database: Database, client: ChainClient, *, auto_activate: bool) -> list[Enqueued]:
    """Enqueue every transition that is due now; returns the new outbox rows."""
    config = await client.global_config()
    if config is None:
        return []
    dispute_period = int(config.data["dispute_period"])
    now = await chain_time(client)
    watched = [MarketState.RESOLVING.value]
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
        async with database.session() as session, session.begin():
            existing = await session.scalar(
                select(ChainOutbox.id).where(ChainOutbox.idempotency_key == f"{intent}:{market_id}")
            )
            if existing is None:
                await enqueue(session, intent, market_id, {})
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

    async def round_() -> RunReport:
        done = await sweep(database, client, auto_activate=auto_activate)
        if done and on_enqueued is not None:
            on_enqueued()
        return RunReport.tally(enqueued=len(done))

    await run_rounds("market-transitions", stop, round_, interval)
