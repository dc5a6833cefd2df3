"""Settings, read once from the environment (and `.env`).

Every secret (database password inside DATABASE_URL, Redis password, pinning tokens, the
backend keypair) comes from the environment only; `Settings.__repr__` hides them so a log
line that prints the settings never leaks one.
"""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_PROGRAM_ID = "6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """All configuration of one marketd process."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./data")

    # Storage. Unset DATABASE_URL -> embedded SQLite file; unset REDIS_URL -> in-process.
    database_url: SecretStr | None = None
    database_statement_cache: bool = Field(
        default=True,
        description="False behind PgBouncer / the Supabase transaction pooler.",
    )
    database_pool_size: int = 10
    redis_url: SecretStr | None = None
    redis_prefix: str = "marketd:"

    # HTTP.
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, description="API processes of `marketd serve`")
    worker_metrics_port: int | None = Field(
        default=None, description="Port of `marketd worker`'s Prometheus /metrics (off if unset)"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit: str = "100/minute"
    log_json: bool | None = None
    log_level: str = "INFO"

    # Sign-In With Solana.
    siws_domain: str = "localhost:8000"
    siws_uri: str = "http://localhost:8000"
    siws_statement: str = "Sign in to marketd."
    siws_chain_id: str = "localnet"
    nonce_ttl_seconds: int = 300
    session_ttl_seconds: int = 7 * 24 * 3600

    # Chain.
    program_id: str = DEFAULT_PROGRAM_ID
    solana_rpc_url: str | None = None
    solana_ws_url: str | None = None
    idl_path: Path | None = None
    backend_keypair: SecretStr | None = None

    # The simulated local chain (used when SOLANA_RPC_URL is unset).
    localnet_slot_ms: int = Field(
        default=400,
        ge=0,
        description="Milliseconds per slot of the local chain, produced in real time as on a "
        "cluster (0: deterministic, slots move only with transactions)",
    )
    localnet_confirmation_slots: int = Field(
        default=2,
        ge=0,
        le=32,
        description="Slots from landing to confirmed on the local chain (2 x 400 ms: a "
        "transaction is confirmed 400-800 ms after it lands)",
    )
    localnet_history_slots: int | None = Field(
        default=None,
        ge=32,
        description="Slots of transaction history the local chain keeps (unset: all)",
    )

    # Votes.
    proposal_min_votes: int = 10
    proposal_approval_threshold_bps: int = 7000
    dispute_min_votes: int = 10
    dispute_success_threshold_bps: int = 6000
    sweep_interval_seconds: int = 300

    # Leader locks of the background jobs.
    lock_ttl_seconds: float | None = Field(
        default=None,
        gt=0,
        description="TTL of every job's leader lock: how long the jobs of a worker that died "
        "wait before another takes them over (unset: each job's own, 15-30 s)",
    )

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            ip_network(item, strict=False)
        return value

    @cached_property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(item, strict=False) for item in self.trusted_proxies]

    @property
    def is_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def database_dsn(self) -> str:
        """The SQLAlchemy async URL: the configured one, or the embedded SQLite file."""
        if self.database_url is not None:
            return normalise_database_url(self.database_url.get_secret_value())
        return f"sqlite+aiosqlite:///{self.data_dir / 'marketd.db'}"

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.environment == "production"


def normalise_database_url(url: str) -> str:
    """Accept the plain `postgres://` / `postgresql://` strings Supabase hands out."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
