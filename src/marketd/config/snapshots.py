"""Schedules, retention and the IPFS stores of discussion snapshots (`settings.snapshots`).

The variables have no common prefix (SNAPSHOT_CRON, PRUNE_CRON, IPFS_API_URL,
PINNING_SERVICE_URL, …): each field is named as its variable. The readiness probe checks the
Kubo node configured here, the one the snapshotter writes to.
"""

from __future__ import annotations

from typing import Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, SecretStr, field_validator, model_validator

from marketd.config.section import CsvList, Section
from marketd.shared.market_state import LIVE_STATES, MarketState

DEFAULT_GATEWAYS = ("https://trustless-gateway.link", "https://ipfs.io")


class SnapshotSettings(Section):
    # Scheduling (crontab syntax, evaluated in UTC) and the leader lock.
    snapshot_cron: str = "0 0 * * *"
    prune_cron: str = "30 1 * * *"
    snapshot_lock_ttl_seconds: float = 300.0
    # Rows left pending by an interrupted run are uploaded at worker start and then this often
    # (whenever the lock is free), not only by the next day's run.
    snapshot_retry_seconds: float = Field(default=300.0, gt=0)
    snapshot_market_states: CsvList[MarketState] = Field(
        default_factory=lambda: sorted(LIVE_STATES)
    )
    snapshot_retention_days: int = Field(default=90, ge=1)
    # Uploads in flight for a store without a batch upload (put_many); the local store, Kubo
    # RPC nodes and MultiBlockstore take a whole batch at once.
    snapshot_concurrency: int = Field(default=16, ge=1)

    # Stores. None of IPFS_API_URL / PINNING_SERVICE_URL set -> the local store alone.
    ipfs_api_url: str | None = None
    ipfs_api_authorization: SecretStr | None = Field(
        default=None, description="Value of the Authorization header sent to the Kubo RPC API."
    )
    ipfs_api_upload: Literal["add", "car"] = "add"
    pinning_service_url: str | None = None
    pinning_service_token: SecretStr | None = None
    pinning_service_origins: CsvList[str] = Field(default_factory=list)
    ipfs_local_copy: bool = Field(
        default=True,
        description="Keep a copy in data_dir/ipfs beside configured remotes (never instead).",
    )
    ipfs_gateways: CsvList[str] = Field(default_factory=lambda: list(DEFAULT_GATEWAYS))
    ipfs_gateway_timeout_seconds: float = 10.0
    ipfs_timeout_seconds: float = 30.0
    ipfs_upload_attempts: int = Field(default=5, ge=1)
    ipfs_upload_backoff_seconds: float = 0.5

    @field_validator("snapshot_cron", "prune_cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        CronTrigger.from_crontab(value, timezone="UTC")
        return value

    @model_validator(mode="after")
    def _pinning_needs_token(self) -> SnapshotSettings:
        if self.pinning_service_url and self.pinning_service_token is None:
            raise ValueError("PINNING_SERVICE_URL is set but PINNING_SERVICE_TOKEN is not")
        return self

    @property
    def has_remote_store(self) -> bool:
        return bool(self.ipfs_api_url or self.pinning_service_url)
