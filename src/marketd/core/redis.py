"""The shared Redis client (cache, bus, locks, rate limits) when REDIS_URL is set."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

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


class RedisUnreachable(Exception):
    """REDIS_URL is set but Redis does not answer; the message names it without secrets."""


def redacted(url: str) -> str:
    """`url` with any password replaced by `***` (REDIS_URL often carries one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


async def require_redis(url: str, timeout_seconds: float = 5.0) -> None:
    """Fail fast, before serving, when the configured Redis cannot be reached: every request
    and job needs it, and a process that starts without it fails later with tracebacks that
    do not say why."""
    client = Redis.from_url(url, socket_connect_timeout=timeout_seconds)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        reason = str(exc).replace(url, redacted(url)) or type(exc).__name__
        raise RedisUnreachable(
            f"cannot reach Redis at {redacted(url)} (REDIS_URL): {reason}"
        ) from None
    finally:
        await client.aclose()
