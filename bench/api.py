"""API benchmark (issue 2): PostgreSQL + Redis, 10,000 markets and 1,000,000 votes seeded,
then 100 and 1,000 concurrent simulated users against one `marketd serve` with BENCH_WORKERS
worker processes (default 1: here the load generator, PostgreSQL and Redis share the machine's
two cores with the server, and one worker measured better than two: p95 ~90-110 ms against
~140-190 ms at 1,000 users, before the one-call rate limiter and the prebuilt statements; on a
machine of its own, use one per core as docs/deploy.md says).

Each simulated user signs in once (real SIWS with an ed25519 key) and then loops: think
(exponential, mean THINK seconds), then one request drawn from the mix (`traffic.User`), on a
market picked by Zipf popularity (`--popularity uniform` to pick uniformly). `--warmup` seconds
of the same traffic run unrecorded first, so the figures are the steady state of a running
service (its page cache filled), not its first seconds. The same users then hit `/healthz`
only: the ceiling of this server and this client on this machine. Throughput counts the
requests completed within the window.

    [BENCH_WORKERS=1] .venv/bin/python bench/api.py [--duration 30] [--users 100,1000]
        [--think 2.0] [--warmup 20] [--popularity zipf|uniform] [--server-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REDIS_URL,
    SIMULATED_CLIENTS,
    drop_redis_prefix,
    free_port,
    scratch_database,
    server_process,
)
from traffic import (
    MARKETS,
    SLICE_SECONDS,
    VOTES,
    Balancer,
    Catalog,
    HealthzUser,
    Recorder,
    Summary,
    User,
    add_popularity_argument,
    drive,
    seed,
    summarise,
)


async def run(
    base: str, users: int, duration: float, think: float, warmup: float, catalog: Catalog
) -> Summary:
    """Sign every user in (50 at a time, before the clock starts), drive the mix for `warmup`
    seconds unrecorded (the page cache fills as it would in a running service), then measure
    the same traffic for `duration` seconds."""
    recorder = Recorder()
    async with Balancer([base], connections=users) as http:
        population = [User(http, catalog, recorder) for _ in range(users)]
        for start in range(0, users, 50):
            await asyncio.gather(*(u.sign_in() for u in population[start : start + 50]))
        await drive(population, recorder, duration, think, warmup)
    return summarise(recorder)


async def ceiling(
    base: str, users: int, duration: float, think: float, catalog: Catalog
) -> Summary:
    recorder = Recorder()
    async with Balancer([base], connections=users) as http:
        population: list[User] = [HealthzUser(http, catalog, recorder) for _ in range(users)]
        await drive(population, recorder, duration, think)
    return summarise(recorder)


def report(title: str, result: Summary) -> None:
    overall = result.overall
    print(f"\n== {title}")
    print(
        f"requests {result.requests}, throughput {result.throughput:.0f} req/s, "
        f"p50 {overall['p50']:.1f} ms, p95 {overall['p95']:.1f} ms, p99 {overall['p99']:.1f} ms, "
        f"errors {result.unexpected + sum(result.expected_errors.values())}"
    )
    for label, route in result.routes.items():
        p50, p95, p99 = route.figures["p50"], route.figures["p95"], route.figures["p99"]
        hits = "" if route.cache_hits is None else f"  cache hits {route.cache_hits:.0%}"
        print(
            f"   {label:16} n={route.count:6}  p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f} ms"
            + hits
        )
    slices = ", ".join(f"{p95:.0f}" for p95 in result.p95_by_slice)
    print(f"   p95 (ms) of each {SLICE_SECONDS} s of the window: {slices}")
    errors = result.errors | result.expected_errors
    if errors:
        print(f"   errors: {errors}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--users", default="100,1000")
    parser.add_argument("--think", type=float, default=2.0)
    parser.add_argument(
        "--warmup", type=float, default=20.0, help="seconds of the same traffic, unrecorded"
    )
    add_popularity_argument(parser)
    parser.add_argument("--server-log", type=Path, help="append the server's output here")
    args = parser.parse_args()
    async with scratch_database("api") as url:
        started = time.monotonic()
        catalog = Catalog.of(await seed(url), zipf=args.popularity == "zipf")
        print(f"seeded {MARKETS} markets and {VOTES} votes in {time.monotonic() - started:.1f} s")
        port = free_port()
        prefix = f"bench-{uuid.uuid4().hex[:6]}:"
        workers = int(os.environ.get("BENCH_WORKERS", "1"))
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            **SIMULATED_CLIENTS,
            # PostgreSQL allows 100 connections: 80 in all, split between the worker
            # processes.
            "DATABASE_POOL_SIZE": str(80 // workers),
            "WORKERS": str(workers),
        }
        try:
            with server_process(env, port, log=args.server_log):
                base = f"http://127.0.0.1:{port}"
                for users in (int(u) for u in args.users.split(",")):
                    result = await run(base, users, args.duration, args.think, args.warmup, catalog)
                    title = f"{users} users, mixed traffic, think {args.think:g} s"
                    report(f"{title}, after {args.warmup:g} s of warm-up", result)
                    top = await ceiling(base, users, args.duration, args.think, catalog)
                    report(f"{users} users, ceiling (GET /healthz)", top)
        finally:
            await drop_redis_prefix(prefix)


if __name__ == "__main__":
    asyncio.run(main())
