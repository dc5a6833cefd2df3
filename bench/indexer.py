"""Indexer throughput: program events decoded from logs and persisted into PostgreSQL.

Builds a synthetic history (markets created and activated, then buys and sells by many
wallets, as "Program data:" log lines encoded with the program's IDL), then times:

* decode: log lines -> decoded events (`parse_program_events`), events/s;
* persist: decoded transactions -> PostgreSQL via `apply_transactions` in batches (one DB
  transaction per batch, as the indexer writes a backfill), events/s;
* catch-up: decode + persist of the whole history (default 100,000 events).

RPC fetching is not included (it depends on the node); the local chain's backfill speed is
measured by tests/chain/test_stream.py. Usage: python bench/indexer.py [--events N] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from common import scratch_database
from marketd.chain.addresses import market_id_bytes
from marketd.chain.events import parse_program_events
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.program import BUNDLED_IDL
from marketd.chain.stream import StreamEvent, TransactionEvents
from marketd.config import (
    DEFAULT_PROGRAM_ID,
    Settings,
)
from marketd.core.database import Database, create_engine
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.store import apply_transactions

PROGRAM = Pubkey.from_string(DEFAULT_PROGRAM_ID)


def history(
    coder: IdlCoder, events: int, markets: int, wallets: int
) -> list[tuple[str, int, list[str]]]:
    """(signature, slot, logs) of transactions with one event each, oldest first."""
    users = [Keypair().pubkey() for _ in range(wallets)]
    ids = [str(uuid.uuid4()) for _ in range(markets)]
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="transactions per DB transaction")
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--wallets", type=int, default=500)
    args = parser.parse_args()
    coder = IdlCoder(Idl.from_path(BUNDLED_IDL))
    raw = history(coder, args.events, args.markets, args.wallets)

    started = time.perf_counter()
    batches = []
    for signature, slot, logs in raw:
        decoded = tuple(
            StreamEvent(signature, slot, 1_700_000_000, e.index, e.name, e.data, "confirmed")
            for e in parse_program_events(logs, PROGRAM, coder)
        )
        batches.append(
            TransactionEvents(
                signature, slot, 1_700_000_000, "confirmed", None, decoded, "backfill"
            )
        )
    decode_seconds = time.perf_counter() - started
    total = sum(len(b.events) for b in batches)

    async with scratch_database("indexer") as url:
        database = Database(create_engine(Settings(database_url=url, _env_file=None)))  # type: ignore[call-arg]
        started = time.perf_counter()
        fees = FeeSchedule()
        for start in range(0, len(batches), args.batch):
            async with database.session() as session, session.begin():
                applied = await apply_transactions(
                    session, batches[start : start + args.batch], PROGRAM, fees
                )
                fees = applied.fees
        persist_seconds = time.perf_counter() - started
        started = time.perf_counter()
        async with database.session() as session, session.begin():
            replay = await apply_transactions(session, batches[: args.batch], PROGRAM, fees)
        replay_seconds = time.perf_counter() - started
        await database.dispose()
    assert replay.new_events == 0

    print(f"events                     {total:>10,}")
    print(f"decode                     {total / decode_seconds:>10,.0f} events/s")
    print(
        f"persist (PostgreSQL)       {total / persist_seconds:>10,.0f} events/s"
        f"  (batch {args.batch} tx)"
    )
    print(
        f"decode + persist           {total / (decode_seconds + persist_seconds):>10,.0f} events/s"
    )
    print(f"catch-up of {total:,} events {decode_seconds + persist_seconds:>8.1f} s")
    print(
        f"replay of {args.batch} known tx      {replay_seconds * 1000:>8.1f} ms (nothing applied)"
    )


if __name__ == "__main__":
    asyncio.run(main())
