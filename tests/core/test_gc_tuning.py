"""Garbage-collector tuning of the long-running processes."""

from __future__ import annotations

import gc

import pytest

from marketd.app import create_served_app
from marketd.core.gc_tuning import OLDER_COLLECTION_THRESHOLDS, YOUNG_COLLECTION_THRESHOLD


def test_a_served_app_tunes_its_process_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # the root conftest's `process_collector` puts the collector back
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    gc.unfreeze()
    app = create_served_app()
    assert app.title == "marketd"
    assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *OLDER_COLLECTION_THRESHOLDS)
    assert gc.get_freeze_count() > 0  # start-up objects moved out of the collector's way
