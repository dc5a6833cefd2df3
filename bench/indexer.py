"""Indexer throughput: program events decoded from logs and persisted into PostgreSQL.

Builds a synthetic history (markets created and activated, then buys and sells by many
wallets, as "Program data:" log lines encoded with the program's IDL), then times:

* decode: log lines -> decoded events (`parse_program_events`), events/s;
* persist: decoded transactions -> PostgreSQL via `apply_transactions` + the checkpoint, one DB
  transaction per batch of `--batch` transactions (default: the indexer's own
  `INDEXER_MAX_BATCH`, the most a backfill batch holds), events/s;
* catch-up: the real loop, `Indexer.run`, from an empty database over a stream that decodes the
  history's log lines as `ProgramEventStream` does: decode, queue, batches of up to
  `INDEXER_MAX_BATCH` transactions with their checkpoint, then cache refresh and the domain
  events published (in-process, or Redis with `--redis`). Prints the time to index the whole
  history (default 100,000 events) and the lag gauge at the end.

RPC fetching is not included (it depends on the node); the local chain's backfill speed is
measured by tests/chain/test_stream.py.
Usage: python bench/indexer.py [--events N] [--batch B] [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prometheus_client import REGISTRY
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from common import REDIS_URL, scratch_database
from marketd.chain.addresses import market_id_bytes, new_market_id
from marketd.chain.events import parse_program_events
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.program import BUNDLED_IDL
from marketd.chain.stream import Checkpoint, StreamEvent, TransactionEvents
from marketd.config import (
    DEFAULT_PROGRAM_ID,
    IndexerSettings,
    Settings,
)
from marketd.core.container import Container
from marketd.core.database import Database, create_engine
from marketd.indexer.checkpoint import checkpoint_name, save_checkpoint
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.indexer import Indexer
from marketd.indexer.store import apply_transactions

PROGRAM = Pubkey.from_string(DEFAULT_PROGRAM_ID)


Raw = list[tuple[str, int, list[str]]]


def history(coder: IdlCoder, events: int, markets: int, wallets: int) -> Raw:
    """(signature, slot, logs) of transactions with one event each, oldest first."""
    users = [Keypair().pubkey() for _ in range(wallets)]
    ids = [new_market_id() for _ in range(markets)]
    out: list[tuple[str, int, list[str]]] = []

    def tx(name: str, data: dict[str, object]) -> None:
        payload = base64.b64encode(coder.encode_event(name, data)).decode()
        logs = [
            f"Program {PROGRAM} invoke [1]",
            f"Program data: {payload}",
            f"Program {PROGRAM} success",
        ]
        out.append((f"sig{len(out):084d}", 1000 + len(out), logs))

    for market_id in ids:
        mid = market_id_bytes(market_id)
        tx(
            "MarketCreated",
            {
                "market_id": mid,
                "creator": users[0],
                "b_parameter": 10**11,
                "state": 0,
                "timestamp": 1,
            },
        )
        tx(
            "MarketActivated",
            {"market_id": mid, "creator": users[0], "initial_liquidity": 10**10, "timestamp": 2},
        )
    n = 0
    while len(out) < events:
        mid = market_id_bytes(ids[n % markets])
        user = users[n % wallets]
        if n % 4 == 3:
            tx(
                "SharesSold",
                {
                    "market_id": mid,
                    "user": user,
                    "outcome": True,
                    "shares": 10,
                    "proceeds": 9,
                    "new_price_yes": 500_000_000,
                    "timestamp": 3 + n,
                },
            )
        else:
            tx(
                "SharesBought",
                {
                    "market_id": mid,
                    "user": user,
                    "outcome": True,
                    "shares": 100,
                    "cost": 60,
                    "new_price_yes": 500_000_001,
                    "timestamp": 3 + n,
                },
            )
        n += 1
    return out


def decoded(coder: IdlCoder, signature: str, slot: int, logs: list[str]) -> TransactionEvents:
    """One transaction's events decoded from its log lines, as the stream yields them."""
    events = tuple(
        StreamEvent(signature, slot, 1_700_000_000, e.index, e.name, e.data, "confirmed")
        for e in parse_program_events(logs, PROGRAM, coder)
    )
    return TransactionEvents(signature, slot, 1_700_000_000, "confirmed", None, events, "backfill")


class HistoryStream:
    """`ProgramEventStream.follow` over the synthetic history: decodes lazily, then idles."""

    def __init__(self, coder: IdlCoder, raw: Raw) -> None:
        self.coder, self.raw = coder, raw

    async def follow(self, since: Checkpoint | None) -> AsyncIterator[TransactionEvents]:
        for signature, slot, logs in self.raw:
            # The real stream awaits the RPC for every transaction; without this the pump would
            # decode in long bursts that hold up the indexer's database round trips.
            await asyncio.sleep(0)
            yield decoded(self.coder, signature, slot, logs)
        await asyncio.Event().wait()  # caught up: live, and nothing happens


