"""`RecentMemo`: per-process facts that expire."""

from __future__ import annotations

import pytest

from marketd.core.memo import RecentMemo


def test_the_memo_forgets_after_its_window(monkeypatch: pytest.MonkeyPatch):
    clock = [50.0]
    monkeypatch.setattr("marketd.core.memo.time.monotonic", lambda: clock[0])
    memo: RecentMemo[str, int] = RecentMemo(window=5, capacity=2)
    memo.put("a", 1)
    clock[0] += 4.9
    assert memo.get("a") == 1
    clock[0] += 0.1
    assert memo.get("a") is None
    assert memo.get("never stored") is None


def test_jittered_entries_expire_between_the_shortest_and_the_whole_window(
    monkeypatch: pytest.MonkeyPatch,
):
    clock, draws = [0.0], iter([1.0, 0.0])
    monkeypatch.setattr("marketd.core.memo.time.monotonic", lambda: clock[0])
    monkeypatch.setattr("marketd.core.memo.random.random", lambda: next(draws))
    memo: RecentMemo[str, int] = RecentMemo(window=60, jitter=0.25)
    memo.put("shortest", 1)  # lives 60 * (1 - 0.25) = 45 s
    memo.put("whole", 2)  # lives 60 s
    clock[0] = 44.9
    assert (memo.get("shortest"), memo.get("whole")) == (1, 2)
    clock[0] = 45.0
    assert (memo.get("shortest"), memo.get("whole")) == (None, 2)
    clock[0] = 60.0
    assert memo.get("whole") is None
