"""Core building blocks without the HTTP layer: cursors, client IPs, bus, cache, config."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from ipaddress import ip_network

import pytest
from redis.asyncio import Redis

from marketd.config import Settings, normalise_database_url
from marketd.core.bus import InProcessBus, RedisBus
from marketd.core.cache import MemoryCache, RedisCache
from marketd.core.clientip import client_ip
from marketd.core.errors import validation_error
from marketd.core.pagination import InvalidCursor, decode_cursor, encode_cursor


def test_cursor_round_trip_and_rejections():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cursor = encode_cursor("newest", [moment, "id-1"])
    assert decode_cursor(cursor, "newest", (datetime, str)) == [moment, "id-1"]
    assert decode_cursor(encode_cursor("v", [5, "x"]), "v", (int, str)) == [5, "x"]
    bad = [
        (encode_cursor("v", [None, "x"]), "v", (datetime, str)),  # no listing's cursor holds null
        ("!!!", "newest", (datetime, str)),
        (cursor, "volume", (datetime, str)),
        (cursor, "newest", (datetime,)),
        (encode_cursor("v", ["2026-01-01T00:00:00", "x"]), "v", (datetime, str)),
        (encode_cursor("v", ["5", "x"]), "v", (int, str)),
        (encode_cursor("v", [True, "x"]), "v", (int, str)),
        (encode_cursor("v", [5, 6]), "v", (int, str)),
        (encode_cursor("v", [5]), "v", (float,)),
    ]
    for value, sort, types in bad:
        with pytest.raises(InvalidCursor):
            decode_cursor(value, sort, types)


def test_client_ip_trusts_forwarded_headers_only_from_proxies():
    proxies = [ip_network("10.0.0.0/8")]
    headers = [(b"x-forwarded-for", b"198.51.100.7, 10.1.1.1")]
    scope = {"client": ("10.0.0.5", 1), "headers": headers}
    assert client_ip(scope, proxies) == "198.51.100.7"
    assert client_ip(scope, []) == "10.0.0.5"
    assert client_ip({"client": ("192.0.2.1", 1), "headers": headers}, proxies) == "192.0.2.1"
    assert client_ip({"client": ("10.0.0.5", 1), "headers": []}, proxies) == "10.0.0.5"
    only_proxies = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"10.2.2.2")]}
    assert client_ip(only_proxies, proxies) == "10.2.2.2"
    empty = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b" , ")]}
    assert client_ip(empty, proxies) == "10.0.0.5"
    garbage = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"not-an-ip")]}
    assert client_ip(garbage, proxies) == "not-an-ip"
    assert client_ip({"headers": []}, proxies) == "unknown"


async def test_in_process_bus_delivers_to_topic_subscribers_only():
    bus = InProcessBus()
    async with bus.subscribe("votes") as votes, bus.subscribe("trades") as trades:
        await bus.publish("votes", {"type": "vote", "n": 1})
        assert await asyncio.wait_for(votes.get(), 1) == {"type": "vote", "n": 1}
        assert trades._queue.empty()
    await bus.publish("votes", {"after": "unsubscribe"})  # no subscriber left: no error
    await bus.close()


async def test_redis_bus_crosses_instances(redis_url, redis_prefix):
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        publisher, listener = RedisBus(first, redis_prefix), RedisBus(second, redis_prefix)
        async with listener.subscribe("markets") as events:
            await publisher.publish("markets", {"type": "market_state_change", "seq": 1})
            received = await asyncio.wait_for(events.__aiter__().__anext__(), 5)
        assert received == {"type": "market_state_change", "seq": 1}
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_cache_get_set_delete_and_expiry(kind, redis_url, redis_prefix):
    client = Redis.from_url(redis_url) if kind == "redis" else None
    cache = RedisCache(client, redis_prefix) if client else MemoryCache(max_entries=2)
    try:
        await cache.set("a", {"x": 1}, ttl_seconds=60)
        assert await cache.get("a") == {"x": 1}
        await cache.delete("a")
        assert await cache.get("a") is None
        await cache.set("gone", 1, ttl_seconds=-1 if kind == "memory" else 1)
        if kind == "memory":
            assert await cache.get("gone") is None
        await cache.delete()
    finally:
        if client:
            await client.aclose()


async def test_memory_cache_evicts_oldest_when_full():
    cache = MemoryCache(max_entries=2)
    for key in "abc":
        await cache.set(key, key, ttl_seconds=60)
    assert await cache.get("a") is None
    assert await cache.get("c") == "c"


def test_settings_parse_lists_and_database_urls():
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        cors_origins="https://a.example, https://b.example",
        trusted_proxies="10.0.0.0/8,127.0.0.1",
        database_url="postgres://u:secret@db:5432/app",
    )
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert len(settings.trusted_proxy_networks) == 2
    assert settings.database_dsn == "postgresql+asyncpg://u:secret@db:5432/app"
    assert "secret" not in repr(settings)
    assert normalise_database_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert Settings(_env_file=None, environment="production").json_logs  # type: ignore[call-arg]
    assert not Settings(_env_file=None).json_logs  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Settings(_env_file=None, trusted_proxies="not-a-network")  # type: ignore[call-arg]


def test_validation_errors_drop_pydantic_prefixes_only_where_pydantic_adds_them() -> None:
    assertion = {"type": "assertion_error", "loc": ("body", "x"), "msg": "Assertion failed, no"}
    assert validation_error(assertion)["message"] == "no"
    other = {"type": "string_too_short", "loc": ("query", "q"), "msg": "Value error, kept"}
    assert validation_error(other) == {
        "field": "query.q",
        "message": "Value error, kept",
        "code": "string_too_short",
    }
