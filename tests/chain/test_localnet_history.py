"""Bounded history: the local chain prunes signatures older than its history depth, and the
event stream / indexer report a checkpoint older than the node's history as a gap (an error an
operator sees) instead of silently skipping the events in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from sqlalchemy import func, select
from structlog.testing import capture_logs

from marketd.chain.client import ChainClient
from marketd.chain.errors import HistoryGapError
from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import RpcError, RpcMethods, serve_local_rpc
from marketd.chain.localnet.svm import FINALITY_DEPTH, ChainTiming, LocalChain
from marketd.chain.stream import Checkpoint, ProgramEventStream, TransactionEvents
from marketd.core.container import Container
from marketd.core.metrics import CHAIN_HISTORY_GAP
from marketd.core.waits import Backoff
from marketd.indexer.checkpoint import checkpoint_name, load_checkpoint, save_checkpoint
from marketd.indexer.indexer import Indexer
from marketd.models import IndexedEventRow

from ..helpers.chain import PROGRAM_ID, SOL, ChainWorld
from .test_indexer_e2e import monitor_container  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration  # serves the local chain over JSON-RPC

HISTORY = 40
TIMEOUT = 10


@pytest_asyncio.fixture
async def pruning_world(chain_coder: IdlCoder) -> AsyncIterator[ChainWorld]:
    """The usual chain world on a node that keeps HISTORY slots of history."""
    chain = LocalChain(timing=ChainTiming(history_slots=HISTORY))
    chain.load_program(PROGRAM_ID, program_artifact())
    async with serve_local_rpc(chain) as endpoint:
        client = ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed),
            chain_coder,
            PROGRAM_ID,
            poll_interval=0.01,
        )
        async with client:
            world = ChainWorld(chain, endpoint, client, chain_coder)
            world.initialize()
            yield world


async def rpc(world: ChainWorld, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with httpx.AsyncClient() as http:
        reply = (await http.post(world.endpoint.http_url, json=body)).json()
    return reply["result"]


class GapsSeen:
    """Counts the stream's restarts at a history gap (its on_reconnect callback)."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.count = 0
        self.reached = asyncio.Event()

    def __call__(self, error: BaseException | None) -> None:
        if isinstance(error, HistoryGapError):
            self.count += 1
            if self.count >= self.wanted:
                self.reached.set()

    async def wait(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self.reached.wait()


def stream_of(world: ChainWorld, gaps: GapsSeen | None = None) -> ProgramEventStream:
    return ProgramEventStream(
        http_url=world.endpoint.http_url,
        program_id=PROGRAM_ID,
        coder=world.coder,
        backoff=Backoff(initial=0.01, maximum=0.05),
        on_reconnect=gaps,
    )


def program_checkpoint(world: ChainWorld, signature: str) -> Checkpoint:
    record = world.chain.get_record(signature)
    assert record is not None
    return Checkpoint(record.signature, record.slot)


async def test_history_older_than_the_depth_is_pruned(pruning_world: ChainWorld) -> None:
    world = pruning_world
    chain = world.chain
    old = world.funded(SOL)
    old_signature = next(iter(chain.records())).signature
    assert await rpc(world, "minimumLedgerSlot") == 0
    chain.advance_slots(HISTORY + 5)
    recent = chain.airdrop(old.pubkey(), SOL)
    first = chain.first_available_slot
    assert first == chain.slot - HISTORY
    assert await rpc(world, "minimumLedgerSlot") == first
    assert await rpc(world, "getFirstAvailableBlock") == first
    assert all(record.slot >= first for record in chain.records())
    assert await rpc(world, "getTransaction", old_signature, {"commitment": "confirmed"}) is None
    assert (await rpc(world, "getSignatureStatuses", [old_signature]))["value"] == [None]
    listed = await rpc(
        world, "getSignaturesForAddress", str(old.pubkey()), {"commitment": "confirmed"}
    )
    assert [item["signature"] for item in listed] == [str(recent)]
    # `until` a pruned signature is no bound: the node lists all it still has.
    until_pruned = await rpc(
        world,
        "getSignaturesForAddress",
        str(Pubkey.from_string("11111111111111111111111111111111")),
        {"commitment": "confirmed", "until": old_signature},
    )
    assert str(recent) in {item["signature"] for item in until_pruned}


def test_pruned_history_survives_a_restart(tmp_path: Path) -> None:
    chain = LocalChain(tmp_path, timing=ChainTiming(history_slots=FINALITY_DEPTH))
    chain.airdrop(Keypair().pubkey(), SOL)
    chain.advance_slots(FINALITY_DEPTH + 3)
    kept = chain.airdrop(Keypair().pubkey(), SOL)
    restarted = LocalChain(tmp_path, timing=ChainTiming(history_slots=FINALITY_DEPTH))
    assert restarted.first_available_slot == chain.first_available_slot > 0
    assert [record.signature for record in restarted.records()] == [str(kept)]


async def test_stream_reports_a_checkpoint_older_than_the_history_as_a_gap(
    pruning_world: ChainWorld,
) -> None:
    world = pruning_world
    market_id = world.create_market()
    records = list(world.chain.records())
    checkpoint = program_checkpoint(world, records[-1].signature)
    world.chain.advance_slots(HISTORY + 1)
    world.approve(market_id)  # events after the checkpoint the node still has...
    gaps = GapsSeen(2)  # it keeps retrying, and keeps refusing
    async with stream_of(world, gaps) as stream:
        with pytest.raises(HistoryGapError) as gap:
            async for _ in stream.backfill(checkpoint):
                pass
        assert gap.value.first_available_slot == world.chain.first_available_slot
        assert str(checkpoint.slot) in str(gap.value)

        yielded: list[TransactionEvents] = []

        async def follow() -> None:
            async for batch in stream.follow(checkpoint):
                yielded.append(batch)

        CHAIN_HISTORY_GAP.set(0)
        with capture_logs() as logs:
            task = asyncio.create_task(follow())
            await gaps.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert yielded == []  # nothing skipped past the gap
    assert stream.history_gap is not None
    assert CHAIN_HISTORY_GAP._value.get() == 1
    errors = [entry for entry in logs if entry["log_level"] == "error"]
    assert errors and errors[0]["checkpoint"] == checkpoint.signature
    assert errors[0]["first_available_slot"] == world.chain.first_available_slot


async def test_a_checkpoint_within_the_history_is_no_gap_and_closes_a_reported_one(
    pruning_world: ChainWorld,
) -> None:
    world = pruning_world
    world.chain.advance_slots(HISTORY + 1)
    market_id = world.create_market()
    checkpoint = program_checkpoint(world, list(world.chain.records())[-1].signature)
    world.approve(market_id)
    async with stream_of(world) as stream:
        stream.history_gap = HistoryGapError(checkpoint, 0)  # as if reported before
        CHAIN_HISTORY_GAP.set(1)
        batches = stream.follow(checkpoint)
        async with asyncio.timeout(TIMEOUT):
            first = await anext(batches)
        await batches.aclose()
    assert first.signature == list(world.chain.records())[-2].signature  # the aggregation
    assert first.events
    assert stream.history_gap is None
    assert CHAIN_HISTORY_GAP._value.get() == 0


async def test_the_indexer_halts_at_a_gap_and_keeps_its_checkpoint(
    pruning_world: ChainWorld,
    monitor_container: Container,  # noqa: F811
) -> None:
    world = pruning_world
    market_id = world.create_market()
    checkpoint = program_checkpoint(world, list(world.chain.records())[-1].signature)
    name = checkpoint_name(str(PROGRAM_ID))
    async with monitor_container.database.session() as session, session.begin():
        await save_checkpoint(session, name, checkpoint)
    world.chain.advance_slots(HISTORY + 1)
    world.approve(market_id)
    gaps = GapsSeen(1)
    stream = stream_of(world, gaps)
    indexer = Indexer(monitor_container, world.client, stream)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(indexer.run(stop))
        await gaps.wait()
        stop.set()
        await task
    await stream.aclose()
    async with monitor_container.database.session() as session:
        assert await load_checkpoint(session, name) == checkpoint
        assert await session.scalar(select(func.count()).select_from(IndexedEventRow)) == 0
    assert any(entry["log_level"] == "error" for entry in logs)


@pytest.mark.parametrize("code", [-32601, -32602])
async def test_a_node_without_minimum_ledger_slot_is_followed_without_the_check(
    chain_coder: IdlCoder, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Method not found: the check is skipped (with a warning); any other refusal is an error
    the stream retries, as for every RPC failure."""

    def refuse(self: RpcMethods, params: list[Any]) -> Any:
        raise RpcError(code, "Method not found" if code == -32601 else "Invalid params")

    monkeypatch.setattr(RpcMethods, "minimum_ledger_slot", refuse)
    chain = LocalChain(timing=ChainTiming(history_slots=HISTORY))
    chain.load_program(PROGRAM_ID, program_artifact())
    async with serve_local_rpc(chain) as endpoint:
        client = ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed), chain_coder, PROGRAM_ID
        )
        async with client:
            world = ChainWorld(chain, endpoint, client, chain_coder)
            world.initialize()
            checkpoint = program_checkpoint(world, list(chain.records())[-1].signature)
            world.create_market()
            async with stream_of(world) as stream:
                with capture_logs() as logs:
                    if code == -32601:
                        for _ in range(2):
                            listed = [batch async for batch in stream.backfill(checkpoint)]
                            assert len(listed) == 1
                    else:
                        with pytest.raises(RPCException):
                            await stream.check_history(checkpoint)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == (1 if code == -32601 else 0)  # said once
