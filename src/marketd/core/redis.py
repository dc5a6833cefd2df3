"""The shared Redis client (cache, bus, locks, rate limits) when REDIS_URL is set."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=False, health_check_interval=30)
