"""Server CPU per request, route by route (issues 2 and 8): where the time of a request goes
when nothing queues.

One client sends each kind of request `--requests` times in a row (after 20 unmeasured ones)
to one `marketd serve` on PostgreSQL + Redis with the bench data set (10,000 markets,
`--votes` votes); the figure is the server process's user + system CPU over those requests
divided by their number (from /proc, so ~10 ms tick resolution: use a few hundred requests or
more). Under load, CPU per request is what decides how many requests two cores serve before
they queue, which is why the latency benchmarks (api.py, load.py) move with these figures.

    .venv/bin/python bench/cost.py [--requests 400] [--votes 1000000] [KIND ...]

The front-end routes (issue 21) read trades loaded by `frontend_data.seed_trades`: a chart
market with 100,000 trades over 30 days, a long-lived one traded every hour for 340 days, 1,000
active markets traded in the last day. The uncached market list is `list page 2` (the page
cache serves first pages only), the figure the front-end routes are held to (within 2x); the
daily charts read the last 340 days (340 buckets): `prices 1d 30 days` of the first chart
market, `prices 1d 340 days` of the long-lived one (8,160 hour rollups).

KIND: any of the names printed (default all), e.g. `post vote` or `sign-in`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from solders.keypair import Keypair

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REDIS_URL,
    SIMULATED_CLIENTS,
    drop_redis_prefix,
    free_port,
    scratch_database,
    server_process,
)
from frontend_data import LONG_CHART_DAYS, seed_trades
from marketd.config import Settings
from traffic import VOTES, Catalog, TradeBuilder, seed
from ws import cpu_seconds


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class FrontEnd:
    """What the front-end routes' kinds need: the chart markets (100,000 trades; a trade an hour
    for 340 days) and cursors of second pages (rendered from PostgreSQL: later pages are never
    cached)."""

    chart: str
    long_chart: str
    list_cursor: str
    activity_cursor: str

    @property
    def year_ago(self) -> str:
        """The start of the daily charts' range: 340 days ago (340 buckets; it was a fixed
        2026-01-01, which would pass the 1,000 buckets a request may ask for in 2028)."""
        return (datetime.now(UTC) - timedelta(days=LONG_CHART_DAYS)).isoformat()


def kinds(catalog: Catalog, signer: Keypair, front: FrontEnd) -> dict[str, Callable[[int], Call]]:
    """Request `i` of each kind. `hit` kinds repeat one page (served from the page cache);
    `miss` kinds walk distinct markets or queries (rendered from PostgreSQL). `signer` is the
    signed-in client's wallet: its own profile, its trades, its portfolio."""
    markets, proposed, one = catalog.markets, catalog.proposed, catalog.markets[5]
    wallet, trades = str(signer.pubkey()), TradeBuilder(Settings(_env_file=None))

    def trade(i: int) -> Call:
        market_id, address = catalog.active[i % len(catalog.active)]
        # A fresh salt per call: every transaction (and its signature) is new.
        transaction = trades.build(
            signer, address, True, i % 2 == 0, 1_000_000, uuid.uuid4().bytes * 2
        )
        return Call(
            "POST", "/api/trades/buy", body={"market_id": market_id, "transaction": transaction}
        )

    return {
        "healthz": lambda i: Call("GET", "/healthz"),
        "list hit": lambda i: Call("GET", "/api/markets", {"category": "sports"}),
        "list page 2": lambda i: Call(
            "GET", "/api/markets", {"category": "sports", "cursor": front.list_cursor}
        ),
        "categories hit": lambda i: Call("GET", "/api/markets/categories"),
        "trending hit": lambda i: Call("GET", "/api/markets/trending"),
        "related hit": lambda i: Call("GET", f"/api/markets/{one}/related"),
        "related miss": lambda i: Call("GET", f"/api/markets/{markets[100 + i % 2900]}/related"),
        "activity hit": lambda i: Call("GET", "/api/activity"),
        "activity page 2": lambda i: Call(
            "GET", "/api/activity", {"cursor": front.activity_cursor}
        ),
        "prices 1h 100k": lambda i: Call("GET", f"/api/markets/{front.chart}/prices"),
        "prices 5m 100k": lambda i: Call(
            "GET", f"/api/markets/{front.chart}/prices", {"interval": "5m"}
        ),
        "prices 1d 30 days": lambda i: Call(
            "GET", f"/api/markets/{front.chart}/prices", {"interval": "1d", "from": front.year_ago}
        ),
        "prices 1d 340 days": lambda i: Call(
            "GET",
            f"/api/markets/{front.long_chart}/prices",
            {"interval": "1d", "from": front.year_ago},
        ),
        "positions": lambda i: Call("GET", f"/api/users/{wallet}/positions"),
        "portfolio": lambda i: Call("GET", f"/api/users/{wallet}/portfolio"),
        "search": lambda i: Call("GET", "/api/markets", {"q": str(1000 + i % 9000)}),
        "detail hit": lambda i: Call("GET", f"/api/markets/{one}"),
        "detail miss": lambda i: Call("GET", f"/api/markets/{markets[100 + i % 2900]}"),
        "votes miss": lambda i: Call("GET", f"/api/markets/{markets[3000 + i % 3000]}/votes"),
        "discussions miss": lambda i: Call("GET", f"/api/discussions/{markets[6000 + i % 4000]}"),
        "user profile": lambda i: Call("GET", f"/api/users/{wallet}"),
        "trades page": lambda i: Call("GET", f"/api/markets/{catalog.active[i % 500][0]}/trades"),
        "trade buy": trade,
        "post vote": lambda i: Call(
            "POST",
            "/api/votes/proposal",
            body={"market_id": proposed[i % len(proposed)], "vote": i % 3 != 0},
        ),
        "post discussion": lambda i: Call(
            "POST",
            "/api/discussions",
            body={"market_id": markets[i % len(markets)], "content": f"cost {uuid.uuid4().hex}"},
        ),
    }


