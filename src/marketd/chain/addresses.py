"""Program-derived addresses of zmart_core and the market id <-> 32-byte seed mapping.

The program keys markets by a 32-byte `market_id`; the platform's database keys them by a
UUID string. The 32 bytes are the ASCII of the UUID's 32 lowercase hex digits, so the id
reads the same in an explorer and in the API, and the mapping needs no lookup table.
"""

from __future__ import annotations

import uuid

from solders.pubkey import Pubkey

MARKET_SEED = b"market"
CONFIG_SEED = b"global-config"
POSITION_SEED = b"position"


def market_id_bytes(market_id: str) -> bytes:
    return uuid.UUID(market_id).hex.encode("ascii")


def market_id_from_bytes(raw: bytes) -> str:
    if len(raw) != 32:
        raise ValueError("market_id must be 32 bytes")
    return str(uuid.UUID(raw.decode("ascii")))


def market_address(program_id: Pubkey, market_id: str) -> Pubkey:
    address, _bump = Pubkey.find_program_address(
        [MARKET_SEED, market_id_bytes(market_id)], program_id
    )
    return address


def global_config_address(program_id: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address([CONFIG_SEED], program_id)
    return address


def position_address(program_id: Pubkey, market: Pubkey, user: Pubkey) -> Pubkey:
    address, _bump = Pubkey.find_program_address(
        [POSITION_SEED, bytes(market), bytes(user)], program_id
    )
    return address
