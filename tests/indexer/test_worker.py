"""The indexer loop and finality check with a scripted stream and status lookups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from marketd.chain.client import OnChainState, SignatureState
from marketd.chain.stream import Checkpoint, TransactionEvents
from marketd.indexer.checkpoint import checkpoint_name, load_checkpoint
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.indexer import Indexer
from marketd.indexer.settings import IndexerSettings
from marketd.indexer.transitions import due_intent
from marketd.markets.cache import MarketCache
from marketd.models import ChainEvent, IndexerCheckpoint

from .conftest import PROGRAM_ID, T0, Tape


class ScriptedStream:
    def __init__(self, batches: list[TransactionEvents], then: BaseException | None) -> None:
        self.batches, self.then = batches, then
        self.since: list[Checkpoint | None] = []
        self.started = asyncio.Event()

    async def follow(self, since: Checkpoint | None) -> AsyncIterator[TransactionEvents]:
        self.since.append(since)
        self.started.set()
        for batch in self.batches:
            yield batch
        if self.then is not None:
            raise self.then
        await asyncio.Event().wait()


class FakeClient:
    program_id = PROGRAM_ID

    def __init__(self) -> None:
        self.statuses: dict[str, SignatureState | None] = {}

    async def global_config(self) -> None:
        return None

    async def signature_statuses(self, signatures: list[str]) -> list[SignatureState | None]:
        return [self.statuses.get(s) for s in signatures]


def created(tape: Tape) -> TransactionEvents:
    return tape.tx(
        (
            "MarketCreated",
            {
                "market_id": tape.mid(),
                "creator": str(tape.wallet()),
                "b_parameter": 1,
                "state": 0,
                "timestamp": T0,
            },
        )
    )


async def test_run_indexes_what_the_stream_yields_then_surfaces_its_failure(api, tape):
    batches = [created(tape), tape.tx(err={"InstructionError": [0, "x"]})]
    stream = ScriptedStream(batches, RuntimeError("stream broke"))
    indexer = Indexer(api.container, FakeClient(), stream)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="stream broke"):
        await indexer.run(asyncio.Event())
    async with api.container.database.session() as session:
        assert await load_checkpoint(session, indexer.name) == batches[-1].checkpoint
    assert (await MarketCache(api.container.pages).get(tape.market_id)) is not None
    assert indexer.fees == FeeSchedule()

    # A restart resumes from the checkpoint; stop ends the loop.
    again = ScriptedStream([], None)
    stop = asyncio.Event()
    second = Indexer(api.container, FakeClient(), again)  # type: ignore[arg-type]
    task = asyncio.create_task(second.run(stop))
    await again.started.wait()
    stop.set()
    await task
    assert again.since == [batches[-1].checkpoint]


async def test_finality_marks_finalized_and_waits_for_repeated_misses(api, tape):
    client = FakeClient()
    indexer = Indexer(api.container, client, ScriptedStream([], None), missing_checks=2)  # type: ignore[arg-type]
    assert (await indexer.check_finality()).finalized == []
    other = Tape()
    first, dropped = created(tape), created(other)
    await indexer.index([first])
    await indexer.index([dropped])
    client.statuses[first.signature] = SignatureState(
        first.signature, first.slot, "finalized", None
    )
    report = await indexer.check_finality()
    assert (report.finalized, report.rolled_back) == ([first.signature], [])  # missed once
    client.statuses[dropped.signature] = SignatureState(dropped.signature, 1, "confirmed", None)
    assert (await indexer.check_finality()).rolled_back == []  # seen again: forgiven
    del client.statuses[dropped.signature]
    assert (await indexer.check_finality()).rolled_back == []  # missed once more
    report = await indexer.check_finality()
    assert (report.rolled_back, report.rebuilt) == ([dropped.signature], [other.market_id])
    async with api.container.database.session() as session:
        commitments = (await session.scalars(select(ChainEvent.commitment))).all()
        row = await session.get(IndexerCheckpoint, checkpoint_name(str(PROGRAM_ID)))
    assert list(commitments) == ["finalized"]
    assert row is not None and row.last_signature == first.signature
    assert row.finalized_slot == first.slot


def test_settings_and_due_intents() -> None:
    settings = IndexerSettings()
    assert settings.auto_activate and settings.missing_checks == 2
    fields = {"resolution_proposed_at": 100, "dispute_initiated_at": 200}
    assert due_intent(OnChainState.APPROVED, fields, 0, 10, True) == "activate_market"
    assert due_intent(OnChainState.APPROVED, fields, 0, 10, False) is None
    assert due_intent(OnChainState.RESOLVING, fields, 109, 10, True) is None
    assert due_intent(OnChainState.RESOLVING, fields, 110, 10, True) == "finalize_market"
    assert due_intent(OnChainState.DISPUTED, fields, 210, 10, True) == "resolve_dispute"
    assert due_intent(OnChainState.ACTIVE, fields, 10**9, 10, True) is None


def test_fee_schedule_inverts_sales() -> None:
    fees = FeeSchedule()
    for gross in (1, 99, 1000, 123_456_789):
        net = fees.net_of(gross)
        recovered = fees.gross_from_net(net)
        assert fees.net_of(recovered) == net and recovered <= gross
    assert FeeSchedule(5000, 5000, 0).gross_from_net(10) == 10
    assert fees.gross_from_net(0) == 0
