"""Chain benchmark (issue 3): event decoding and transactions through the local JSON-RPC endpoint.

1. Events decoded per second: real "Program data:" log lines (from buy_shares transactions run
   by the twin of zmart_core) parsed with `parse_program_events` (invocation stack + IDL decode).
2. Transactions per second: signed system transfers and 0.1 SOL buy_shares (alternating
   outcomes) sent with solana-py's `AsyncClient` to `serve_local_rpc` (LiteSVM behind a uvicorn
   JSON-RPC server), with and without preflight, `CONCURRENCY` requests in flight, then
   confirmed with getSignatureStatuses. Signing happens outside the timed part.
3. The cost of the faithful math: compute units per buy_shares on the twin (1 SOL buys,
   alternating outcomes, on a fresh b = 100 SOL market), and microseconds per call of the
   twin's C LMSR compiled for the host (ctypes call included).

    .venv/bin/python bench/chain.py [--transactions 500] [--concurrency 16] [--log-sets 20000]
                                    [--buys 50] [--math-calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from marketd.chain.addresses import market_id_bytes, new_market_id
from marketd.chain.client import ChainClient
from marketd.chain.events import parse_program_events
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.build import program_artifact
from marketd.chain.localnet.rpc_server import serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.localnet.twin_math import HostLmsr, build_host_library
from marketd.chain.program import BUNDLED_IDL
from marketd.config import DEFAULT_PROGRAM_ID

SOL = 1_000_000_000
PROGRAM_ID = Pubkey.from_string(DEFAULT_PROGRAM_ID)
BATCH = 100  # < the local chain's 150-block blockhash lifetime


class Bench:
    """A local chain with the twin program, an admin and one active market."""

    def __init__(
        self, client: ChainClient, chain: LocalChain, target_cost: int = SOL // 10
    ) -> None:
        self.client = client
        self.chain = chain
        self.target_cost = target_cost
        self.admin = self.funded(1_000 * SOL)
        self.fee_wallet = self.funded(SOL)
        self.nonce = 0
        self._market: str | None = None

    def funded(self, lamports: int) -> Keypair:
        keypair = Keypair()
        self.chain.airdrop(keypair.pubkey(), lamports)
        return keypair

    def sign(self, instructions: Sequence[Instruction], signers: Sequence[Keypair]) -> bytes:
        self.nonce += 1
        blockhash, _ = self.chain.latest_blockhash
        message = Message.new_with_blockhash(
            [set_compute_unit_limit(400_000 + self.nonce), *instructions],
            signers[0].pubkey(),
            blockhash,
        )
        return bytes(VersionedTransaction(message, list(signers)))

    def run(self, name: str, args: dict[str, object], accounts: dict[str, Pubkey]) -> None:
        raw = self.sign([self.client.instruction(name, args, accounts)], [self.admin])
        signature = self.chain.send_transaction(VersionedTransaction.from_bytes(raw))
        record = self.chain.get_record(str(signature))
        assert record is not None and record.err is None, (name, record)

    def active_market(self) -> str:
        """The benchmark's market (created, approved and activated on first use)."""
        if self._market is None:
            self._market = self._create_active_market()
        return self._market

    def _create_active_market(self) -> str:
        client = self.client
        config = client.global_config_address()
        self.run(
            "initialize_global_config",
            {"backend_authority": self.admin.pubkey()},
            {
                "admin": self.admin.pubkey(),
                "global_config": config,
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
        )
        market_id = new_market_id()
        market = client.market_address(market_id)
        self.run(
            "create_market",
            {
                "market_id": market_id_bytes(market_id),
                "b_parameter": 100 * SOL,
                "initial_liquidity": 10 * SOL,
                "ipfs_question_hash": b"Q" * 46,
            },
            {"creator": self.admin.pubkey(), "market": market, "global_config": config},
        )
        backend = {"market": market, "global_config": config}
        self.run(
            "aggregate_proposal_votes",
            {"final_likes": 9, "final_dislikes": 1},
            {**backend, "backend_authority": self.admin.pubkey()},
        )
        self.run("approve_proposal", {}, {**backend, "admin": self.admin.pubkey()})
        self.run("activate_market", {}, {**backend, "authority": self.admin.pubkey()})
        return market_id

    def buy(self, user: Keypair, market_id: str) -> bytes:
        market = self.client.market_address(market_id)
        instruction = self.client.instruction(
            "buy_shares",
            {"outcome": self.nonce % 2 == 0, "target_cost": self.target_cost},
            {
                "global_config": self.client.global_config_address(),
                "market": market,
                "position": self.client.position_address(market, user.pubkey()),
                "user": user.pubkey(),
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
        )
        return self.sign([instruction], [user])

    def transfer(self, payer: Keypair) -> bytes:
        pay = transfer(
            TransferParams(
                from_pubkey=payer.pubkey(), to_pubkey=self.fee_wallet.pubkey(), lamports=1_000
            )
        )
        return self.sign([pay], [payer])


async def send_all(
    client: ChainClient, raws: list[bytes], concurrency: int, skip_preflight: bool
) -> float:
    """Seconds to send `raws` and see every one confirmed."""
    gate = asyncio.Semaphore(concurrency)

    async def send(raw: bytes) -> str:
        async with gate:
            return await client.send(raw, skip_preflight=skip_preflight)

    started = time.perf_counter()
    signatures = await asyncio.gather(*(send(raw) for raw in raws))
    for start in range(0, len(signatures), 256):
        states = await client.signature_statuses(signatures[start : start + 256])
        assert all(state is not None and state.err is None for state in states), states
    return time.perf_counter() - started


async def transactions_per_second(
    bench: Bench, kind: str, count: int, concurrency: int, skip_preflight: bool
) -> float:
    # A fresh blockhash first, so the funding airdrops and the batches start a new lifetime.
    bench.chain.expire_blockhash()
    market_id = bench.active_market() if kind == "buy_shares" else ""
    payers = [bench.funded(10 * SOL) for _ in range(min(count, 50))]
    elapsed = 0.0
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        # A fresh blockhash per batch, so no transaction outlives it.
        bench.chain.expire_blockhash()
        raws = [
            bench.buy(payers[(start + i) % len(payers)], market_id)
            if kind == "buy_shares"
            else bench.transfer(payers[(start + i) % len(payers)])
            for i in range(size)
        ]
        elapsed += await send_all(bench.client, raws, concurrency, skip_preflight)
    return count / elapsed


def events_per_second(bench: Bench, coder: IdlCoder, log_sets: int) -> tuple[float, int]:
    logs = [
        record.logs
        for record in bench.chain.records()
        if record.err is None and any(line.startswith("Program data: ") for line in record.logs)
    ]
    assert logs, "no program events on the chain to decode"
    sample = [logs[i % len(logs)] for i in range(log_sets)]
    started = time.perf_counter()
    decoded = sum(len(parse_program_events(lines, PROGRAM_ID, coder)) for lines in sample)
    return decoded / (time.perf_counter() - started), decoded


def compute_units_per_buy(client: ChainClient, buys: int) -> list[int]:
    """Compute units of `buys` 1 SOL buys (alternating outcomes, distinct buyers) on a fresh
    b = 100 SOL market (the compute-budget instruction included)."""
    chain = LocalChain()
    chain.load_program(PROGRAM_ID, program_artifact())
    bench = Bench(client, chain, target_cost=SOL)
    market_id = bench.active_market()
    units = []
    for _ in range(buys):
        raw = bench.buy(bench.funded(10 * SOL), market_id)
        signature = chain.send_transaction(VersionedTransaction.from_bytes(raw))
        record = chain.get_record(str(signature))
        assert record is not None and record.err is None, record
        units.append(record.compute_units)
    return units


def microseconds_per_call(calls: int) -> dict[str, float]:
    """Host-side cost of the twin's C math (the same lmsr.h the program runs), per call."""
    with tempfile.TemporaryDirectory() as tmp:
        lmsr = HostLmsr(build_host_library(Path(tmp)))
        b, seed = 100 * SOL, 100 * SOL // 1000
        timings = {}
        for name, call in (
            ("cost", lambda i: lmsr.cost(seed + i * 1_000_000, seed, b)),
            ("yes_price", lambda i: lmsr.yes_price(seed + i * 1_000_000, seed, b)),
            ("buy (bisection)", lambda i: lmsr.buy(seed + i * 1_000_000, seed, b, True, SOL)),
        ):
            count = calls if name != "buy (bisection)" else max(calls // 20, 1)
            started = time.perf_counter()
            for i in range(count):
                call(i)
            timings[name] = (time.perf_counter() - started) / count * 1e6
        return timings


def report_math_cost(client: ChainClient, buys: int, calls: int) -> None:
    print(f"faithful math: compute units per 1 SOL buy_shares ({buys} buys)")
    units = compute_units_per_buy(client, buys)
    print(f"  twin     median {statistics.median(units):8,.0f} CU  max {max(units):8,} CU")
    for name, micros in microseconds_per_call(calls).items():
        print(f"  host C {name:<16} {micros:8.2f} µs/call (ctypes included)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--log-sets", type=int, default=20_000)
    parser.add_argument("--buys", type=int, default=50)
    parser.add_argument("--math-calls", type=int, default=20_000)
    options = parser.parse_args()
    coder = IdlCoder(Idl.from_path(BUNDLED_IDL))
    chain = LocalChain()
    chain.load_program(PROGRAM_ID, program_artifact())
    async with serve_local_rpc(chain) as endpoint:
        client = ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed), coder, PROGRAM_ID
        )
        async with client:
            bench = Bench(client, chain)
            print(
                f"local JSON-RPC endpoint (twin), {options.transactions} "
                f"transactions each, {options.concurrency} in flight"
            )
            for kind in ("transfer", "buy_shares"):
                for skip_preflight in (False, True):
                    rate = await transactions_per_second(
                        bench, kind, options.transactions, options.concurrency, skip_preflight
                    )
                    mode = "no preflight" if skip_preflight else "preflight"
                    print(f"  {kind:<10} {mode:<12} {rate:8.0f} tx/s (sent + confirmed)")
            rate, decoded = events_per_second(bench, coder, options.log_sets)
            print(
                f"event decoding: {rate:,.0f} events/s "
                f"({decoded} events from {options.log_sets} transactions' logs)"
            )
            report_math_cost(client, options.buys, options.math_calls)


if __name__ == "__main__":
    asyncio.run(main())
