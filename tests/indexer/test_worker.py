"""The indexer loop and finality check with a scripted stream and status lookups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from marketd.chain.client import SignatureState
from marketd.chain.stream import Checkpoint, TransactionEvents
from marketd.config import IndexerSettings
from marketd.indexer.checkpoint import checkpoint_name, load_checkpoint
from marketd.indexer.fees import FeeSchedule, FeeSplit
from marketd.indexer.indexer import Indexer
from marketd.indexer.transitions import due_intent
from marketd.markets.cache import MarketCache
from marketd.models import IndexedEventRow, IndexerCheckpoint
from marketd.shared.market_state import MarketState

from ..helpers.indexer import PROGRAM_ID, T0, Tape


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


class FakeRpc:
    """getSignaturesForAddress (through `FakeClient.signatures_for_address`): the newest of
    `slots` (or an error)."""

    def __init__(self) -> None:
        self.slots: list[int] = []
        self.error: Exception | None = None
        self.asked = asyncio.Event()

    async def get_signatures_for_address(self, address: Any, **options: Any) -> Any:
        assert address == PROGRAM_ID and options["limit"] == 1
        self.asked.set()
        if self.error is not None:
            raise self.error
        return SimpleNamespace(value=[SimpleNamespace(slot=slot) for slot in self.slots[:1]])


class FakeClient:
    program_id = PROGRAM_ID

    def __init__(self) -> None:
        self.statuses: dict[str, SignatureState | None] = {}
        self.rpc = FakeRpc()

    async def global_config(self) -> None:
        return None

    async def signature_statuses(self, signatures: list[str]) -> list[SignatureState | None]:
        return [self.statuses.get(s) for s in signatures]

    async def signatures_for_address(self, address: Any, **options: Any) -> Any:
        return (await self.rpc.get_signatures_for_address(address, **options)).value


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


class EndlessStream:
    """Yields failed transactions as fast as they are taken; records when it is closed."""

    def __init__(self, tape: Tape) -> None:
        self.tape = tape
        self.closed_by: str | None = None

    async def follow(self, since: Checkpoint | None) -> AsyncIterator[TransactionEvents]:
        try:
            while True:
                yield self.tape.tx(err={"InstructionError": [0, "x"]})
        finally:
            task = asyncio.current_task()
            self.closed_by = task.get_coro().__qualname__ if task else None  # type: ignore[union-attr]


async def test_stopping_closes_the_stream_the_pump_was_blocked_on(api, tape):
    # The pump outruns the commits, so at the stop it waits at a full queue with the stream
    # suspended at a yield: the stream (and its websocket) must be closed by the stop itself.
    stream = EndlessStream(tape)
    indexer = Indexer(api.container, FakeClient(), stream, max_batch=1)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(indexer.run(stop))
    await indexer.indexed.wait()
    stop.set()
    await task
    # Closed by the pump as it stopped, not later by the event loop's async-generator
    # finaliser (a task of its own, at a moment nobody waits for).
    assert stream.closed_by == "Indexer._pump"


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
        commitments = (await session.scalars(select(IndexedEventRow.commitment))).all()
        row = await session.get(IndexerCheckpoint, checkpoint_name(str(PROGRAM_ID)))
    assert list(commitments) == ["finalized"]
    assert row is not None and row.last_signature == first.signature
    assert row.finalized_slot == first.slot


def test_settings_and_due_intents() -> None:
    settings = IndexerSettings()
    assert settings.auto_activate and settings.missing_checks == 2
    fields = {"resolution_proposed_at": 100, "dispute_initiated_at": 200}
    assert due_intent(MarketState.APPROVED, fields, 0, 10, True) == "activate_market"
    assert due_intent(MarketState.APPROVED, fields, 0, 10, False) is None
    assert due_intent(MarketState.RESOLVING, fields, 109, 10, True) is None
    assert due_intent(MarketState.RESOLVING, fields, 110, 10, True) == "finalize_market"
    # Disputes are the vote aggregator's (quorum, no-votes wait), never a transition's.
    assert due_intent(MarketState.DISPUTED, fields, 210, 10, True) is None
    assert due_intent(MarketState.ACTIVE, fields, 10**9, 10, True) is None


@pytest.mark.parametrize("gross", [1, 99, 1000, 123_456_789])
def test_fee_schedule_inverts_sales(gross: int) -> None:
    fees = FeeSchedule()
    net = fees.net_of(gross)
    recovered = fees.gross_from_net(net)
    assert fees.net_of(recovered) == net and recovered <= gross


def test_fee_schedule_inverts_the_edges() -> None:
    fees = FeeSchedule()
    assert FeeSchedule(5000, 5000, 0).gross_from_net(10) == 10
    assert fees.gross_from_net(0) == 0


def test_fee_split_and_buy_costs_are_the_programs() -> None:
    """PROGRAM.md §4.8's examples, and §3.7's: a 1 SOL target buys at a pre-fee cost of
    909 025 800, a total of 999 928 380 (the SharesBought.cost)."""
    fees = FeeSchedule()
    assert fees.split(99) == FeeSplit(2, 1, 6)
    assert fees.split(12_345) == FeeSplit(370, 246, 618)
    split = fees.split(909_025_800)
    assert split == FeeSplit(27_270_774, 18_180_516, 45_451_290) and split.total == 90_902_580
    assert fees.cost_before_fees(999_928_380) == 909_025_800
    assert fees.cost_before_fees(0) == 0
    assert FeeSchedule(0, 0, 0).split(1000) == FeeSplit(0, 0, 0)


@pytest.mark.parametrize("cost", [0, 1, 10, 99, 12_345, 10**15 + 7])
def test_a_buys_cost_is_recovered_from_its_total(cost: int) -> None:
    fees = FeeSchedule()
    assert fees.cost_before_fees(cost + fees.fees_on(cost)) == cost


def lag() -> float | None:
    return REGISTRY.get_sample_value("marketd_indexer_lag_slots")


async def test_lag_is_the_distance_from_the_newest_program_transaction_to_the_checkpoint(api, tape):
    client = FakeClient()
    indexer = Indexer(api.container, client, ScriptedStream([], None), missing_checks=1)  # type: ignore[arg-type]
    assert await indexer.observe_head() is None  # the program has no transaction yet
    first = tape.tx(("SomethingNew", {}), slot=100)
    await indexer.index([first])
    assert lag() == 0  # nothing newer known
    client.rpc.slots = [150]
    assert await indexer.observe_head() == 150
    assert lag() == 50
    second = tape.tx(("SomethingNew", {}), slot=150)
    await indexer.index([second])
    assert lag() == 0
    dropped = tape.tx(("SomethingNew", {}), slot=170)
    await indexer.index([dropped])
    client.rpc.slots = [200]
    await indexer.observe_head()
    assert lag() == 30
    # A fork drops the checkpoint's transaction: the checkpoint moves back, the lag grows.
    client.statuses = {
        kept.signature: SignatureState(kept.signature, kept.slot, "confirmed", None)
        for kept in (first, second)
    }
    report = await indexer.check_finality()
    assert report.rolled_back == [dropped.signature]
    assert report.checkpoint_moved_to == 150
    assert lag() == 50


async def test_run_polls_the_head_and_survives_failed_polls(api, tape):
    batches = [created(tape)]
    client = FakeClient()
    client.rpc.slots = [batches[0].slot + 5]
    indexer = Indexer(api.container, client, ScriptedStream(batches, RuntimeError("gone")))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="gone"):
        await indexer.run(asyncio.Event())
    assert client.rpc.asked.is_set()
    assert (indexer.head_slot, indexer.checkpoint_slot) == (batches[0].slot + 5, batches[0].slot)
    assert lag() == 5

    failing = FakeClient()
    failing.rpc.error = RuntimeError("rpc down")
    later = tape.tx(("SomethingNew", {}))
    again = Indexer(api.container, failing, ScriptedStream([later], RuntimeError("gone")))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="gone"):
        await again.run(asyncio.Event())
    assert failing.rpc.asked.is_set()
    assert (again.head_slot, again.checkpoint_slot) == (later.slot, later.slot)  # from the stream
    assert lag() == 0


def traded(tape: Tape) -> TransactionEvents:
    data = {
        "market_id": tape.mid(),
        "user": str(tape.wallet()),
        "outcome": True,
        "shares": 10,
        "cost": 5,
        "new_price_yes": 500_000_000,
        "timestamp": T0,
    }
    return tape.tx(("SharesBought", data))


class BrokenBus:
    """A bus whose publish fails: the indexer must surface it, not hang or drop it silently."""

    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        self.published.append(topic)
        raise ConnectionError("bus down")


async def test_a_failed_announcement_stops_the_loop_with_its_error(api, tape, monkeypatch):
    bus = BrokenBus()
    monkeypatch.setattr(api.container, "bus", bus)
    batches = [created(tape), traded(tape)]
    stream = ScriptedStream(batches, None)  # then idles: only the announcer can end the loop
    indexer = Indexer(api.container, FakeClient(), stream)  # type: ignore[arg-type]
    with pytest.raises(ConnectionError, match="bus down"):
        await asyncio.wait_for(indexer.run(asyncio.Event()), timeout=30)
    assert bus.published == ["trades"]
    async with api.container.database.session() as session:  # the commit stands
        assert await load_checkpoint(session, indexer.name) == batches[-1].checkpoint


async def test_a_clean_stop_announces_everything_committed(api, tape):
    batches = [created(tape), traded(tape)]
    stream = ScriptedStream(batches, None)
    indexer = Indexer(api.container, FakeClient(), stream)  # type: ignore[arg-type]
    stop = asyncio.Event()
    async with api.container.bus.subscribe("trades") as subscription:
        task = asyncio.create_task(indexer.run(stop))
        await indexer.indexed.wait()  # set only after the batch's notices went out
        stop.set()
        await task
        notice = await asyncio.wait_for(subscription.get(), timeout=30)
    assert notice["marketId"] == tape.market_id
    assert (await MarketCache(api.container.pages).get(tape.market_id)) is not None


async def test_an_announcer_failing_while_the_loop_waits_on_it_is_raised(api, tape, monkeypatch):
    """One batch per transaction; the first trade's publish hangs until the last batch is
    committed, so the loop is blocked handing over a batch when the publish fails."""
    batches = [created(tape), traded(tape), traded(tape), traded(tape)]
    committed_all = asyncio.Event()

    class WatchedIndexer(Indexer):
        def _moved_to(self, slot: int) -> None:
            super()._moved_to(slot)
            if slot == batches[-1].slot:
                committed_all.set()

    class HangingBus(BrokenBus):
        async def publish(self, topic: str, event: dict[str, Any]) -> None:
            await committed_all.wait()
            await super().publish(topic, event)

    bus = HangingBus()
    monkeypatch.setattr(api.container, "bus", bus)
    indexer = WatchedIndexer(
        api.container, FakeClient(), ScriptedStream(batches, None), max_batch=1
    )  # type: ignore[arg-type]
    with pytest.raises(ConnectionError, match="bus down"):
        await asyncio.wait_for(indexer.run(asyncio.Event()), timeout=30)
    assert bus.published == ["trades"]
    assert indexer.checkpoint_slot == batches[-1].slot


async def test_the_finality_loop_logs_a_failed_check_and_goes_on(api):
    client = FakeClient()
    stop = asyncio.Event()
    calls: list[int] = []

    async def failing(signatures: list[str]) -> list[SignatureState | None]:
        calls.append(len(signatures))
        stop.set()
        raise RuntimeError("rpc down")

    client.signature_statuses = failing  # type: ignore[method-assign]
    indexer = Indexer(api.container, client, ScriptedStream([], None))  # type: ignore[arg-type]
    tape = Tape()
    await indexer.index([created(tape)])
    await asyncio.wait_for(indexer.run_finality(stop, interval=0), timeout=30)
    assert calls == [1]


async def test_an_instance_that_stops_indexing_stops_showing_a_lag(api, tape):
    """On stop (shutdown, or the leader lock lost to another instance: the job's stop event)
    and on cancellation the gauge drops to 0, so max() across instances is the leader's."""
    for ending in ("stop", "cancel"):
        client = FakeClient()
        client.rpc.slots = [10_000]  # far ahead of anything indexed
        indexer = Indexer(api.container, client, EndlessStream(tape), max_batch=1)  # type: ignore[arg-type]
        stop = asyncio.Event()
        task = asyncio.create_task(indexer.run(stop))
        await indexer.indexed.wait()
        await client.rpc.asked.wait()
        assert lag() is not None and lag() > 0
        if ending == "stop":
            stop.set()
            await task
        else:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert lag() == 0


def test_reconcile_compares_only_what_both_sides_reflect() -> None:
    from marketd.indexer.reconcile import database_complete_through

    assert database_complete_through(10, 11, 12)  # the indexer is past the snapshot
    assert database_complete_through(10, 5, 5)  # nothing on chain since the checkpoint
    assert database_complete_through(10, 0, None)  # no program transaction at all
    assert not database_complete_through(10, 10, 11)  # slot 10 may be partly indexed
    assert not database_complete_through(10, 5, 7)  # the indexer is behind
