"""The program marketd talks to: its id and IDL coder, from config or the bundled real IDL."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from solders.pubkey import Pubkey

from marketd.chain.idl import Idl, IdlCoder
from marketd.config import Settings

# The real program's Anchor IDL (zmart_core), used when IDL_PATH is unset: production and the
# local chain's twin of zmart_core alike. Origin: the platform's handed-over reference material
# (shared/idl/zmart_core.json), copied unchanged.
BUNDLED_IDL = Path(__file__).parent / "zmart_core.idl.json"


@lru_cache(maxsize=8)
def _coder_for(path: Path) -> IdlCoder:
    return IdlCoder(Idl.from_path(path))


def program_coder(settings: Settings) -> IdlCoder:
    return _coder_for((settings.idl_path or BUNDLED_IDL).resolve())


def program_id(settings: Settings) -> Pubkey:
    return Pubkey.from_string(settings.program_id)
