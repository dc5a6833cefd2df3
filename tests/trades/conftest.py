"""The trade relay's tests run against the chain tests' local chain (`chain_world`) and
database (`chain_database`): their fixtures, reused from tests/chain/conftest.py (tests/ has
no packages, so the file is run by its path)."""

from __future__ import annotations

import runpy
from pathlib import Path

_chain = runpy.run_path(str(Path(__file__).resolve().parent.parent / "chain" / "conftest.py"))
chain_coder = _chain["chain_coder"]
chain_fixed_program = _chain["chain_fixed_program"]
chain_world = _chain["chain_world"]
chain_database = _chain["chain_database"]
chain_add_market = _chain["chain_add_market"]
