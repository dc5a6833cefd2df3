"""One definition of the `markets` columns (`marketd.markets.columns`), read from the table:
the indexer's record, reconcile and the API schema are held to it, so a column added to the
table cannot be silently left out of any of them (pure: no database)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import BaseModel

from marketd.indexer.reconcile import expected_columns
from marketd.indexer.rows import MarketRow
from marketd.markets import columns
from marketd.markets.schemas import DERIVED_FIELDS, NOT_EXPOSED, MarketDetailOut, MarketOut
from marketd.models.tables import MARKET_START


def account_fields(idl_path: Path) -> set[str]:
    idl = json.loads(idl_path.read_text())
    [market_account] = [t for t in idl["types"] if t["name"] == "MarketAccount"]
    return {field["name"] for field in market_account["type"]["fields"]}


def test_the_groups_partition_the_table() -> None:
    assert set(columns.TEXT_COLUMNS) | set(columns.CHAIN_COLUMNS) == set(columns.COLUMNS)
    assert not set(columns.TEXT_COLUMNS) & set(columns.CHAIN_COLUMNS)
    assert set(columns.IDENTITY_COLUMNS) <= set(columns.CHAIN_COLUMNS)
    assert set(columns.CHAIN_STATE_COLUMNS) == set(columns.CHAIN_COLUMNS) - set(
        columns.IDENTITY_COLUMNS
    )


def test_the_indexers_record_holds_the_chain_columns_in_the_tables_order() -> None:
    """The store builds `MarketRow`s positionally from a select of these columns."""
    assert tuple(f.name for f in fields(MarketRow)) == columns.CHAIN_COLUMNS


def test_a_new_market_starts_with_values_for_chain_columns_only() -> None:
    assert set(MARKET_START) <= set(columns.CHAIN_STATE_COLUMNS)


def test_every_counter_is_a_field_of_the_market_account(zmart_idl_path: Path) -> None:
    """Reconcile compares each integer column with the account's field of the same name."""
    assert columns.COUNTERS
    assert set(columns.COUNTERS) <= account_fields(zmart_idl_path)
    assert {"b_parameter", "current_liquidity", "dispute_disagree"} <= set(columns.COUNTERS)


def test_reconcile_repairs_chain_columns_only() -> None:
    account = dict.fromkeys(columns.COUNTERS, 1) | {
        "state": "Active",
        "creator": "wallet",
        "proposed_outcome": None,
        "final_outcome": None,
        "is_cancelled": False,
    }
    assert set(expected_columns(account)) <= set(columns.CHAIN_STATE_COLUMNS)


@pytest.mark.parametrize("schema", [MarketOut, MarketDetailOut])
def test_every_api_field_is_a_column_or_a_documented_derived_field(
    schema: type[BaseModel],
) -> None:
    shown = set(schema.model_fields)
    assert shown <= set(columns.COLUMNS) | set(DERIVED_FIELDS)
    assert set(DERIVED_FIELDS) <= shown
    assert not set(DERIVED_FIELDS) & set(columns.COLUMNS)


@pytest.mark.parametrize("schema", [MarketOut, MarketDetailOut])
def test_every_column_is_shown_or_listed_as_not_exposed(schema: type[BaseModel]) -> None:
    shown = set(schema.model_fields) | {c for made_of in DERIVED_FIELDS.values() for c in made_of}
    assert set(NOT_EXPOSED) <= set(columns.COLUMNS) - shown
    assert set(columns.COLUMNS) <= shown | set(NOT_EXPOSED)
