"""The program's events, in order, from a checkpoint onwards: backfill, then live.

Two sources feed one stream of per-transaction batches:

* backfill: ``getSignaturesForAddress(program_id)`` paged newest-first down to the checkpoint,
  then ``getTransaction`` for each signature, yielded oldest-first;
* live: ``logsSubscribe({"mentions": [program_id]})`` at ``confirmed`` over a websocket.

`ProgramEventStream.follow` subscribes *first* and backfills *second*, so every transaction
that lands after the backfill read the head is already buffered in the websocket; transactions
the two sources both saw are yielded once (by signature: a batch holds all of a transaction's
events, so this is the (signature, event index) key applied a transaction at a time). After any
disconnect or RPC error it waits (exponential backoff), resubscribes and backfills again from the
last batch it yielded, so nothing is lost and nothing repeats.

History gaps: a node keeps a bounded history. When the checkpoint is older than the node's
oldest slot (minimumLedgerSlot) and the node cannot find the checkpoint's transaction either,
the transactions between are gone from this node: listing "until" an unknown signature would
silently start at the oldest one it has. The stream raises `HistoryGapError` instead, logs it at
error level, sets `marketd_chain_history_gap` and yields nothing (the checkpoint stays) while it
retries with backoff, so an operator sees it and can point SOLANA_RPC_URL at a node with that
history (an archive RPC), after which it resumes with nothing lost. Market rows meanwhile stay
right through reconcile (getProgramAccounts); only the event history would be incomplete, and
that is not done silently.

Nothing is persisted here: the consumer (the indexer) owns the checkpoint. It passes the last
batch's `checkpoint` back in when it restarts.

Failed transactions (``meta.err``) are yielded as batches with ``err`` set and no events: their
events never happened, but a consumer may need to know the transaction failed (a relayed trade).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import structlog
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solana.rpc.core import RPCException
from solders.pubkey import Pubkey
from solders.rpc.errors import MethodNotFoundMessage
from solders.rpc.responses import RpcConfirmedTransactionStatusWithSignature
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from marketd.chain.client import ChainClient
from marketd.chain.errors import HistoryGapError, StreamError, StreamGapError, SubscriptionError
from marketd.chain.events import parse_program_events
from marketd.chain.idl import IdlCoder
from marketd.chain.program import program_coder, program_id
from marketd.config import Settings
from marketd.core.metrics import CHAIN_HISTORY_GAP
from marketd.core.waits import Backoff, FailureStreak

log = structlog.get_logger(__name__)

Source = Literal["backfill", "live"]


@dataclass(frozen=True)
class Checkpoint:
    """The last transaction a consumer has fully processed."""

    signature: str
    slot: int


@dataclass(frozen=True)
class StreamEvent:
    """One decoded program event with its transaction context."""

    signature: str
    slot: int
    block_time: int | None
    index: int
    name: str
    data: dict[str, Any]
    commitment: str


@dataclass(frozen=True)
class TransactionEvents:
    """Every event of one transaction of the program, in emission order."""

    signature: str
    slot: int
    block_time: int | None
    commitment: str
    err: Any
    events: tuple[StreamEvent, ...]
    source: Source

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.signature, self.slot)


RECONNECT_BACKOFF = Backoff(initial=0.2, maximum=10.0)
"""Waits between reconnections of `follow`, and between fetch attempts of one transaction."""


CLOSE_TIMEOUT_SECONDS = 2.0
"""How long closing the subscription socket waits for the node's close frame (the websockets
default, 10 s, is a service manager's whole stop budget)."""

_RETRYABLE = (
    OSError,
    asyncio.TimeoutError,
    httpx.HTTPError,
    SolanaRpcException,
    RPCException,
    WebSocketException,
    StreamError,
)


def websocket_url(http_url: str) -> str:
    """The PubSub URL of an RPC URL, as Solana's own clients derive it.

    With an explicit port the websocket is on port + 1 (Agave: RPC 8899, PubSub 8900); without
    one (a hosted provider behind https) it is on the same host and path. A provider that
    serves it elsewhere is configured with SOLANA_WS_URL.
    """
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if http_url.startswith(plain):
            parts = urlsplit(secure + http_url[len(plain) :])
            if parts.port is None:
                return parts.geturl()
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"  # IPv6 literal
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = f"{userinfo}@" if userinfo else ""
            return parts._replace(netloc=f"{netloc}{host}:{parts.port + 1}").geturl()
    return http_url


