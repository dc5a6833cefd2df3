"""The process environment as settings tests need it: none of marketd's variables set (so the
machine running the tests cannot change what they see), then the ones a test names."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from marketd.config import Settings, environment_names


def clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in environment_names(Settings):
        monkeypatch.delenv(name, raising=False)


def set_environment(monkeypatch: pytest.MonkeyPatch, values: Mapping[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
