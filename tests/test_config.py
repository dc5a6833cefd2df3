"""The settings tree: one `Settings`, its sections read from the flat variables operators set
(the environment winning over `.env`, values given in code over both), and no variable read
by two settings."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from marketd.config import (
    IndexerSettings,
    ReadinessSettings,
    RealtimeSettings,
    Settings,
    SnapshotSettings,
    environment_names,
)
from marketd.config.section import Section

from .helpers.settings import clear_environment, set_environment


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No marketd variable set, and a working directory of this test's own (its `.env`)."""
    clear_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_no_environment_gives_each_section_its_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.indexer == IndexerSettings()
    assert settings.indexer.max_batch == 500 and settings.indexer.auto_activate
    assert settings.realtime == RealtimeSettings()
    assert settings.realtime.max_message_bytes == 64 * 1024
    assert settings.realtime.replay_events == 1000
    assert settings.snapshots == SnapshotSettings()  # its values: tests/snapshots/test_config.py
    assert settings.readiness == ReadinessSettings()
    assert settings.readiness.timeout_seconds == 2.0 and settings.readiness.optional_checks == []


def test_sections_read_their_flat_variables(environment: pytest.MonkeyPatch) -> None:
    set_environment(
        environment,
        {
            "INDEXER_MAX_BATCH": "7",
            "indexer_auto_activate": "false",  # names are not case-sensitive
            "WS_HEARTBEAT_SECONDS": "3.5",
            "WS_MAX_MESSAGE_BYTES": "2048",
            "IPFS_API_URL": "http://kubo.test:5001",
            "READINESS_OPTIONAL_CHECKS": "ipfs,,chain_rpc",
            "CORS_ORIGINS": "https://a.test, https://b.test",
        },
    )
    settings = Settings()
    assert settings.indexer.max_batch == 7 and not settings.indexer.auto_activate
    assert settings.realtime.heartbeat_seconds == 3.5
    assert settings.realtime.max_message_bytes == 2048
    assert settings.snapshots.ipfs_api_url == "http://kubo.test:5001"
    assert settings.readiness.optional_checks == ["ipfs", "chain_rpc"]
    assert settings.cors_origins == ["https://a.test", "https://b.test"]


def test_the_environment_wins_over_dotenv_and_code_over_both(
    environment: pytest.MonkeyPatch,
) -> None:
    Path(".env").write_text(
        "INDEXER_MAX_BATCH=3\nINDEXER_MISSING_CHECKS=4\nWS_MAX_SUBSCRIPTIONS=9\n"
    )
    environment.setenv("INDEXER_MAX_BATCH", "5")
    settings = Settings()
    assert (settings.indexer.max_batch, settings.indexer.missing_checks) == (5, 4)
    assert settings.realtime.max_subscriptions == 9
    assert Settings(_env_file=None).indexer.missing_checks == 2  # type: ignore[call-arg]
    merged = Settings(indexer={"max_batch": 1})  # type: ignore[arg-type]
    assert (merged.indexer.max_batch, merged.indexer.missing_checks) == (1, 4)
    given = Settings(indexer=IndexerSettings(max_batch=2))  # the whole section, as given
    assert (given.indexer.max_batch, given.indexer.missing_checks) == (2, 2)


def test_a_variable_named_after_a_section_is_not_read(environment: pytest.MonkeyPatch) -> None:
    """pydantic-settings would parse INDEXER as the section's JSON; the tree reads only the
    sections' own variables."""
    environment.setenv("INDEXER", "not json")
    environment.setenv("REALTIME", '{"max_subscriptions": 1}')
    Path(".env").write_text("SNAPSHOTS=x\nREADINESS={}\n")
    settings = Settings()
    assert settings.indexer == IndexerSettings()
    assert settings.realtime.max_subscriptions == 50


def test_an_invalid_variable_is_refused_naming_section_and_field(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("INDEXER_MAX_BATCH", "0")
    with pytest.raises(ValidationError, match=r"indexer\.max_batch"):
        Settings()


def test_a_section_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="max_bath"):
        IndexerSettings(max_bath=3)  # type: ignore[call-arg]


def test_every_variable_is_read_by_exactly_one_setting() -> None:
    names = environment_names(Settings)
    assert names["DATABASE_URL"] == "database_url"
    assert names["INDEXER_MAX_BATCH"] == "indexer.max_batch"
    assert names["WS_MAX_MESSAGE_BYTES"] == "realtime.max_message_bytes"
    assert names["IPFS_API_URL"] == "snapshots.ipfs_api_url"
    assert names["READINESS_CACHE_SECONDS"] == "readiness.cache_seconds"
    assert len(set(names.values())) == len(names)


class _Kubo(Section):
    """A second section declaring the snapshots' IPFS_API_URL."""

    ENV_PREFIX: ClassVar[str] = "IPFS_"

    api_url: str | None = None


def test_two_sections_cannot_declare_the_same_variable() -> None:
    class Twice(Settings):
        kubo: _Kubo = Field(default_factory=_Kubo)

    with pytest.raises(ValueError, match=r"IPFS_API_URL is read by both snapshots\.ipfs_api_url"):
        environment_names(Twice)
    with pytest.raises(ValueError, match=r"kubo\.api_url"):
        Twice(_env_file=None)  # type: ignore[call-arg]


def test_a_section_cannot_declare_a_variable_of_the_root() -> None:
    class Clash(Settings):
        ws_max_message_bytes: int = 1

    with pytest.raises(ValueError, match="WS_MAX_MESSAGE_BYTES is read by both"):
        environment_names(Clash)