_CONFIRMATION_NAMES = (  # solders' enum is not hashable, so no dict
    (TransactionConfirmationStatus.Processed, "processed"),
    (TransactionConfirmationStatus.Confirmed, "confirmed"),
    (TransactionConfirmationStatus.Finalized, "finalized"),
)


def _confirmation_name(status: TransactionConfirmationStatus | None, default: str) -> str:
    return next((name for level, name in _CONFIRMATION_NAMES if level == status), default)


@dataclass(frozen=True)
class _Listed:
    """A signature to fetch and the commitment it was listed at."""

    signature: Signature
    commitment: str

    @classmethod
    def of(cls, status: RpcConfirmedTransactionStatusWithSignature, default: str) -> _Listed:
        return cls(status.signature, _confirmation_name(status.confirmation_status, default))


class RecentSignatures:
    """The most recent signatures yielded, bounded, for de-duplication."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._signatures: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, signature: object) -> bool:
        return signature in self._signatures

    def add(self, signature: str) -> None:
        self._signatures[signature] = None
        while len(self._signatures) > self._capacity:
            self._signatures.popitem(last=False)


class ProgramEventStream:
    """Decoded events of `program_id` from an RPC node; see the module docstring.

    Its RPC connection is either its own (`http_url`; closed by `aclose`) or a `ChainClient`'s
    (`of_client`: shared with the client's other users, left open)."""

    def __init__(
        self,
        *,
        http_url: str | None = None,
        rpc: AsyncClient | None = None,
        program_id: Pubkey,
        coder: IdlCoder,
        ws_url: str | None = None,
        commitment: Commitment = Confirmed,
        page_size: int = 1000,
        fetch_concurrency: int = 8,
        fetch_attempts: int = 3,
        backoff: Backoff | None = None,
        dedupe_capacity: int = 10_000,
        on_reconnect: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self.program_id = program_id
        self.coder = coder
        if (http_url is None) == (rpc is None):
            raise ValueError("give either http_url (an own connection) or rpc (a shared one)")
        if ws_url is None and http_url is None:
            raise ValueError("a shared RPC connection needs its websocket URL (ws_url)")
        self.ws_url = ws_url or websocket_url(http_url or "")
        self.commitment = commitment
        self.page_size = page_size
        self.fetch_concurrency = fetch_concurrency
        self.fetch_attempts = fetch_attempts
        self.backoff = backoff or RECONNECT_BACKOFF
        self.dedupe_capacity = dedupe_capacity
        self.on_reconnect = on_reconnect
        """Called with the error (None: the node closed the socket) before each reconnect."""
        self.reconnects = 0
        """How many times `follow` lost its source and started over (for metrics and tests)."""
        self.live = asyncio.Event()
        """Set while `follow` is caught up and reading the subscription; cleared on a drop."""
        self.last_error: BaseException | None = None
        self._warned_no_ledger_slot = False
        self.history_gap: HistoryGapError | None = None
        """Set while `follow` is halted at a history gap (see the module doc)."""
        self._owns_client = rpc is None
        self._client = rpc or AsyncClient(http_url, commitment=commitment)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> ProgramEventStream:
        """The stream of the configured chain and program (SOLANA_RPC_URL, SOLANA_WS_URL)."""
        if settings.solana_rpc_url is None:
            raise ValueError("SOLANA_RPC_URL is not set (start the local chain runtime first)")
        return cls(
            http_url=settings.solana_rpc_url,
            ws_url=settings.solana_ws_url,
            program_id=program_id(settings),
            coder=program_coder(settings),
            **options,
        )

    @classmethod
    def of_client(
        cls, client: ChainClient, *, ws_url: str | None = None, **options: Any
    ) -> ProgramEventStream:
        """The stream of `client`'s program over `client`'s RPC connection; the websocket is
        `ws_url` (SOLANA_WS_URL), else derived from the client's RPC URL."""
        if ws_url is None:
            if client.rpc_url is None:
                raise ValueError("the client does not know its RPC URL: give ws_url")
            ws_url = websocket_url(client.rpc_url)
        return cls(
            rpc=client.rpc,
            ws_url=ws_url,
            program_id=client.program_id,
            coder=client.coder,
            **options,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> ProgramEventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- decoding
    def _batch(
        self,
        *,
        signature: str,
        slot: int,
        block_time: int | None,
        err: Any,
        logs: Sequence[str],
        commitment: str,
        source: Source,
    ) -> TransactionEvents:
        events: tuple[StreamEvent, ...] = ()
        if err is None:
            events = tuple(
                StreamEvent(signature, slot, block_time, e.index, e.name, e.data, commitment)
                for e in parse_program_events(logs, self.program_id, self.coder)
            )
        return TransactionEvents(signature, slot, block_time, commitment, err, events, source)

    # ----------------------------------------------------------------- backfill
    async def check_history(self, since: Checkpoint) -> None:
        """Raise HistoryGapError when the node no longer has the history after `since`.

        One cheap call normally (minimumLedgerSlot); below the node's ledger the checkpoint's
        own transaction is looked up too, since an archive-backed node still finds it."""
        try:
            first = (await self._client.get_minimum_ledger_slot()).value
        except RPCException as exc:
            if not isinstance(exc.args[0] if exc.args else None, MethodNotFoundMessage):
                raise
            if not self._warned_no_ledger_slot:
                self._warned_no_ledger_slot = True
                log.warning(
                    "the RPC node does not serve minimumLedgerSlot: a checkpoint older than its "
                    "history cannot be detected"
                )
            return
        if since.slot >= first:
            return
        found = await self._client.get_signature_statuses(
            [Signature.from_string(since.signature)], search_transaction_history=True
        )
        if found.value[0] is None:
            raise HistoryGapError(since, first)

    async def _signatures_since(
        self, since: Checkpoint | None, to: Checkpoint | None
    ) -> list[_Listed]:
        """Signatures after `since` up to `to` (inclusive) or the head, oldest first."""
        if since is not None:
            await self.check_history(since)
        until = Signature.from_string(since.signature) if since is not None else None
        before: Signature | None = None
        newest_first: list[_Listed] = []
        if to is not None:
            if since is not None and to.signature == since.signature:
                return []
            before = Signature.from_string(to.signature)
            newest_first.append(_Listed(before, str(self.commitment)))
        while True:
            response = await self._client.get_signatures_for_address(
                self.program_id,
                before=before,
                until=until,
                limit=self.page_size,
                commitment=self.commitment,
            )
            page = response.value
            newest_first.extend(_Listed.of(status, str(self.commitment)) for status in page)
            if len(page) < self.page_size:
                break
            before = page[-1].signature
        newest_first.reverse()
        return newest_first

    async def _fetch(self, listed: _Listed) -> TransactionEvents:
        for attempt in range(self.fetch_attempts):
            if attempt:
                await asyncio.sleep(self.backoff.delay(attempt))
            response = await self._client.get_transaction(
                listed.signature,
                commitment=self.commitment,
                max_supported_transaction_version=0,
            )
            found = response.value
            meta = found.transaction.meta if found is not None else None
            if found is None or meta is None:
                continue
            meta_json = json.loads(meta.to_json())  # err in Solana's JSON form, as live has it
            return self._batch(
                signature=str(listed.signature),
                slot=found.slot,
                block_time=found.block_time,
                err=meta_json["err"],
                logs=meta_json.get("logMessages") or [],
                commitment=listed.commitment,
                source="backfill",
            )
        raise StreamGapError(f"transaction {listed.signature} is listed but not retrievable")

    async def backfill(
        self, since: Checkpoint | None, to: Checkpoint | None = None
    ) -> AsyncIterator[TransactionEvents]:
        """Every transaction of the program after `since` (None: from the first) up to `to`
        (inclusive; None: the head), oldest first, one batch per transaction."""
        pending = await self._signatures_since(since, to)
        for start in range(0, len(pending), self.fetch_concurrency):
            window = pending[start : start + self.fetch_concurrency]
            for batch in await asyncio.gather(*(self._fetch(listed) for listed in window)):
                yield batch

    # ----------------------------------------------------------------- live
    async def _subscribe(self, ws: ClientConnection) -> None:
        request = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "logsSubscribe",
            "params": [{"mentions": [str(self.program_id)]}, {"commitment": str(self.commitment)}],
        }
        await ws.send(json.dumps(request))
        reply = json.loads(await ws.recv())
        if not isinstance(reply.get("result"), int):
            raise SubscriptionError(f"logsSubscribe refused: {reply.get('error')!r}")

    async def _block_time(self, signature: str) -> int | None:
        """Log notifications carry no block time; the transaction does."""
        for attempt in range(self.fetch_attempts):
            if attempt:
                await asyncio.sleep(self.backoff.delay(attempt))
            response = await self._client.get_transaction(
                Signature.from_string(signature),
                commitment=self.commitment,
                max_supported_transaction_version=0,
            )
            if response.value is not None:
                return response.value.block_time
        return None

    async def _live(self, ws: ClientConnection) -> AsyncIterator[TransactionEvents]:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("method") != "logsNotification":
                continue
            result = message["params"]["result"]
            value = result["value"]
            batch = self._batch(
                signature=value["signature"],
                slot=result["context"]["slot"],
                block_time=None,
                err=value["err"],
                logs=value["logs"] or [],
                commitment=str(self.commitment),
                source="live",
            )
            if batch.events:
                block_time = await self._block_time(batch.signature)
                batch = replace(
                    batch,
                    block_time=block_time,
                    events=tuple(replace(e, block_time=block_time) for e in batch.events),
                )
            yield batch

    async def follow(self, since: Checkpoint | None) -> AsyncGenerator[TransactionEvents]:
        """Backfill from `since` to the head, then follow live, forever; see the module doc."""
        last = since
        seen = RecentSignatures(self.dedupe_capacity)
        failures = FailureStreak(self.backoff)
        while True:
            try:
                async with connect(
                    self.ws_url, max_size=None, close_timeout=CLOSE_TIMEOUT_SECONDS
                ) as ws:
                    await self._subscribe(ws)
                    async for batch in _unseen(self.backfill(last), seen):
                        self._gap_closed()
                        last = batch.checkpoint
                        yield batch
                    self._gap_closed()
                    failures.succeeded()
                    self.live.set()
                    async for batch in _unseen(self._live(ws), seen):
                        last = batch.checkpoint
                        yield batch
                failed = False
                log.warning("chain event stream closed by the node; reconnecting")
            except HistoryGapError as exc:
                failed = True
                self.last_error = self.history_gap = exc
                CHAIN_HISTORY_GAP.set(1)
                log.error(
                    "chain history gap: not indexing until a node with the missing history "
                    "is configured (SOLANA_RPC_URL); nothing is skipped",
                    checkpoint=exc.checkpoint.signature,
                    checkpoint_slot=exc.checkpoint.slot,
                    first_available_slot=exc.first_available_slot,
                )
            except _RETRYABLE as exc:
                failed = True
                self.last_error = exc
                log.warning("chain event stream failed; reconnecting", error=repr(exc))
            self.live.clear()
            self.reconnects += 1
            if self.on_reconnect is not None:
                self.on_reconnect(self.last_error if failed else None)
            await asyncio.sleep(failures.failed())

    def _gap_closed(self) -> None:
        if self.history_gap is not None:
            self.history_gap = None
            CHAIN_HISTORY_GAP.set(0)
            log.warning("chain history gap closed: the node has the history again")


async def _unseen(
    batches: AsyncIterator[TransactionEvents], seen: RecentSignatures
) -> AsyncIterator[TransactionEvents]:
    """The batches whose transaction was not yielded already (by the other source)."""
    async for batch in batches:
        if batch.signature not in seen:
            seen.add(batch.signature)
            yield batch