class HeadRpc:
    """getSignaturesForAddress(limit=1): the history's newest transaction."""

    def __init__(self, slot: int) -> None:
        self.slot = slot

    async def get_signatures_for_address(self, *_args: Any, **_kwargs: Any) -> Any:
        return SimpleNamespace(value=[SimpleNamespace(slot=self.slot)])


class OfflineClient:
    """The few `ChainClient` calls the indexer loop makes."""

    def __init__(self, head_slot: int) -> None:
        self.program_id = PROGRAM
        self.rpc = HeadRpc(head_slot)

    async def global_config(self) -> None:
        return None


async def persist(url: str, batches: list[TransactionEvents], size: int) -> tuple[float, float]:
    """apply_transactions + checkpoint per batch, as `Indexer.index`; (seconds, replay ms)."""
    database = Database(create_engine(Settings(database_url=url, _env_file=None)))  # type: ignore[call-arg]
    name = checkpoint_name(str(PROGRAM))
    started = time.perf_counter()
    fees = FeeSchedule()
    for start in range(0, len(batches), size):
        chunk = batches[start : start + size]
        async with database.session() as session, session.begin():
            applied = await apply_transactions(session, chunk, PROGRAM, fees)
            await save_checkpoint(session, name, chunk[-1].checkpoint)
            fees = applied.fees
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    async with database.session() as session, session.begin():
        replay = await apply_transactions(session, batches[:size], PROGRAM, fees)
    replay_ms = (time.perf_counter() - started) * 1000
    await database.dispose()
    assert replay.new_events == 0
    return seconds, replay_ms


async def catch_up(url: str, coder: IdlCoder, raw: Raw, size: int, redis: bool) -> float:
    """Seconds `Indexer.run` takes from an empty database to the history's last transaction."""
    options: dict[str, Any] = {"database_url": url, "_env_file": None}
    if redis:
        options |= {"redis_url": REDIS_URL, "redis_prefix": f"bench-{uuid.uuid4().hex[:6]}:"}
    container = Container.build(Settings(**options))
    last = raw[-1][1]
    indexer = Indexer(
        container,
        OfflineClient(last),  # type: ignore[arg-type]
        HistoryStream(coder, raw),  # type: ignore[arg-type]
        max_batch=size,
    )
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(indexer.run(stop))
    while indexer.checkpoint_slot != last:
        await indexer.indexed.wait()
        indexer.indexed.clear()
    seconds = time.perf_counter() - started
    stop.set()
    await task
    await container.close()
    return seconds


async def main() -> None:
    default_batch = IndexerSettings().max_batch
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--batch",
        type=int,
        default=default_batch,
        help=f"transactions per DB transaction (default: INDEXER_MAX_BATCH, {default_batch})",
    )
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--wallets", type=int, default=500)
    parser.add_argument("--redis", action="store_true", help="catch-up with Redis cache and bus")
    args = parser.parse_args()
    coder = IdlCoder(Idl.from_path(BUNDLED_IDL))
    raw = history(coder, args.events, args.markets, args.wallets)

    started = time.perf_counter()
    batches = [decoded(coder, signature, slot, logs) for signature, slot, logs in raw]
    decode_seconds = time.perf_counter() - started
    total = sum(len(b.events) for b in batches)

    async with scratch_database("indexer") as url:
        persist_seconds, replay_ms = await persist(url, batches, args.batch)
    del batches
    async with scratch_database("indexer_catchup") as url:
        catch_up_seconds = await catch_up(url, coder, raw, args.batch, args.redis)
    lag = REGISTRY.get_sample_value("marketd_indexer_lag_slots") or 0.0

    print(f"events                     {total:>10,}")
    print(f"decode                     {total / decode_seconds:>10,.0f} events/s")
    print(
        f"persist (PostgreSQL)       {total / persist_seconds:>10,.0f} events/s"
        f"  (batches of {args.batch} tx, with checkpoint)"
    )
    print(
        f"decode + persist           {total / (decode_seconds + persist_seconds):>10,.0f} events/s"
        "  (one after the other)"
    )
    where = "Redis" if args.redis else "in-process"
    print(
        f"catch-up, Indexer.run      {total / catch_up_seconds:>10,.0f} events/s"
        f"  (decode, queue, batches <= {args.batch} tx, checkpoint, {where} cache + bus)"
    )
    print(f"catch-up of {total:,} events {catch_up_seconds:>8.1f} s  (lag gauge after: {lag:.0f})")
    print(f"replay of {args.batch} known tx      {replay_ms:>8.1f} ms (nothing applied)")


if __name__ == "__main__":
    asyncio.run(main())
