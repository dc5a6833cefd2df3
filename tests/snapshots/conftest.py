"""Fixtures of the snapshot tests: `snap`, an API instance with the snapshot helpers
(tests/helpers/snapshots.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest_asyncio

from ..helpers.snapshots import Snap, snapshot_settings


@pytest_asyncio.fixture
async def snap(api_factory: Callable[..., Any]) -> Snap:
    api = await api_factory()
    return Snap(api, snapshot_settings())
