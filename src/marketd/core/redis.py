"""The shared Redis client (cache, bus, locks, rate limits) when REDIS_URL is set."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

MAX_CONNECTIONS = 200
"""Per process. A burst beyond it waits (up to POOL_TIMEOUT_SECONDS) for a free connection
instead of failing with "Too many connections", which the default pool does at once."""
POOL_TIMEOUT_SECONDS = 10


def create_redis(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_TIMEOUT_SECONDS,
        decode_responses=False,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
