"""The settings of one marketd process: one tree, read once from the environment (and `.env`)
when the process starts, and held by the container (`Container.settings`).

The fields every part uses are at the root; each domain with settings of its own reads its
section (`settings.indexer`, `settings.realtime`, `settings.snapshots`, `settings.readiness`).
Every variable keeps its flat name (`marketd.config.sources`); `environment_names()` lists them.

Every secret (database password inside DATABASE_URL, Redis password, pinning tokens, the
backend keypair) comes from the environment only; `Settings.__repr__` hides them so a log
line that prints the settings never leaks one.
"""

from __future__ import annotations

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from marketd.config.indexer import IndexerSettings
from marketd.config.readiness import ReadinessSettings
from marketd.config.realtime import RealtimeSettings
from marketd.config.section import CsvList
from marketd.config.snapshots import SnapshotSettings
from marketd.config.sources import SectionDotEnvSource, SectionEnvSource, environment_names
from marketd.shared.eligibility import Strategy, parse_policy

DEFAULT_PROGRAM_ID = "6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw"


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
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of this process's Prometheus /metrics, apart from the API (off if "
        "unset; `serve` with WORKERS = N uses this port and the N - 1 after it)",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Bind address of the metrics port (not public)"
    )
    cors_origins: CsvList[str] = Field(default_factory=list)
    trusted_proxies: CsvList[str] = Field(default_factory=list)
    rate_limit: str = "100/minute"
    sign_in_rate_limit: str = Field(
        default="20/minute",
        description="Sign-in requests (challenge and verify) per client address, apart from "
        "every other request",
    )
    ip_wallets_limit: int = Field(
        default=30,
        ge=1,
        description="Distinct wallets one client address may act for within IP_WALLETS_WINDOW",
    )
    ip_wallets_window: float = Field(default=3600.0, gt=0)
    max_body_bytes: int = Field(
        default=128 * 1024,
        ge=1024,
        description="Larger request bodies are refused with 413 before parsing (the largest "
        "valid request, a 5,000-character post, is at most ~20 KB)",
    )
    log_json: bool | None = None
    log_level: str = "INFO"

    # Sign-In With Solana. Unset domain/URI: the host the request reached (marketd.auth.origin);
    # production must set SIWS_DOMAIN.
    siws_domain: str | None = None
    siws_uri: str | None = None
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
    # The embedded local chain runs the faithful twin of zmart_core; local_chain_fixed_program
    # gives it its intended behaviour where the real program fails at runtime (sell_shares pays
    # out instead of PrivilegeEscalation).
    local_chain_fixed_program: bool = False

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
    # Who may vote off-chain (marketd.shared.eligibility): strategies, all of which a wallet
    # must meet. On-chain votes always count. docs/deploy.md says why these defaults.
    vote_eligibility: str = Field(
        default="min_balance_sol=0.05,min_wallet_age_days=7",
        description="Proposal votes: comma-separated strategies (any, allowlist=A|B, "
        "min_balance_sol=X, min_wallet_age_days=N, min_transactions=N)",
    )
    dispute_vote_eligibility: str = Field(
        default="position,min_wallet_age_days=7",
        description="Dispute votes: the same strategies, and `position` (holds shares of the "
        "market)",
    )
    vote_eligibility_cache_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How long a wallet's chain facts (balance, history) are reused, in the "
        "shared cache",
    )

    # Leader locks of the background jobs.
    lock_ttl_seconds: float | None = Field(
        default=None,
        gt=0,
        description="TTL of every job's leader lock: how long the jobs of a worker that died "
        "wait before another takes them over (unset: each job's own, 15-30 s)",
    )

    # The sections (their variables: marketd.config.sources).
    indexer: IndexerSettings = Field(default_factory=IndexerSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    snapshots: SnapshotSettings = Field(default_factory=SnapshotSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The default sources in their default order, the environment and `.env` reading each
        section from its flat variable names."""
        environment_names(settings_cls)  # refuses a tree where two settings share a variable
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        environment = SectionEnvSource(
            settings_cls,
            case_sensitive=env_settings.case_sensitive,
            env_ignore_empty=env_settings.env_ignore_empty,
            env_parse_none_str=env_settings.env_parse_none_str,
        )
        dotenv = SectionDotEnvSource(
            settings_cls,
            env_file=dotenv_settings.env_file,
            env_file_encoding=dotenv_settings.env_file_encoding,
            case_sensitive=dotenv_settings.case_sensitive,
            env_ignore_empty=dotenv_settings.env_ignore_empty,
            env_parse_none_str=dotenv_settings.env_parse_none_str,
        )
        return init_settings, environment, dotenv, file_secret_settings

    @field_validator("vote_eligibility", "dispute_vote_eligibility")
    @classmethod
    def _eligibility_parses(cls, value: str, info: ValidationInfo) -> str:
        policy = parse_policy(value)
        if info.field_name == "vote_eligibility" and policy.get(Strategy.POSITION) is not None:
            raise ValueError(
                "`position` applies to dispute votes only (a PROPOSED market has no trades)"
            )
        return value

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
