"""The trade relay's tests run against the chain tests' local chain (`chain_world`) and
database (`chain_database`): their fixtures, imported from tests/chain/conftest.py."""

from __future__ import annotations

from ..chain.conftest import (  # noqa: F401 (fixtures, found by pytest by name)
    chain_add_market,
    chain_coder,
    chain_database,
    chain_fixed_program,
    chain_world,
)
