"""The instance's single bus subscription: sequence producers' events, fan sequenced ones out.

Flow of one event (say a vote accepted on instance B, with instances A and B running):

1. The votes service publishes a `VoteCast` (`marketd.core.events.publish`: its wire form
   `{"type":"vote","marketId":...,"eventId":...}`) on topic `votes` (no seq).
2. Every instance's fan-out receives it and hands it to its sequencer task, which calls
   `EventLog.append`. The Redis script lets exactly one instance claim it: that call assigns
   the market's next seq, stores the event in the replay stream and publishes the sequenced
   event on topic `realtime` - all atomically, so seq order is publication order.
3. Every instance's fan-out receives the sequenced event (it carries `seq`) and broadcasts it
   to its local subscribers. Hence every instance delivers the same seq for the same event.

Sequencing runs in its own task so that a Redis round trip never delays delivery.

The `activity` channel: a sequenced event that announces a feed item some member wants is
read back into its typed event (`marketd.core.events.from_wire`) and queued for the activity
task, which reads that item as GET /api/activity lists it (the event is
published after its commit) and sends it to the members that want its kind, in the order the
events arrived. Only instances with such members read anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from marketd.core.bus import EventBus
from marketd.core.events import TOPICS, DomainEvent, from_wire
from marketd.realtime.buffer import REALTIME_TOPIC, EventLog
from marketd.realtime.hub import Hub

SOURCE_TOPICS = TOPICS
"""Topics whose events concern one market (`marketId`) and are forwarded to subscribers."""

log = structlog.get_logger("marketd.realtime")

ActivityReader = Callable[[DomainEvent], Awaitable[dict[str, Any] | None]]
"""A market event -> the activity feed's item it announces (JSON mode), or None."""

SEQUENCE_BATCH = 500
"""At most this many events per sequencing round trip."""


class Fanout:
    def __init__(
        self,
        bus: EventBus,
        event_log: EventLog,
        hub: Hub,
        read_activity: ActivityReader | None = None,
    ) -> None:
        self._bus = bus
        self._log = event_log
        self._hub = hub
        self._read_activity = read_activity
        self._unsequenced: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._announced: asyncio.Queue[DomainEvent] = asyncio.Queue()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled (one bus subscription for all topics)."""
        helpers = [
            asyncio.create_task(self._sequence_loop()),
            asyncio.create_task(self._activity_loop()),
        ]
        try:
            async with self._bus.subscribe(*SOURCE_TOPICS, REALTIME_TOPIC) as subscription:
                self.ready.set()
                while True:
                    event = await subscription.get()
                    if "seq" in event:
                        self._hub.broadcast(event)
                        if self._read_activity and self._hub.wants_activity(event):
                            announced = from_wire(event)
                            if announced is not None:
                                self._announced.put_nowait(announced)
                    elif isinstance(event.get("marketId"), str):
                        self._unsequenced.put_nowait(event)
        finally:
            self.ready.clear()
            for helper in helpers:
                helper.cancel()
            for helper in helpers:
                with contextlib.suppress(asyncio.CancelledError):
                    await helper

    async def _activity_loop(self) -> None:
        """Read and send the feed item of each announced event, one after the other."""
        while True:
            event = await self._announced.get()
            if self._read_activity is None:  # pragma: no cover - nothing is queued then
                continue
            try:
                item = await self._read_activity(event)
            except Exception:
                # The database unreachable: the item is missing on the channel (the REST feed
                # has it); never let it stop the loop.
                await log.aexception("activity item unreadable", event_type=event.type)
                continue
            if item is not None:
                self._hub.send_activity(item)

    async def _sequence_loop(self) -> None:
        """Sequence what has queued up since the last round trip, all at once (in order)."""
        while True:
            events = [await self._unsequenced.get()]
            while len(events) < SEQUENCE_BATCH and not self._unsequenced.empty():
                events.append(self._unsequenced.get_nowait())
            try:
                await self._log.append_many(events)
            except Exception:
                # Redis unreachable: the events are lost for WebSocket clients (they resync
                # when they notice the gap); never let it stop the loop.
                await log.aexception(
                    "sequencing failed", events=len(events), event_type=events[0].get("type")
                )
