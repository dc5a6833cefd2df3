"""Event bus: endpoints, the indexer and workers publish; workers and websockets listen.

In-process for the embedded default, Redis pub/sub when REDIS_URL is set so that an event
published on one instance reaches listeners on every instance.

The bus moves JSON messages by topic. Domain events are published through
`marketd.core.events.publish` (the one publish path: typed event in, its wire form out, with a
unique event id); `EventBus.publish` itself is the transport, used directly only by the
real-time layer for the sequenced events it forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from marketd.core.waits import Backoff, FailureStreak

Message = dict[str, Any]
"""What a subscription delivers: a JSON object as published."""
BUS_RECONNECTS = Counter(
    "marketd_bus_reconnects_total", "Bus listeners that lost Redis and subscribed again."
)
log = structlog.get_logger("marketd.bus")

RESUBSCRIBE_BACKOFF = Backoff(initial=0.1, maximum=5.0)
"""Waits of a listener that lost Redis before each attempt to subscribe again."""


class Subscription:
    """Events for the topics subscribed to, in publication order."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.reconnects = 0  # times the listener lost Redis and subscribed again

    def deliver(self, event: Message) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            # A listener that stopped reading must not block publishers; it loses events
            # and catches up through its periodic sweep or replay buffer.
            self._queue.put_nowait(event)

    async def get(self) -> Message:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


class EventBus(ABC):
    @abstractmethod
    async def publish(self, topic: str, event: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def subscribe(self, *topics: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


class InProcessBus(EventBus):
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        payload = json.loads(json.dumps(event, default=str))
        for subscription in list(self._subscribers.get(topic, ())):
            subscription.deliver(payload)

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        for topic in topics:
            self._subscribers.setdefault(topic, set()).add(subscription)
        try:
            yield subscription
        finally:
            for topic in topics:
                self._subscribers[topic].discard(subscription)


class RedisBus(EventBus):
    """One Redis pub/sub connection per subscription context; channels carry the key prefix.

    The listener survives Redis going away: when its connection drops it logs, waits (`backoff`,
    growing while Redis stays unreachable), subscribes again
    on a new connection and goes on delivering. Pub/sub keeps nothing for an absent listener,
    so events published during the gap are lost to it; `Subscription.reconnects` counts the
    gaps (listeners resynchronise from their sweeps or the replay buffer).
    """

    def __init__(
        self, redis: Redis, prefix: str, *, backoff: Backoff = RESUBSCRIBE_BACKOFF
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "bus:"
        self.backoff = backoff

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        await self._redis.publish(self._prefix + topic, json.dumps(event, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        channels = [self._prefix + topic for topic in topics]
        # The first subscription is not retried: a caller starting up learns at once that
        # Redis is unreachable.
        listener = _Listener(self, channels, subscription, await self.subscribed(channels))
        reader = asyncio.create_task(listener.run())
        try:
            yield subscription
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await _close_quietly(listener.pubsub)

    async def subscribed(self, channels: list[str]) -> PubSub:
        """A new pub/sub connection subscribed to `channels`."""
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
        except BaseException:
            await _close_quietly(pubsub)
            raise
        return pubsub


class _Listener:
    """The reader of one subscription; `pubsub` is its current connection."""

    def __init__(
        self, bus: RedisBus, channels: list[str], subscription: Subscription, pubsub: PubSub
    ) -> None:
        self.bus = bus
        self.channels = channels
        self.subscription = subscription
        self.pubsub = pubsub

    async def run(self) -> None:
        """Deliver messages until cancelled, reconnecting whenever the connection drops."""
        while True:
            try:
                async for message in self.pubsub.listen():
                    _deliver(self.subscription, message)
            except _DISCONNECTED as exc:
                await log.awarning(
                    "bus listener disconnected; reconnecting",
                    channels=self.channels,
                    error=repr(exc),
                )
            await _close_quietly(self.pubsub)
            self.pubsub = await self._resubscribe()
            self.subscription.reconnects += 1
            BUS_RECONNECTS.inc()
            await log.ainfo("bus listener resubscribed", channels=self.channels)

    async def _resubscribe(self) -> PubSub:
        failures = FailureStreak(self.bus.backoff)
        delay = failures.failed()  # the connection dropping is the first failure
        while True:
            await asyncio.sleep(delay)
            try:
                return await self.bus.subscribed(self.channels)
            except _DISCONNECTED as exc:
                delay = failures.failed()
                await log.awarning(
                    "bus resubscribe failed; retrying",
                    channels=self.channels,
                    error=repr(exc),
                    retry_in_seconds=delay,
                )


_DISCONNECTED = (RedisConnectionError, RedisTimeoutError, OSError)


def _deliver(subscription: Subscription, message: Mapping[str, Any]) -> None:
    try:
        event = json.loads(message["data"])
    except (ValueError, TypeError):
        log.warning("bus message is not JSON; dropped", channel=str(message.get("channel")))
        return
    subscription.deliver(event)


async def _close_quietly(pubsub: PubSub) -> None:
    """Close a pub/sub connection that may already be broken."""
    with contextlib.suppress(*_DISCONNECTED):
        await pubsub.aclose()