async def sign_in(client: httpx.AsyncClient, keypair: Keypair) -> dict[str, str]:
    challenge = await client.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
    message = challenge.json()["message"]
    signature = str(keypair.sign_message(message.encode()))
    verified = await client.post(
        "/api/auth/verify", json={"message": message, "signature": signature}
    )
    verified.raise_for_status()
    return {"Authorization": f"Bearer {verified.json()['token']}"}


async def measure(pid: int, requests: int, send: Callable[[int], Any]) -> tuple[float, float, int]:
    """(server CPU µs per request, wall ms per request, errors) over `requests` sends."""
    for i in range(20):
        await send(requests + i)
    cpu, wall, errors = cpu_seconds(pid), time.perf_counter(), 0
    for i in range(requests):
        errors += not await send(i)
    per_request = (cpu_seconds(pid) - cpu) / requests
    return per_request * 1e6, (time.perf_counter() - wall) * 1e3 / requests, errors


def line(name: str, cpu: float, wall: float, errors: int) -> str:
    return f"  {name:18} {cpu:6.0f} µs CPU  {wall:5.2f} ms wall  errors {errors}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--votes", type=int, default=VOTES)
    parser.add_argument("kinds", nargs="*", help="kinds to measure (default: all)")
    args = parser.parse_args()
    async with scratch_database("cost") as url:
        catalog = Catalog.of(await seed(url, args.votes))
        keypair = Keypair()
        active = [(market_id, str(address)) for market_id, address in catalog.active]
        charts = await seed_trades(url, active, str(keypair.pubkey()))
        port, prefix = free_port(), f"bench-cost-{uuid.uuid4().hex[:6]}:"
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            **SIMULATED_CLIENTS,
            "WORKERS": "1",
        }
        try:
            with server_process(env, port) as server:
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base) as client:
                    headers = await sign_in(client, keypair)
                    listed = await client.get("/api/markets", params={"category": "sports"})
                    feed = await client.get("/api/activity")
                    front = FrontEnd(
                        charts.busy,
                        charts.long,
                        listed.json()["next_cursor"],
                        feed.json()["next_cursor"],
                    )
                    print(f"server CPU per request, {args.requests} requests each, one client")
                    for name, make in kinds(catalog, keypair, front).items():
                        if args.kinds and name not in args.kinds:
                            continue

                        async def send(i: int, make: Callable[[int], Call] = make) -> bool:
                            call = make(i)
                            response = await client.request(
                                call.method,
                                call.path,
                                params=call.params,
                                json=call.body,
                                headers=headers,
                            )
                            return response.status_code < 400

                        print(line(name, *await measure(server.pid, args.requests, send)))
                    if not args.kinds or "sign-in" in args.kinds:

                        async def sign_in_once(_: int) -> bool:
                            await sign_in(client, Keypair())
                            return True

                        figures = await measure(server.pid, args.requests, sign_in_once)
                        print(line("sign-in (2 req)", *figures))
        finally:
            await drop_redis_prefix(prefix)


if __name__ == "__main__":
    asyncio.run(main())
