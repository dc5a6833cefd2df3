"""The settings tree of one marketd process (`Settings`) and its sections."""

from marketd.config.indexer import IndexerSettings
from marketd.config.readiness import ReadinessSettings
from marketd.config.realtime import RealtimeSettings
from marketd.config.settings import DEFAULT_PROGRAM_ID, Settings, normalise_database_url
from marketd.config.snapshots import DEFAULT_GATEWAYS, SnapshotSettings
from marketd.config.sources import environment_names

__all__ = [
    "DEFAULT_GATEWAYS",
    "DEFAULT_PROGRAM_ID",
    "IndexerSettings",
    "ReadinessSettings",
    "RealtimeSettings",
    "Settings",
    "SnapshotSettings",
    "environment_names",
    "normalise_database_url",
]
