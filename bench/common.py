"""Shared helpers of the benchmarks: scratch databases, server processes, latency figures."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

PG_ADMIN_URL = os.environ.get("MARKETD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MARKETD_BENCH_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent

SIMULATED_CLIENTS = {
    "RATE_LIMIT": "1000000/minute",
    "SIGN_IN_RATE_LIMIT": "1000000/minute",
    "IP_WALLETS_LIMIT": "1000000",
    "VOTE_ELIGIBILITY": "any",
    "DISPUTE_VOTE_ELIGIBILITY": "any",
}
"""Server settings of a benchmark whose simulated clients all come from 127.0.0.1 with fresh
wallets: the production budgets (per address, per wallet, wallets per address) and the vote
eligibility strategies would refuse them, which is not what a benchmark measures."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def scratch_database(label: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database for one benchmark run, dropped afterwards."""
    from marketd.config import Settings
    from marketd.core.database import create_engine
    from marketd.core.migrate import upgrade

    name = f"marketd_bench_{label}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(Settings(_env_file=None, database_url=url))
    await upgrade(engine)
    await engine.dispose()
    try:
        yield url
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the benchmark process dies, however it dies
    (Linux prctl PR_SET_PDEATHSIG), so no server outlives a killed benchmark."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@contextlib.contextmanager
def server_process(
    env: dict[str, str], port: int, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`marketd serve` in its own process (the load comes from this one); its output goes to
    `log` when given. Terminated on exit, and by the kernel if this process dies first."""
    full_env = os.environ | env | {"HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING"}
    with contextlib.ExitStack() as files:
        output = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "marketd", "serve"],
            env=full_env,
            stdout=output,
            stderr=output,
            preexec_fn=die_with_parent,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with status {process.returncode}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise RuntimeError("server did not start")
            yield process
        finally:
            stop_process(process)


def stop_process(process: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds (e.g. clients still connected)."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def drop_redis_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete the keys a run left under `prefix` (rate limits, replay buffers, caches)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        await redis.aclose()


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(samples)
    cuts = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else [ordered[0]] * 99
    )
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}
