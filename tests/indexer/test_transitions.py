"""Automatic transitions from chain time: what a sweep enqueues, once, and how the loop copes.

The markets come from indexed MarketCreated events; the chain (config, clock, market accounts)
is a fake with exactly the reads `sweep` makes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import apply_transactions
from marketd.indexer.transitions import CLOCK_SYSVAR, Enqueued, chain_time, run_transitions, sweep
from marketd.models import ChainOutbox
from marketd.shared.market_state import MarketState

from ..helpers.indexer import PROGRAM_ID, T0, Tape

NOW = T0 + 1000
PERIOD = 100


class FakeChain:
    program_id = PROGRAM_ID

    def __init__(self, accounts: dict[str, Any], *, configured: bool = True) -> None:
        self.accounts = accounts
        self.configured = configured
        self.clock: bytes | None = bytes(32) + NOW.to_bytes(8, "little", signed=True)
        self.failures: list[Exception] = []

    async def global_config(self) -> Any:
        if self.failures:
            raise self.failures.pop(0)
        return SimpleNamespace(data={"dispute_period": PERIOD}) if self.configured else None

    async def account_data(self, address: Any) -> bytes | None:
        assert address == CLOCK_SYSVAR
        return self.clock

    async def market(self, market_id: str) -> Any:
        return self.accounts.get(market_id)


def account(state: MarketState, **fields: int) -> Any:
    return SimpleNamespace(state=state, data=fields)


async def markets(api: Any, states: dict[str, int], dispute_votes: dict[str, bool]) -> list[str]:
    """Index one market per entry (name -> program state code); returns their ids."""
    tapes = {name: Tape() for name in states}
    batches = []
    for name, code in states.items():
        tape = tapes[name]
        data = {
            "market_id": tape.mid(),
            "creator": str(tape.wallet()),
            "b_parameter": 1,
            "state": code,
            "timestamp": T0,
        }
        batches.append(tape.tx(("MarketCreated", data)))
    for wallet, vote in dispute_votes.items():
        disputed = tapes["disputed"]
        data = {"market_id": disputed.mid(), "user": wallet, "vote": vote, "timestamp": T0}
        batches.append(disputed.tx(("DisputeVoteSubmitted", data)))
    async with api.container.database.session() as session, session.begin():
        await apply_transactions(session, batches, PROGRAM_ID, FeeSchedule())
    return [tapes[name].market_id for name in states]


async def test_a_sweep_enqueues_each_due_transition_once(api):
    approved, resolving, early, disputed, _gone, active = await markets(
        api,
        {"approved": 1, "resolving": 3, "early": 3, "disputed": 4, "gone": 3, "active": 2},
        {"w1": True, "w2": True, "w3": False},
    )
    chain = FakeChain(
        {
            approved: account(MarketState.APPROVED),
            resolving: account(MarketState.RESOLVING, resolution_proposed_at=NOW - PERIOD),
            early: account(MarketState.RESOLVING, resolution_proposed_at=NOW - PERIOD + 1),
            disputed: account(MarketState.DISPUTED, dispute_initiated_at=NOW - PERIOD),
            active: account(MarketState.ACTIVE),
        }
    )
    done = await sweep(api.container.database, chain, auto_activate=True)  # type: ignore[arg-type]
    assert sorted(done, key=lambda e: e.intent) == [
        Enqueued("activate_market", approved),
        Enqueued("finalize_market", resolving),
    ]  # the disputed market is the vote aggregator's (quorum, no-votes wait, chain time)
    assert await sweep(api.container.database, chain, auto_activate=True) == []  # type: ignore[arg-type]
    async with api.container.database.session() as session:
        rows = {r.idempotency_key: r for r in (await session.scalars(select(ChainOutbox))).all()}
    assert set(rows) == {
        f"activate_market:{approved}",
        f"finalize_market:{resolving}",
    }

    # Without auto-activation APPROVED markets are not even looked at.
    looked: list[str] = []
    original = chain.market

    async def spy(market_id: str) -> Any:
        looked.append(market_id)
        return await original(market_id)

    chain.market = spy  # type: ignore[method-assign]
    assert await sweep(api.container.database, chain, auto_activate=False) == []  # type: ignore[arg-type]
    assert approved not in looked and resolving in looked and disputed not in looked


async def test_nothing_is_swept_before_the_global_config_exists_and_the_clock_must_be_readable(api):
    (resolving,) = await markets(api, {"resolving": 3}, {})
    chain = FakeChain({resolving: account(MarketState.RESOLVING, resolution_proposed_at=0)})
    chain.configured = False
    assert await sweep(api.container.database, chain, auto_activate=True) == []  # type: ignore[arg-type]
    chain.configured = True
    for unreadable in (None, bytes(39)):
        chain.clock = unreadable
        with pytest.raises(RuntimeError, match="Clock sysvar"):
            await chain_time(chain)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="Clock sysvar"):
            await sweep(api.container.database, chain, auto_activate=True)  # type: ignore[arg-type]


async def test_the_loop_logs_a_failed_sweep_and_reports_enqueued_work(api):
    (resolving,) = await markets(api, {"resolving": 3}, {})
    chain = FakeChain({resolving: account(MarketState.RESOLVING, resolution_proposed_at=0)})
    chain.failures = [RuntimeError("rpc down")]
    stop = asyncio.Event()
    calls: list[str] = []

    def enqueued() -> None:
        calls.append("enqueued")
        stop.set()  # ends the loop: it checks `stop` before waiting `interval`

    # The first sweep fails (logged), the loop waits at most `interval`, the second enqueues.
    await asyncio.wait_for(
        run_transitions(
            api.container.database,
            chain,  # type: ignore[arg-type]
            stop,
            auto_activate=True,
            interval=0,
            on_enqueued=enqueued,
        ),
        timeout=30,
    )
    assert calls == ["enqueued"]
    assert chain.failures == []
    async with api.container.database.session() as session:
        keys = (await session.scalars(select(ChainOutbox.idempotency_key))).all()
    assert list(keys) == [f"finalize_market:{resolving}"]
