"""Snapshot settings (`settings.snapshots`) from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketd.config import DEFAULT_GATEWAYS, Settings, SnapshotSettings
from marketd.shared.market_state import MarketState

from ..helpers.settings import clear_environment, set_environment


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    clear_environment(monkeypatch)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    config = Settings(_env_file=None).snapshots  # type: ignore[call-arg]
    assert config.snapshot_cron == "0 0 * * *"
    assert config.snapshot_retention_days == 90
    assert config.snapshot_market_states == [
        MarketState.ACTIVE,
        MarketState.DISPUTED,
        MarketState.RESOLVING,
    ]
    assert config.ipfs_gateways == list(DEFAULT_GATEWAYS)
    assert not config.has_remote_store
    assert config.ipfs_local_copy


def test_environment(clean_env: pytest.MonkeyPatch) -> None:
    set_environment(
        clean_env,
        {
            "SNAPSHOT_CRON": "15 3 * * *",
            "SNAPSHOT_MARKET_STATES": "ACTIVE, DISPUTED",
            "SNAPSHOT_RETENTION_DAYS": "30",
            "IPFS_API_URL": "https://ipfs.infura.io:5001",
            "IPFS_API_AUTHORIZATION": "Basic c2VjcmV0",
            "PINNING_SERVICE_URL": "https://api.pinata.cloud/psa",
            "PINNING_SERVICE_TOKEN": "pst-9f8e7d",
            "PINNING_SERVICE_ORIGINS": "/ip4/1.2.3.4/tcp/4001/p2p/Qm1,/dns/x/tcp/4001",
            "IPFS_GATEWAYS": "http://127.0.0.1:8080, https://ipfs.io",
        },
    )
    config = Settings(_env_file=None).snapshots  # type: ignore[call-arg]
    assert config.snapshot_cron == "15 3 * * *"
    assert config.snapshot_market_states == [MarketState.ACTIVE, MarketState.DISPUTED]
    assert config.snapshot_retention_days == 30
    assert config.has_remote_store
    assert config.ipfs_gateways == ["http://127.0.0.1:8080", "https://ipfs.io"]
    assert len(config.pinning_service_origins) == 2
    assert "c2VjcmV0" not in repr(config) and "pst-9f8e7d" not in repr(config)


def test_empty_gateway_list(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("IPFS_GATEWAYS", "")
    assert Settings(_env_file=None).snapshots.ipfs_gateways == []  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "values",
    [
        {"snapshot_cron": "every night"},
        {"prune_cron": "61 0 * * *"},
        {"snapshot_market_states": "ACTIVE,ASLEEP"},
        {"snapshot_retention_days": 0},
        {"pinning_service_url": "https://pins.example"},
    ],
)
def test_invalid_settings(clean_env: pytest.MonkeyPatch, values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SnapshotSettings.model_validate(values)


def test_invalid_environment_is_refused_naming_the_section(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("PINNING_SERVICE_URL", "https://pins.example")
    with pytest.raises(ValidationError, match="snapshots") as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "PINNING_SERVICE_TOKEN is not" in str(caught.value)
