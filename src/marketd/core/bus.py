"""Event bus: endpoints, the indexer and workers publish; workers and websockets listen.

In-process for the embedded default, Redis pub/sub when REDIS_URL is set so that an event
published on one instance reaches listeners on every instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

from redis.asyncio import Redis

Event = dict[str, Any]


class Subscription:
    """Events for the topics subscribed to, in publication order."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)

    def deliver(self, event: Event) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            # A listener that stopped reading must not block publishers; it loses events
            # and catches up through its periodic sweep or replay buffer.
            self._queue.put_nowait(event)

    async def get(self) -> Event:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
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
    """One Redis pub/sub connection per subscription context; channels carry the key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "bus:"

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        await self._redis.publish(self._prefix + topic, json.dumps(event, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*(self._prefix + topic for topic in topics))
        reader = asyncio.create_task(self._pump(pubsub, subscription))
        try:
            yield subscription
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @staticmethod
    async def _pump(pubsub: Any, subscription: Subscription) -> None:
        async for message in pubsub.listen():
            subscription.deliver(json.loads(message["data"]))
