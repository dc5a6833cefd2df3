"""Settings of the snapshots domain, read from the same environment as ``marketd.config``.

Kept apart so it can be merged into ``Settings`` later: every field here has the name (and so
the environment variable) it would have there. ``snapshot_config(settings)`` takes a field from
``Settings`` when ``Settings`` has it, from the environment otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from marketd.config import Settings
from marketd.shared.market_state import LIVE_STATES, MarketState

DEFAULT_GATEWAYS = ("https://trustless-gateway.link", "https://ipfs.io")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SnapshotSettings(BaseSettings):
    """Schedules, retention and the IPFS stores of discussion snapshots."""

    model_config = SettingsConfigDict(
        env_prefix="",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
    )

    # Scheduling (crontab syntax, evaluated in UTC) and the leader lock.
    snapshot_cron: str = "0 0 * * *"
    prune_cron: str = "30 1 * * *"
    snapshot_lock_ttl_seconds: float = 300.0
    # Rows left pending by an interrupted run are uploaded at worker start and then this often
    # (whenever the lock is free), not only by the next day's run.
    snapshot_retry_seconds: float = Field(default=300.0, gt=0)
    snapshot_market_states: Annotated[list[MarketState], NoDecode] = Field(
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
    pinning_service_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ipfs_local_copy: bool = Field(
        default=True,
        description="Keep a copy in data_dir/ipfs beside configured remotes (never instead).",
    )
    ipfs_gateways: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_GATEWAYS)
    )
    ipfs_gateway_timeout_seconds: float = 10.0
    ipfs_timeout_seconds: float = 30.0
    ipfs_upload_attempts: int = Field(default=5, ge=1)
    ipfs_upload_backoff_seconds: float = 0.5

    @field_validator("snapshot_market_states", "pinning_service_origins", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("ipfs_gateways", mode="before")
    @classmethod
    def _gateways(cls, value: object) -> object:
        return _split_csv(value)

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


def snapshot_config(settings: Settings, **overrides: Any) -> SnapshotSettings:
    """The snapshot settings: fields ``Settings`` already has (once merged) win over the
    environment; ``overrides`` win over both."""
    values = {
        name: getattr(settings, name)
        for name in SnapshotSettings.model_fields
        if hasattr(settings, name)
    }
    return SnapshotSettings(**(values | overrides))
