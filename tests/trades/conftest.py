"""The trade relay's tests run against the chain tests' local chain (`chain_world`) and
database (`chain_database`): their fixtures, reused from tests/chain/conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _load_chain_fixtures() -> ModuleType:
    """tests/ has no packages: load the chain tests' conftest by its path."""
    path = Path(__file__).resolve().parent.parent / "chain" / "conftest.py"
    spec = importlib.util.spec_from_file_location("trades_chain_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_chain = _load_chain_fixtures()
chain_coder = _chain.chain_coder
chain_fixed_program = _chain.chain_fixed_program
chain_world = _chain.chain_world
chain_database = _chain.chain_database
chain_add_market = _chain.chain_add_market
