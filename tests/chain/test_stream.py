"""ProgramEventStream against the real local chain: LocalChain + the twin program + JSON-RPC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from websockets.asyncio.server import ServerConnection, serve

from marketd.chain.addresses import new_market_id
from marketd.chain.client import ChainClient
from marketd.chain.errors import StreamGapError, SubscriptionError
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import RpcEndpoint, serve_local_rpc
from marketd.chain.localnet.seed import (
    LocalProgram,
    LocalTransactionError,
    ensure_global_config,
    vote_record_address,
)
from marketd.chain.localnet.svm import FINALITY_DEPTH, LocalChain, TxRecord
from marketd.chain.program import BUNDLED_IDL
from marketd.chain.stream import (
    Checkpoint,
    ProgramEventStream,
    RecentSignatures,
    TransactionEvents,
    websocket_url,
)
from marketd.config import DEFAULT_PROGRAM_ID, Settings
from marketd.core.waits import Backoff

pytestmark = pytest.mark.integration  # serves the local chain over JSON-RPC

PROGRAM_ID = Pubkey.from_string(DEFAULT_PROGRAM_ID)
SOL = 1_000_000_000
TIMEOUT = 10
FAST = Backoff(initial=0.01, factor=2, maximum=0.05)


@dataclass
class Voting:
    """A market on the local chain and a pool of funded wallets that vote on it."""

    chain: LocalChain
    program: LocalProgram
    market: Pubkey
    wallets: Iterator[Keypair]
    creation: TxRecord

    def vote(self, voter: Keypair | None = None, *, fail_silently: bool = False) -> str:
        voter = voter or next(self.wallets)
        record = vote_record_address(PROGRAM_ID, self.market, voter.pubkey(), dispute=False)
        try:
            landed = self.program.call(
                "submit_proposal_vote",
                {"vote": True},
                {"market": self.market, "vote_record": record, "user": voter.pubkey()},
                [voter],
            )
        except LocalTransactionError as exc:
            if not fail_silently or exc.signature is None:
                raise
            return exc.signature  # landed as a failed transaction (sent without preflight)
        return landed.signature

    def votes(self, count: int) -> list[str]:
        return [self.vote() for _ in range(count)]

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.creation.signature, self.creation.slot)


@pytest.fixture
def coder() -> IdlCoder:
    return IdlCoder(Idl.from_path(BUNDLED_IDL))


@pytest.fixture
def voting(coder: IdlCoder) -> Voting:
    chain = LocalChain()
    chain.load_program(PROGRAM_ID, program_artifact())
    program = LocalProgram(chain, PROGRAM_ID, coder)
    backend = Keypair()
    ensure_global_config(program, backend)
    creator = Keypair()
    chain.airdrop(creator.pubkey(), 100 * SOL)
    market_id = new_market_id()
    creation = program.create_market(creator, market_id)

    def wallets() -> Iterator[Keypair]:
        while True:
            wallet = Keypair()
            chain.airdrop(wallet.pubkey(), SOL)
            yield wallet

    return Voting(chain, program, program.market(market_id), wallets(), creation)


@pytest.fixture
async def endpoint(voting: Voting) -> AsyncIterator[RpcEndpoint]:
    async with serve_local_rpc(voting.chain) as served:
        yield served


@pytest.fixture
async def stream(endpoint: RpcEndpoint, coder: IdlCoder) -> AsyncIterator[ProgramEventStream]:
    async with ProgramEventStream(
        http_url=endpoint.http_url, program_id=PROGRAM_ID, coder=coder, page_size=3, backoff=FAST
    ) as opened:
        yield opened


class Consumer:
    """Drives `follow` in a task (a generator only runs while pulled) and queues its batches."""

    def __init__(self, batches: AsyncIterator[TransactionEvents]) -> None:
        self.queue: asyncio.Queue[TransactionEvents] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._pump(batches))

    async def _pump(self, batches: AsyncIterator[TransactionEvents]) -> None:
        async for batch in batches:
            self.queue.put_nowait(batch)

    async def take(self, count: int) -> list[TransactionEvents]:
        return [await asyncio.wait_for(self.queue.get(), TIMEOUT) for _ in range(count)]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def following(
    stream: ProgramEventStream, since: Checkpoint | None
) -> AsyncIterator[Consumer]:
    consumer = Consumer(stream.follow(since))
    try:
        yield consumer
    finally:
        await consumer.stop()


async def collect(batches: AsyncIterator[TransactionEvents]) -> list[TransactionEvents]:
    return [batch async for batch in batches]


def signatures(batches: list[TransactionEvents]) -> list[str]:
    return [batch.signature for batch in batches]


# --------------------------------------------------------------------- backfill


async def test_backfill_pages_oldest_first_and_decodes_every_event(
    stream: ProgramEventStream, voting: Voting
) -> None:
    sent = voting.votes(7)  # 7 transactions over pages of 3
    batches = await collect(stream.backfill(voting.checkpoint))
    assert signatures(batches) == sent
    slots = [batch.slot for batch in batches]
    assert slots == sorted(slots)
    for batch in batches:
        record = voting.chain.get_record(batch.signature)
        assert record is not None
        assert (batch.slot, batch.block_time, batch.err) == (record.slot, record.block_time, None)
        assert batch.source == "backfill" and batch.commitment == "confirmed"
        [event] = batch.events
        assert (event.name, event.index, event.signature) == (
            "ProposalVoteSubmitted",
            0,
            batch.signature,
        )
        assert event.data["vote"] is True and event.block_time == record.block_time
        assert batch.checkpoint == Checkpoint(batch.signature, batch.slot)


async def test_backfill_from_the_beginning_and_up_to_an_inclusive_end(
    stream: ProgramEventStream, voting: Voting
) -> None:
    sent = voting.votes(5)
    everything = await collect(stream.backfill(None))
    names = [event.name for batch in everything for event in batch.events]
    assert names[:2] == ["GlobalConfigInitialized", "MarketCreated"]
    assert signatures(everything)[-5:] == sent

    upto = everything[-2]
    bounded = await collect(stream.backfill(voting.checkpoint, to=upto.checkpoint))
    assert signatures(bounded) == sent[:4]
    assert await collect(stream.backfill(upto.checkpoint, to=upto.checkpoint)) == []
    from_start = await collect(stream.backfill(None, to=everything[1].checkpoint))
    assert signatures(from_start) == signatures(everything[:2])


async def test_backfill_reports_finalized_transactions_as_finalized(
    stream: ProgramEventStream, voting: Voting
) -> None:
    old = voting.vote()
    voting.chain.advance_slots(FINALITY_DEPTH)
    new = voting.vote()
    batches = await collect(stream.backfill(voting.checkpoint))
    assert [(b.signature, b.commitment) for b in batches] == [
        (old, "finalized"),
        (new, "confirmed"),
    ]
    assert batches[0].events[0].commitment == "finalized"


async def test_a_failed_transaction_yields_no_events(
    stream: ProgramEventStream, voting: Voting
) -> None:
    voter = next(voting.wallets)
    first = voting.vote(voter)
    failed = voting.vote(voter, fail_silently=True)  # record exists: lands failed, no preflight
    assert failed != first
    record = voting.chain.get_record(failed)
    assert record is not None and record.err is not None
    batches = await collect(stream.backfill(voting.checkpoint))
    assert signatures(batches) == [first, failed]
    assert batches[1].err == record.err and batches[1].events == ()

    async with following(stream, Checkpoint(failed, record.slot)) as consumer:
        await asyncio.wait_for(stream.live.wait(), TIMEOUT)
        again = voting.vote(voter, fail_silently=True)
        [batch] = await consumer.take(1)
    assert (batch.signature, batch.source, batch.events) == (again, "live", ())
    assert batch.err is not None


async def test_a_listed_transaction_that_cannot_be_fetched_is_a_gap(
    stream: ProgramEventStream, voting: Voting, monkeypatch: pytest.MonkeyPatch
) -> None:
    voting.votes(1)
    real = stream._client.get_transaction
    calls = []

    async def vanished(signature: Signature, **kwargs: object) -> object:
        calls.append(signature)
        response = await real(signature, **kwargs)  # type: ignore[arg-type]
        return type(response)(value=None)

    monkeypatch.setattr(stream._client, "get_transaction", vanished)
    with pytest.raises(StreamGapError):
        await collect(stream.backfill(voting.checkpoint))
    assert len(calls) == stream.fetch_attempts


# --------------------------------------------------------------------- live and reconnect


async def test_live_events_arrive_in_order_with_block_times(
    stream: ProgramEventStream, voting: Voting
) -> None:
    async with following(stream, voting.checkpoint) as consumer:
        await asyncio.wait_for(stream.live.wait(), TIMEOUT)
        sent = voting.votes(6)
        batches = await consumer.take(6)
    assert signatures(batches) == sent
    assert {batch.source for batch in batches} == {"live"}
    for batch in batches:
        record = voting.chain.get_record(batch.signature)
        assert record is not None
        assert (batch.slot, batch.block_time) == (record.slot, record.block_time)
        assert [(e.name, e.block_time) for e in batch.events] == [
            ("ProposalVoteSubmitted", record.block_time)
        ]
    assert stream.reconnects == 0


async def test_dropped_subscription_is_backfilled_without_loss_or_duplicates(
    stream: ProgramEventStream, voting: Voting, endpoint: RpcEndpoint
) -> None:
    before = voting.votes(2)  # landed before the stream starts: backfilled
    async with following(stream, voting.checkpoint) as consumer, httpx.AsyncClient() as http:
        received = await consumer.take(2)
        await asyncio.wait_for(stream.live.wait(), TIMEOUT)
        during = voting.votes(3)
        received += await consumer.take(3)

        closed = await http.post(f"{endpoint.http_url}/_control/close_subscriptions")
        assert closed.json()["closed"] == 1 and closed.json()["subscriptions"] == 0
        # No await between the close and these sends: nobody is subscribed while they land.
        gap = voting.votes(4)
        received += await consumer.take(4)
        await asyncio.wait_for(stream.live.wait(), TIMEOUT)
        after = voting.votes(3)
        received += await consumer.take(3)

    assert signatures(received) == before + during + gap + after
    assert len(set(signatures(received))) == len(received)
    sources = {batch.signature: batch.source for batch in received}
    assert {sources[s] for s in before} == {"backfill"}
    assert {sources[s] for s in during + after} == {"live"}
    assert {sources[s] for s in gap} == {"backfill"}
    assert stream.reconnects == 1


async def test_a_transaction_seen_by_both_sources_is_yielded_once(
    endpoint: RpcEndpoint, coder: IdlCoder, voting: Voting
) -> None:
    landed: list[str] = []

    class LandsDuringBackfill(ProgramEventStream):
        """Lands a vote after subscribing and before reading the head: both sources see it."""

        async def backfill(
            self, since: Checkpoint | None, to: Checkpoint | None = None
        ) -> AsyncIterator[TransactionEvents]:
            if not landed:
                landed.append(voting.vote())
            async for batch in super().backfill(since, to):
                yield batch

    async with (
        LandsDuringBackfill(
            http_url=endpoint.http_url, program_id=PROGRAM_ID, coder=coder, backoff=FAST
        ) as stream,
        following(stream, voting.checkpoint) as consumer,
    ):
        [first] = await consumer.take(1)
        await asyncio.wait_for(stream.live.wait(), TIMEOUT)
        nxt = voting.vote()
        [second] = await consumer.take(1)
    assert (first.signature, first.source) == (landed[0], "backfill")
    assert (second.signature, second.source) == (nxt, "live")


# --------------------------------------------------------------------- a misbehaving node


@dataclass
class FakeNode:
    """A websocket node that refuses the first subscription and then sends scripted messages."""

    url: str
    connections: int = 0


async def test_refused_subscription_unrelated_messages_and_missing_block_time(
    endpoint: RpcEndpoint, coder: IdlCoder, voting: Voting
) -> None:
    signature = voting.vote()
    record = voting.chain.get_record(signature)
    assert record is not None
    unknown = str(Keypair().sign_message(b"never landed"))
    node = FakeNode(url="")

    async def handler(ws: ServerConnection) -> None:
        node.connections += 1
        request = json.loads(await ws.recv())
        if node.connections == 1:
            error = {"code": -32602, "message": "Invalid params"}
            await ws.send(json.dumps({"jsonrpc": "2.0", "error": error, "id": request["id"]}))
            return
        await ws.send(json.dumps({"jsonrpc": "2.0", "result": 7, "id": request["id"]}))
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "slotNotification"}))
        value = {"signature": unknown, "err": None, "logs": record.logs}
        result = {"context": {"slot": 999}, "value": value}
        notification = {"result": result, "subscription": 7}
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": notification})
        )
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with (
            ProgramEventStream(
                http_url=endpoint.http_url,
                ws_url=f"ws://127.0.0.1:{port}",
                program_id=PROGRAM_ID,
                coder=coder,
                backoff=FAST,
            ) as stream,
            following(stream, Checkpoint(signature, record.slot)) as consumer,
        ):
            [batch] = await consumer.take(1)
    assert isinstance(stream.last_error, SubscriptionError)
    assert stream.reconnects == 1 and node.connections == 2
    assert (batch.signature, batch.slot, batch.source) == (unknown, 999, "live")
    # The node does not know the transaction, so its block time stays unknown.
    assert batch.block_time is None
    assert [(e.name, e.block_time) for e in batch.events] == [("ProposalVoteSubmitted", None)]


async def test_an_unreachable_node_is_retried_with_backoff(coder: IdlCoder) -> None:
    errors: list[BaseException | None] = []
    retried_thrice = asyncio.Event()

    def on_reconnect(error: BaseException | None) -> None:
        errors.append(error)
        if len(errors) == 3:
            retried_thrice.set()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        async with (
            ProgramEventStream(
                http_url=f"http://127.0.0.1:{port}",
                program_id=PROGRAM_ID,
                coder=coder,
                backoff=FAST,
                on_reconnect=on_reconnect,
            ) as stream,
            following(stream, None),
        ):
            await asyncio.wait_for(retried_thrice.wait(), TIMEOUT)
    assert all(isinstance(error, OSError) for error in errors)
    assert stream.reconnects >= 3 and not stream.live.is_set()


# --------------------------------------------------------------------- small parts


def test_websocket_url_is_on_port_plus_one_or_the_same_host() -> None:
    assert websocket_url("http://127.0.0.1:8899") == "ws://127.0.0.1:8900"  # Agave's ports
    assert websocket_url("http://[::1]:8899/x?k=1") == "ws://[::1]:8900/x?k=1"
    assert websocket_url("https://user@rpc.example:8443/") == "wss://user@rpc.example:8444/"
    assert websocket_url("https://rpc.example/key") == "wss://rpc.example/key"  # a provider
    assert websocket_url("ws://already") == "ws://already"


def test_recent_signatures_forget_the_oldest() -> None:
    recent = RecentSignatures(capacity=2)
    for signature in ("a", "b", "c"):
        recent.add(signature)
    assert ("a" in recent, "b" in recent, "c" in recent) == (False, True, True)


async def test_stream_from_settings_follows_the_configured_chain(
    endpoint: RpcEndpoint, voting: Voting, tmp_path: Path
) -> None:
    base = Settings(_env_file=None, data_dir=tmp_path)
    with pytest.raises(ValueError, match="SOLANA_RPC_URL"):
        ProgramEventStream.from_settings(base)
    configured = base.model_copy(update={"solana_rpc_url": endpoint.http_url})
    sent = voting.votes(2)
    async with ProgramEventStream.from_settings(configured, page_size=1) as stream:
        assert stream.ws_url == endpoint.ws_url and stream.program_id == PROGRAM_ID
        assert signatures(await collect(stream.backfill(voting.checkpoint))) == sent


async def test_a_stream_over_a_chain_client_shares_its_connection(
    endpoint: RpcEndpoint, coder: IdlCoder, voting: Voting
) -> None:
    client = ChainClient(
        AsyncClient(endpoint.http_url), coder, PROGRAM_ID, rpc_url=endpoint.http_url
    )
    async with client:
        async with ProgramEventStream.of_client(client, page_size=3, backoff=FAST) as stream:
            assert stream.ws_url == endpoint.ws_url  # derived from the client's RPC URL
            sent = voting.votes(4)
            assert signatures(await collect(stream.backfill(voting.checkpoint))) == sent
        # Closing the stream leaves the client's connection to the client.
        assert await client.market(new_market_id()) is None
        named = ProgramEventStream.of_client(client, ws_url="ws://elsewhere:1")
        assert named.ws_url == "ws://elsewhere:1"


def test_a_stream_needs_one_connection_and_a_websocket(coder: IdlCoder) -> None:
    shared = AsyncClient("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="either"):
        ProgramEventStream(program_id=PROGRAM_ID, coder=coder)
    with pytest.raises(ValueError, match="either"):
        ProgramEventStream(
            http_url="http://127.0.0.1:1", rpc=shared, program_id=PROGRAM_ID, coder=coder
        )
    with pytest.raises(ValueError, match="websocket"):
        ProgramEventStream(rpc=shared, program_id=PROGRAM_ID, coder=coder)
    unnamed = ChainClient(shared, coder, PROGRAM_ID)  # built without its URL
    with pytest.raises(ValueError, match="ws_url"):
        ProgramEventStream.of_client(unnamed)
