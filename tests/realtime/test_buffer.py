"""Sequence numbers and the replay buffer (in-process and Redis)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from marketd.core.bus import InProcessBus, RedisBus
from marketd.realtime.buffer import (
    REALTIME_TOPIC,
    MemoryEventLog,
    RedisEventLog,
    replay_from,
    sequenced,
)


def test_sequenced_puts_seq_first_and_replaces_one():
    assert list(sequenced(3, {"type": "t", "seq": 99, "marketId": "m"}).items()) == [
        ("seq", 3),
        ("type", "t"),
        ("marketId", "m"),
    ]


@pytest.mark.parametrize(
    ("since", "head", "seqs", "complete", "replayed"),
    [
        (5, 5, [], True, []),
        (3, 5, [4, 5], True, [4, 5]),
        (0, 2, [1, 2], True, [1, 2]),
        (1, 5, [3, 4, 5], False, []),  # 2 was trimmed
        (1, 5, [], False, []),  # all trimmed
        (1, 5, [2, 3], False, []),  # head moved past what was read
        (9, 5, [], False, []),  # from the future
    ],
)
def test_replay_decision(since, head, seqs, complete, replayed):
    replay = replay_from(since, head, [{"seq": s} for s in seqs], seqs[0] if seqs else None)
    assert replay.complete is complete
    assert [event["seq"] for event in replay.events] == replayed
    assert (replay.head, replay.since_seq) == (head, since)


async def test_memory_log_sequences_per_market_publishes_and_trims():
    bus = InProcessBus()
    log = MemoryEventLog(bus, max_events=3)
    async with bus.subscribe(REALTIME_TOPIC) as subscription:
        for n in range(5):
            assert (await log.append("m", {"type": "t", "n": n}))["seq"] == n + 1
        assert (await log.append("other", {"type": "t"}))["seq"] == 1
        published = [await subscription.get() for _ in range(6)]
    assert [event["seq"] for event in published] == [1, 2, 3, 4, 5, 1]
    assert await log.head("m") == 5
    assert await log.head("never") == 0
    replay = await log.since("m", 2)
    assert replay.complete and [event["n"] for event in replay.events] == [2, 3, 4]
    gone = await log.since("m", 1)
    assert (gone.complete, gone.oldest) == (False, 3)
    assert (await log.since("never", 0)).complete


async def test_redis_log_sequences_once_and_replays(redis_url, redis_prefix):
    redis = Redis.from_url(redis_url)
    prefix = redis_prefix + "realtime-buffer:"
    log = RedisEventLog(redis, prefix, max_events=1000)
    other_instance = RedisEventLog(redis, prefix, max_events=1000)
    bus = RedisBus(redis, prefix)
    try:
        async with bus.subscribe(REALTIME_TOPIC) as subscription:
            first = await log.append("m", {"type": "t", "shares": 10**18, "seq": 7})
            assert first == {"seq": 1, "type": "t", "shares": 10**18}
            # The same event seen by another instance is not sequenced again.
            assert await other_instance.append("m", {"type": "t", "shares": 10**18}) is None
            second = await other_instance.append("m", {"type": "t", "shares": 2})
            assert second is not None and second["seq"] == 2
            assert [await subscription.get() for _ in range(2)] == [first, second]
        assert await log.head("m") == 2
        assert await log.head("never") == 0
        replay = await log.since("m", 0)
        assert replay.complete and replay.events == [first, second]
        assert replay.oldest == 1
        assert (await log.since("m", 2)).events == []
        empty = await log.since("never", 0)
        assert empty.complete and empty.oldest is None
    finally:
        await redis.aclose()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_append_many_sequences_in_order_in_one_call(backend, redis_url, redis_prefix):
    redis = Redis.from_url(redis_url)
    prefix = redis_prefix + "realtime-batch:"
    bus = RedisBus(redis, prefix) if backend == "redis" else InProcessBus()
    log = (
        RedisEventLog(redis, prefix, max_events=1000)
        if backend == "redis"
        else MemoryEventLog(bus, max_events=1000)
    )
    events = [
        {"type": "vote", "marketId": "a", "n": 1},
        {"type": "vote", "marketId": "b", "n": 1},
        {"type": "vote", "marketId": "a", "n": 2},
    ]
    try:
        async with bus.subscribe(REALTIME_TOPIC) as subscription:
            appended = await log.append_many(events)
            assert [(e["marketId"], e["seq"]) for e in appended if e] == [
                ("a", 1),
                ("b", 1),
                ("a", 2),
            ]
            published = [await subscription.get() for _ in range(3)]
        assert published == appended
        if backend == "redis":  # another instance sequencing the same events claims none
            again = await RedisEventLog(redis, prefix).append_many(events)
            assert again == [None, None, None]
        assert [e["n"] for e in (await log.since("a", 0)).events] == [1, 2]
    finally:
        await redis.aclose()


async def test_a_single_event_is_sequenced_in_one_round_trip(redis_url, redis_prefix, monkeypatch):
    """The sequencer's usual batch is one event: a plain EVALSHA, not a pipeline (whose
    execution first sends SCRIPT EXISTS for its scripts)."""
    redis = Redis.from_url(redis_url)
    log = RedisEventLog(redis, redis_prefix + "realtime-single:", max_events=1000)
    commands: list[str] = []
    execute = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        commands.append(str(args[0]))
        return await execute(*args, **options)

    monkeypatch.setattr(redis, "execute_command", counted)
    try:
        await log.append("m", {"type": "vote", "n": 0})  # loads the script once
        commands.clear()
        appended = await log.append_many([{"type": "vote", "marketId": "m", "n": 1}])
        assert [e and e["seq"] for e in appended] == [2]
        assert commands == ["EVALSHA"]
    finally:
        await redis.aclose()
