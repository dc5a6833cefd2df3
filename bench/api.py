"""API benchmark (issue 2): PostgreSQL + Redis, 10,000 markets and 1,000,000 votes seeded,
then 100 and 1,000 concurrent simulated users against one `marketd serve` process.

Each simulated user signs in once (real SIWS with an ed25519 key) and then loops: think
(exponential, mean THINK seconds), then one request drawn from the mix below. The same
users then hit `/healthz` only: the ceiling of this server and this client on this machine.

    .venv/bin/python bench/api.py [--duration 30] [--users 100,1000] [--think 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from solders.keypair import Keypair

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REDIS_URL, free_port, percentiles, scratch_database, server_process
from marketd.chain.addresses import market_address
from marketd.config import DEFAULT_PROGRAM_ID

MARKETS = 10_000
VOTES = int(__import__("os").environ.get("BENCH_VOTES", 1_000_000))
CATEGORIES = ["crypto", "sports", "politics", "tech", "science", "culture", "economy"]
STATES = ["PROPOSED"] * 4 + ["ACTIVE"] * 4 + ["APPROVED", "RESOLVING", "DISPUTED", "FINALIZED"]


async def seed(url: str) -> list[str]:
    """COPY the markets and votes in (the ORM would take minutes for a million rows)."""
    from solders.pubkey import Pubkey

    program = Pubkey.from_string(DEFAULT_PROGRAM_ID)
    rng = random.Random(1)
    now = datetime.now(UTC)
    wallets = [str(Keypair.from_seed(rng.randbytes(32)).pubkey()) for _ in range(2_000)]
    market_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(MARKETS)]
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        market_rows = []
        for index, market_id in enumerate(market_ids):
            created = now - timedelta(minutes=index)
            market_rows.append(
                (
                    market_id,
                    str(market_address(program, market_id)),
                    f"Will benchmark market {index} resolve YES?",
                    None,
                    CATEGORIES[index % len(CATEGORIES)],
                    [],
                    wallets[index % len(wallets)],
                    None,
                    STATES[index % len(STATES)],
                    10**11,
                    10**10,
                    10**10,
                    0,
                    0,
                    0.5,
                    0.5,
                    rng.randint(0, 10**12),
                    None,
                    None,
                    None,
                    0,
                    0,
                    0,
                    0,
                    created,
                    None,
                    None,
                    None,
                    None,
                    False,
                    created,
                )
            )
        columns = [
            "id",
            "on_chain_address",
            "question",
            "description",
            "category",
            "tags",
            "creator_wallet",
            "resolver_wallet",
            "state",
            "b_parameter",
            "initial_liquidity",
            "current_liquidity",
            "shares_yes",
            "shares_no",
            "current_price_yes",
            "current_price_no",
            "total_volume",
            "proposed_outcome",
            "final_outcome",
            "ipfs_evidence_hash",
            "proposal_likes",
            "proposal_dislikes",
            "dispute_agree",
            "dispute_disagree",
            "created_at",
            "approved_at",
            "activated_at",
            "resolution_proposed_at",
            "finalized_at",
            "is_cancelled",
            "updated_at",
        ]
        await connection.copy_records_to_table("markets", records=market_rows, columns=columns)
        await connection.copy_records_to_table(
            "market_schedules",
            records=[(m, now + timedelta(hours=i + 1)) for i, m in enumerate(market_ids)],
            columns=["market_id", "closes_at"],
        )
        per_market = VOTES // MARKETS
        votes = (
            (
                uuid.uuid4(),
                market_id,
                wallets[(i * 7 + j) % len(wallets)],
                rng.random() < 0.7,
                now,
                None,
            )
            for i, market_id in enumerate(market_ids)
            for j in range(per_market)
        )
        await connection.copy_records_to_table(
            "proposal_votes",
            records=votes,
            columns=["id", "market_id", "user_wallet", "vote", "voted_at", "tx_signature"],
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return market_ids


class User:
    def __init__(
        self, client: aiohttp.ClientSession, markets: list[str], proposed: list[str]
    ) -> None:
        self.client, self.markets, self.proposed = client, markets, proposed
        self.keypair = Keypair()
        self.headers: dict[str, str] = {}
        self.rng = random.Random()

    async def sign_in(self) -> None:
        wallet = {"wallet": str(self.keypair.pubkey())}
        async with self.client.post("/api/auth/challenge", json=wallet) as challenge:
            message = (await challenge.json())["message"]
        signature = str(self.keypair.sign_message(message.encode()))
        body = {"message": message, "signature": signature}
        async with self.client.post("/api/auth/verify", json=body) as verified:
            token = (await verified.json())["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self) -> tuple[str, str, str, dict[str, object] | None, dict[str, object] | None]:
        """(label, method, path, params, json) of the next request of the mix."""
        draw = self.rng.random()
        market = self.rng.choice(self.markets)
        if draw < 0.30:
            category = self.rng.choice(CATEGORIES)
            params = {"category": category, "sort": self.rng.choice(["newest", "volume"])}
            return "list markets", "GET", "/api/markets", params, None
        if draw < 0.35:
            return (
                "search markets",
                "GET",
                "/api/markets",
                {"q": str(self.rng.randint(0, 9999))},
                None,
            )
        if draw < 0.60:
            return "market detail", "GET", f"/api/markets/{market}", None, None
        if draw < 0.72:
            return "market votes", "GET", f"/api/markets/{market}/votes", {"limit": 20}, None
        if draw < 0.84:
            return "discussions", "GET", f"/api/discussions/{market}", None, None
        if draw < 0.94:
            body = {"market_id": self.rng.choice(self.proposed), "vote": self.rng.random() < 0.7}
            return "post vote", "POST", "/api/votes/proposal", None, body
        body = {"market_id": market, "content": "Benchmark post " + uuid.uuid4().hex}
        return "post discussion", "POST", "/api/discussions", None, body


async def drive(
    base: str,
    users: int,
    duration: float,
    think: float,
    markets: list[str],
    proposed: list[str],
    trivial: bool,
) -> dict[str, object]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=users)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:
        population = [User(client, markets, proposed) for _ in range(users)]
        if not trivial:
            for start in range(0, users, 50):  # sign in, 50 at a time
                await asyncio.gather(*(u.sign_in() for u in population[start : start + 50]))
        deadline = time.monotonic() + duration

        async def run(user: User) -> None:
            await asyncio.sleep(user.rng.random() * think)  # spread the first requests
            while time.monotonic() < deadline:
                if trivial:
                    label, method, path, params, body = "healthz", "GET", "/healthz", None, None
                else:
                    label, method, path, params, body = user.request()
                started = time.perf_counter()
                try:
                    async with client.request(
                        method, path, params=params, json=body, headers=user.headers
                    ) as response:
                        await response.read()
                        if response.status >= 400:
                            errors[f"{label} {response.status}"] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    errors[f"{label} {type(exc).__name__}"] += 1
                latencies[label].append(time.perf_counter() - started)
                await asyncio.sleep(user.rng.expovariate(1 / think))

        started = time.monotonic()
        await asyncio.gather(*(run(u) for u in population))
        elapsed = time.monotonic() - started
    every = [value for values in latencies.values() for value in values]
    return {
        "requests": len(every),
        "throughput": len(every) / elapsed,
        "overall": percentiles(every),
        "routes": {label: (len(v), percentiles(v)) for label, v in sorted(latencies.items())},
        "errors": dict(errors),
    }


def report(title: str, result: dict[str, object]) -> None:
    overall = result["overall"]
    assert isinstance(overall, dict)
    print(f"\n== {title}")
    print(
        f"requests {result['requests']}, throughput {result['throughput']:.0f} req/s, "
        f"p50 {overall['p50']:.1f} ms, p95 {overall['p95']:.1f} ms, p99 {overall['p99']:.1f} ms, "
        f"errors {sum(result['errors'].values()) if isinstance(result['errors'], dict) else 0}"
    )
    routes = result["routes"]
    assert isinstance(routes, dict)
    for label, (count, figures) in routes.items():
        p50, p95, p99 = figures["p50"], figures["p95"], figures["p99"]
        print(f"   {label:16} n={count:6}  p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f} ms")
    if result["errors"]:
        print(f"   errors: {result['errors']}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--users", default="100,1000")
    parser.add_argument("--think", type=float, default=2.0)
    args = parser.parse_args()
    async with scratch_database("api") as url:
        started = time.monotonic()
        markets = await seed(url)
        print(f"seeded {MARKETS} markets and {VOTES} votes in {time.monotonic() - started:.1f} s")
        proposed = [m for i, m in enumerate(markets) if STATES[i % len(STATES)] == "PROPOSED"]
        port = free_port()
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:",
            # Every simulated user shares 127.0.0.1; the budget is per user in production.
            "RATE_LIMIT": "1000000/minute",
            "DATABASE_POOL_SIZE": "20",
            "WORKERS": os.environ.get("BENCH_WORKERS", "1"),
        }
        with server_process(env, port):
            base = f"http://127.0.0.1:{port}"
            for users in (int(u) for u in args.users.split(",")):
                result = await drive(
                    base, users, args.duration, args.think, markets, proposed, False
                )
                report(f"{users} users, mixed traffic, think {args.think}s", result)
                ceiling = await drive(
                    base, users, args.duration, args.think, markets, proposed, True
                )
                report(f"{users} users, ceiling (GET /healthz)", ceiling)


if __name__ == "__main__":
    asyncio.run(main())
