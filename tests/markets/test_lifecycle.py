"""The one owner of market transitions: the machine's check, the timestamps, the event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from marketd.core.events import MarketStateChanged
from marketd.markets import lifecycle
from marketd.markets.lifecycle import UNEXPECTED, IllegalTransition, Writer
from marketd.shared.market_state import MarketState

BLOCK = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
EARLIER = BLOCK - timedelta(hours=1)


@dataclass
class Row:
    """What a writer hands over: a `Market` row or the indexer's `MarketRow`."""

    id: str = "m"
    state: str = "PROPOSED"
    approved_at: datetime | None = None
    activated_at: datetime | None = None
    resolution_proposed_at: datetime | None = None
    finalized_at: datetime | None = None
    updated_at: datetime = EARLIER


@pytest.mark.parametrize(
    ("old", "new", "column"),
    [
        ("PROPOSED", MarketState.APPROVED, "approved_at"),
        ("APPROVED", MarketState.ACTIVE, "activated_at"),
        ("ACTIVE", MarketState.RESOLVING, "resolution_proposed_at"),
        ("RESOLVING", MarketState.FINALIZED, "finalized_at"),
        ("DISPUTED", MarketState.FINALIZED, "finalized_at"),
    ],
)
@pytest.mark.parametrize("writer", list(Writer))
def test_a_move_sets_the_state_its_timestamp_and_returns_the_event(
    old: str, new: MarketState, column: str, writer: Writer
) -> None:
    row = Row(state=old)
    change = lifecycle.transition(row, new, BLOCK, writer)
    assert change == MarketStateChanged(market_id="m", old_state=old, new_state=new, at=BLOCK)
    assert (row.state, getattr(row, column), row.updated_at) == (new.value, BLOCK, BLOCK)


def test_an_upheld_dispute_keeps_the_resolution_time() -> None:
    row = Row(state="DISPUTED", resolution_proposed_at=EARLIER)
    change = lifecycle.transition(row, MarketState.RESOLVING, BLOCK, Writer.INDEXER)
    assert change is not None and (change.old_state, change.new_state) == ("DISPUTED", "RESOLVING")
    assert (row.state, row.resolution_proposed_at) == ("RESOLVING", EARLIER)


def test_the_chain_event_restamps_what_the_backend_applied_first() -> None:
    """The outbox handler stamps its confirmation time; the program event read later by the
    indexer moves nothing (no event) but leaves the chain's time on the row."""
    row = Row()
    confirmed_at = BLOCK + timedelta(seconds=2)
    assert lifecycle.transition(row, MarketState.APPROVED, confirmed_at, Writer.OUTBOX)
    assert row.approved_at == confirmed_at
    assert lifecycle.transition(row, MarketState.APPROVED, BLOCK, Writer.INDEXER) is None
    assert (row.state, row.approved_at) == ("APPROVED", BLOCK)
    # Only the indexer has the event's time: the others never re-stamp.
    for writer in (Writer.OUTBOX, Writer.RECONCILE, Writer.REBUILD):
        assert lifecycle.transition(row, MarketState.APPROVED, EARLIER, writer) is None
    assert row.approved_at == BLOCK


def test_the_backend_cannot_make_a_move_the_machine_does_not_list() -> None:
    row = Row(state="ACTIVE")
    with pytest.raises(IllegalTransition, match="ACTIVE -> APPROVED"):
        lifecycle.transition(row, MarketState.APPROVED, BLOCK, Writer.OUTBOX)
    assert (row.state, row.approved_at) == ("ACTIVE", None)


def test_the_chain_moves_the_row_even_outside_the_machine_and_it_is_counted() -> None:
    """Reconcile catching up several steps, a fork rollback moving a market back."""
    counter = UNEXPECTED.labels("reconcile", "PROPOSED", "ACTIVE")
    before = counter._value.get()
    columns, change = lifecycle.plan("m", "PROPOSED", MarketState.ACTIVE, None, Writer.RECONCILE)
    assert columns == {"state": "ACTIVE"}  # an account holds no event time: nothing stamped
    assert change is not None and (change.old_state, change.new_state) == ("PROPOSED", "ACTIVE")
    assert counter._value.get() == before + 1


def test_a_rebuild_publishes_one_change_only_when_the_state_moved() -> None:
    assert lifecycle.rebuilt("m", "ACTIVE", "ACTIVE") is None
    change = lifecycle.rebuilt("m", "RESOLVING", "ACTIVE")
    assert change is not None and (change.old_state, change.new_state) == ("RESOLVING", "ACTIVE")


def test_the_enum_maps_the_program_spelling_both_ways() -> None:
    for code, state in enumerate(MarketState):
        assert MarketState.from_code(code) is state and state.code == code
        assert MarketState.from_program_name(state.program_name) is state
    assert MarketState.ACTIVE.program_name == "Active"


def test_a_move_made_first_by_the_backend_is_announced_again_when_indexed() -> None:
    change = lifecycle.confirmed("m", MarketState.APPROVED, BLOCK)
    assert change == MarketStateChanged(
        market_id="m", old_state="APPROVED", new_state="APPROVED", at=BLOCK
    )
