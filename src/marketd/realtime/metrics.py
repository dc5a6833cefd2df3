"""Prometheus metrics of the WebSocket layer (module-level: one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WS_CONNECTIONS = Gauge("marketd_ws_connections", "Open WebSocket connections.")
WS_SUBSCRIPTIONS = Gauge("marketd_ws_subscriptions", "Market subscriptions of open connections.")
WS_MESSAGES_OUT = Counter("marketd_ws_messages_out_total", "Frames written to WebSocket clients.")
WS_EVENTS = Counter(
    "marketd_ws_events_total", "Sequenced events fanned out to local subscribers by this instance."
)
WS_DROPS = Counter(
    "marketd_ws_drops_total",
    "Connections closed or refused by the server, by reason.",
    ["reason"],
)
