"""Per-market sequence numbers and the bounded replay buffer.

`append` gives an event the next `seq` of its market, stores it in the market's buffer (the
last `max_events`) and publishes the sequenced event on the bus topic `realtime`, which every
instance's fan-out listens to. With Redis, the three steps run in ONE Lua script, so

- the order of `seq` is the order of publication (two instances sequencing concurrently can
  never publish seq 6 before seq 5), and
- an event is sequenced once even though every instance sees it: the script first claims a
  de-duplication key derived from the event's content (`SET NX` with a TTL). The first instance
  to claim it sequences; the others get `None`. Producers that may publish two identical events
  within the TTL add a unique `eventId` (`marketd.core.events.publish` stamps one on every
  domain event).

Without Redis there is a single instance: an in-process counter and deque do the same job.
"""

from __future__ import annotations

import collections
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from marketd.config.realtime import DEFAULT_MAX_EVENTS
from marketd.core.bus import EventBus

REALTIME_TOPIC = "realtime"
DEDUP_TTL_SECONDS = 120
STREAM_TTL_SECONDS = 7 * 24 * 3600

SequencedEvent = dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """What a market's buffer holds after `since_seq`.

    `complete` is False when some of those events were trimmed (or `since_seq` is ahead of the
    market's head, e.g. after the buffer was reset): the client must resync from a snapshot.
    """

    since_seq: int
    events: list[SequencedEvent]
    complete: bool
    head: int
    oldest: int | None = None


@dataclass
class _MemoryMarket:
    head: int = 0
    events: collections.deque[SequencedEvent] = field(default_factory=collections.deque)


def replay_from(
    since_seq: int, head: int, events: list[SequencedEvent], oldest: int | None
) -> Replay:
    """Decide whether `events` (the buffered events after `since_seq`, ascending) are all the
    client missed."""
    if since_seq > head:
        return Replay(since_seq, [], False, head, oldest)
    if since_seq == head:
        return Replay(since_seq, [], True, head, oldest)
    complete = bool(events) and events[0]["seq"] == since_seq + 1 and events[-1]["seq"] == head
    return Replay(since_seq, events if complete else [], complete, head, oldest)


def sequenced(seq: int, event: dict[str, Any]) -> SequencedEvent:
    """The event with its `seq` first (a `seq` already in the event is replaced)."""
    return {"seq": seq} | {key: value for key, value in event.items() if key != "seq"}


class EventLog(ABC):
    @abstractmethod
    async def append(self, market_id: str, event: dict[str, Any]) -> SequencedEvent | None:
        """Sequence, buffer and publish `event`; None when another instance already did."""

    async def append_many(self, events: Sequence[dict[str, Any]]) -> list[SequencedEvent | None]:
        """`append` each event (each carries its `marketId`), in order."""
        return [await self.append(event["marketId"], event) for event in events]

    @abstractmethod
    async def head(self, market_id: str) -> int:
        """The last seq given to an event of the market (0 before the first)."""

    @abstractmethod
    async def since(self, market_id: str, since_seq: int) -> Replay: ...


class MemoryEventLog(EventLog):
    def __init__(self, bus: EventBus, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._bus = bus
        self._max_events = max_events
        self._markets: dict[str, _MemoryMarket] = collections.defaultdict(_MemoryMarket)

    async def append(self, market_id: str, event: dict[str, Any]) -> SequencedEvent | None:
        market = self._markets[market_id]
        market.head += 1
        payload = sequenced(market.head, event)
        market.events.append(payload)
        if len(market.events) > self._max_events:
            market.events.popleft()
        await self._bus.publish(REALTIME_TOPIC, payload)
        return payload

    async def head(self, market_id: str) -> int:
        market = self._markets.get(market_id)
        return market.head if market else 0

    async def since(self, market_id: str, since_seq: int) -> Replay:
        market = self._markets.get(market_id) or _MemoryMarket()
        oldest = market.events[0]["seq"] if market.events else None
        events = [event for event in market.events if event["seq"] > since_seq]
        return replay_from(since_seq, market.head, events, oldest)


_APPEND = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  return false
end
local seq = redis.call('INCR', KEYS[2])
local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', payload)
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[4], payload)
return payload
"""


def _parsed(payload: bytes | str | None) -> SequencedEvent | None:
    if payload is None:
        return None
    event: SequencedEvent = json.loads(payload)
    return event


def bus_channel(prefix: str, topic: str) -> str:
    """The Redis channel `RedisBus` uses for `topic` (the script publishes on it directly)."""
    return f"{prefix}bus:{topic}"


class RedisEventLog(EventLog):
    """Per market: `<prefix>rt:{<market>}:seq` (INCR counter), `...:events` (a stream whose
    entry ids are `<seq>-0`, trimmed to about `max_events`, expiring after a week without
    events) and `...:dedup:<sha256>` claims. The hash tag keeps a market's keys in one slot."""

    def __init__(self, redis: Redis, prefix: str, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._redis = redis
        self._prefix = prefix + "rt:"
        self._channel = bus_channel(prefix, REALTIME_TOPIC)
        self._max_events = max_events
        self._append = redis.register_script(_APPEND)

    def _key(self, market_id: str, name: str) -> str:
        return f"{self._prefix}{{{market_id}}}:{name}"

    def _script_call(self, market_id: str, event: dict[str, Any]) -> tuple[list[str], list[Any]]:
        body = {key: value for key, value in event.items() if key != "seq"}
        text = json.dumps(body, separators=(",", ":"), default=str)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        keys = [
            self._key(market_id, "dedup:" + digest),
            self._key(market_id, "seq"),
            self._key(market_id, "events"),
        ]
        return keys, [text, self._max_events, DEDUP_TTL_SECONDS, self._channel, STREAM_TTL_SECONDS]

    async def append(self, market_id: str, event: dict[str, Any]) -> SequencedEvent | None:
        keys, args = self._script_call(market_id, event)
        return _parsed(await self._append(keys=keys, args=args))

    async def append_many(self, events: Sequence[dict[str, Any]]) -> list[SequencedEvent | None]:
        """All in one round trip (a pipeline of the append script, in order): under load the
        sequencer falls behind if every event waits for its own reply. A single event skips
        the pipeline: redis-py checks a pipeline's scripts with SCRIPT EXISTS before every
        execution, a second round trip that a plain EVALSHA does not need."""
        if len(events) == 1:
            return [await self.append(events[0]["marketId"], events[0])]
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                keys, args = self._script_call(event["marketId"], event)
                await self._append(keys=keys, args=args, client=pipe)
            replies = await pipe.execute()
        return [_parsed(reply) for reply in replies]

    async def head(self, market_id: str) -> int:
        return int(await self._redis.get(self._key(market_id, "seq")) or 0)

    async def since(self, market_id: str, since_seq: int) -> Replay:
        stream = self._key(market_id, "events")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._key(market_id, "seq"))
            pipe.xrange(stream, min=f"{since_seq + 1}-0", max="+")
            pipe.xrange(stream, min="-", max="+", count=1)
            raw_head, entries, first = await pipe.execute()
        events = [json.loads(fields[b"e"]) for _, fields in entries]
        oldest = int(first[0][0].split(b"-")[0]) if first else None
        return replay_from(since_seq, int(raw_head or 0), events, oldest)
