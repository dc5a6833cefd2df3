"""The columns of `markets`, read from the table once, grouped by who writes them.

A market's row has two authors. Its registration (`POST /api/markets`) writes the texts that
no chain event carries (`TEXT_COLUMNS`). Every other column (`CHAIN_COLUMNS`) mirrors the
market's account on chain: the indexer writes them from the program's events (its record,
`marketd.indexer.rows.MarketRow`, holds exactly these) and reconcile repairs them from the
accounts (`COUNTERS` and a few more). The API shows every column (`marketd.markets.schemas`:
`DERIVED_FIELDS`, `NOT_EXPOSED`).

Each group is derived from the table, so a new column falls into one of them by itself;
tests/markets/test_columns.py holds the records and the API schema to these groups.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Integer, Table

from marketd.models import Market

MARKETS = cast(Table, Market.__table__)

COLUMNS: tuple[str, ...] = tuple(column.name for column in MARKETS.columns)
"""Every column, in the table's order."""

TEXT_COLUMNS: tuple[str, ...] = ("question", "description", "category", "tags")
"""Registered off-chain; a market created on chain alone gets placeholders until described."""

CHAIN_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMNS if name not in TEXT_COLUMNS)
"""What the indexer reads and writes, in the table's order (`MarketRow`'s fields)."""

IDENTITY_COLUMNS: tuple[str, ...] = ("id", "on_chain_address", "created_at")
"""Set when the row is made: a MarketCreated for a row registered meanwhile keeps them."""

CHAIN_STATE_COLUMNS: tuple[str, ...] = tuple(
    name for name in CHAIN_COLUMNS if name not in IDENTITY_COLUMNS
)
"""What a MarketCreated overwrites in a row that appeared meanwhile: the chain's values win."""

COUNTERS: tuple[str, ...] = tuple(
    column.name for column in MARKETS.columns if isinstance(column.type, Integer)
)
"""The integer columns: each holds the MarketAccount field of the same name (liquidity,
quantities, volume, the recorded vote counts), which reconcile compares one by one."""
