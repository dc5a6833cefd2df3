"""Program-derived addresses of zmart_core and the market id <-> 32-byte seed mapping.

The program keys markets by a 32-byte `market_id` of any value; the platform keys them by text.
A market's id is the lowercase hex of its 32 bytes (64 characters), the platform's own format:
its web front end creates markets with 32 random bytes, marketd creates its new ones the same way
(`new_market_id`).

marketd's older markets have UUID ids ("3f2c...-...", 36 characters) whose 32 on-chain bytes are
the ASCII of the UUID's 32 lowercase hex digits. Those rows keep their ids, so the reverse mapping
keeps the rule: 32 bytes that are all lowercase hex digits read as that UUID, anything else as
hex. The two shapes never overlap (a random id has that ASCII shape with probability 2^-128, and
`new_market_id` never draws one), so every 32 bytes have exactly one id and back.
"""

from __future__ import annotations

import re
import secrets
import uuid

from solders.pubkey import Pubkey

MARKET_SEED = b"market"
CONFIG_SEED = b"global-config"
POSITION_SEED = b"position"
MARKET_ID_BYTES = 32
WALLET_MIN_CHARS, WALLET_MAX_CHARS = 32, 44
"""A wallet's address: base58 of a 32-byte public key (each leading zero byte is one "1")."""

_HEX_ID = re.compile(r"[0-9a-fA-F]{64}")
_LEGACY_DIGITS = frozenset(b"0123456789abcdef")


def _is_legacy(raw: bytes) -> bool:
    """The ASCII shape of marketd's older UUID ids: 32 lowercase hex digits."""
    return all(byte in _LEGACY_DIGITS for byte in raw)


def market_id_bytes(market_id: str) -> bytes:
    """The 32 on-chain bytes of a market id (64 hex digits, or an older id's UUID text).

    Raises ValueError for any other text."""
    if _HEX_ID.fullmatch(market_id):
        return bytes.fromhex(market_id)
    return uuid.UUID(market_id).hex.encode("ascii")


def market_id_from_bytes(raw: bytes) -> str:
    """The market id of 32 on-chain bytes (the inverse of `market_id_bytes`)."""
    if len(raw) != MARKET_ID_BYTES:
        raise ValueError("market_id must be 32 bytes")
    if _is_legacy(raw):
        return str(uuid.UUID(raw.decode("ascii")))
    return raw.hex()


def new_market_id() -> str:
    """A fresh market id: 32 random bytes as hex (never of the older ids' ASCII shape)."""
    while True:
        raw = secrets.token_bytes(MARKET_ID_BYTES)
        if not _is_legacy(raw):
            return raw.hex()


def looks_like_address(text: str) -> bool:
    """Whether `text` is a base58 public key (32 bytes). No market id has this shape: hex ids
    are 64 characters (a key's text is at most 44), UUID text has dashes (not base58)."""
    try:
        Pubkey.from_string(text)
    except ValueError:
        return False
    return True


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
