"""Limits and timings of the WebSocket layer (`settings.realtime`; environment variables
`WS_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from marketd.config.section import Section

DEFAULT_MAX_EVENTS = 1000
"""Events kept per market for replay (WS_REPLAY_EVENTS), the event logs' default."""


class RealtimeSettings(Section):
    ENV_PREFIX: ClassVar[str] = "WS_"

    max_message_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Larger WebSocket frames close the connection"
    )
    max_connections_per_ip: int = Field(default=100, ge=1)
    max_subscriptions: int = Field(default=50, ge=1, description="Markets per connection.")
    send_buffer_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Queued bytes before a slow client is dropped."
    )
    message_rate: float = Field(
        default=10.0, gt=0, description="Client frames per second per connection, on average."
    )
    message_burst: int = Field(
        default=60,
        ge=1,
        description="Client frames in a burst (a page subscribing to its markets).",
    )
    heartbeat_seconds: float = Field(default=25.0, gt=0)
    replay_events: int = Field(default=DEFAULT_MAX_EVENTS, ge=1, description="Buffer per market.")
    state_cache_seconds: int = Field(default=2, ge=1)
    subscribe_concurrency: int = Field(
        default=16, ge=1, description="Subscribes reading Redis/the database at the same time."
    )
    close_timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long a close frame may wait behind a full socket."
    )
