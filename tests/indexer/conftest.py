"""Fixtures of the indexer tests: a tape of synthetic transactions (tests/helpers/indexer.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..helpers.indexer import Tape


@pytest.fixture
def tape() -> Tape:
    return Tape()


@pytest.fixture
def make_tape() -> Callable[[], Tape]:
    return Tape
