"""The per-connection message budget (token bucket)."""

from __future__ import annotations

from marketd.realtime.budget import MessageBudget


def test_a_burst_then_the_rate():
    now = [0.0]
    budget = MessageBudget(rate=2, burst=3, clock=lambda: now[0])
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # half a second: one message earned
    assert [budget.take(), budget.take()] == [True, False]
    now[0] = 100.0  # a long pause refills only up to the burst
    assert [budget.take() for _ in range(4)] == [True, True, True, False]


def test_a_refused_message_spends_nothing():
    now = [0.0]
    budget = MessageBudget(rate=1, burst=1, clock=lambda: now[0])
    assert budget.take()
    for _ in range(10):
        assert not budget.take()
    now[0] = 1.0
    assert budget.take()
