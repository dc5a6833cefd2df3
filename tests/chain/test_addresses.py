"""The market id <-> 32 on-chain bytes mapping (pure; no chain)."""

from __future__ import annotations

import uuid

import pytest
from solders.pubkey import Pubkey

from marketd.chain.addresses import (
    looks_like_address,
    market_address,
    market_id_bytes,
    market_id_from_bytes,
    new_market_id,
)

PROGRAM = Pubkey.new_unique()
LEGACY = "0b7c3b49-8f0a-4c2b-9a0e-4b8e6f1d2c3a"
PLATFORM = "a3f1c2d4e5b60718293a4b5c6d7e8f90112233445566778899aabbccddeeff00"


def canonical_market_id(text: str) -> str | None:
    """The stored id of the 32 bytes `text` names (None: it names none)."""
    try:
        return market_id_from_bytes(market_id_bytes(text))
    except ValueError:
        return None


@pytest.mark.parametrize(
    "raw", [bytes(32), b"\xff" * 32, bytes(range(32)), bytes.fromhex(PLATFORM)]
)
def test_any_32_bytes_are_their_lowercase_hex_and_back(raw: bytes) -> None:
    market_id = market_id_from_bytes(raw)
    assert market_id == raw.hex() and len(market_id) == 64
    assert market_id_bytes(market_id) == raw


def test_upper_case_hex_names_the_same_bytes() -> None:
    assert market_id_bytes(PLATFORM.upper()) == bytes.fromhex(PLATFORM)


def test_older_uuid_ids_keep_their_ascii_bytes_both_ways() -> None:
    raw = market_id_bytes(LEGACY)
    assert raw == LEGACY.replace("-", "").encode("ascii")
    assert market_id_from_bytes(raw) == LEGACY
    # The same 32 bytes written as hex name the same market, under its stored (UUID) id.
    assert canonical_market_id(raw.hex()) == LEGACY
    assert market_address(PROGRAM, raw.hex()) == market_address(PROGRAM, LEGACY)
    # Upper-case ASCII digits are not the older shape (marketd wrote lower case): plain hex.
    shouting = LEGACY.replace("-", "").upper().encode("ascii")
    assert market_id_from_bytes(shouting) == shouting.hex()


@pytest.mark.parametrize(
    "text", ["", "not-an-id", PLATFORM[:-2], PLATFORM + "00", "zz" * 32, " " + PLATFORM[1:]]
)
def test_text_that_names_no_32_bytes_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        market_id_bytes(text)
    assert canonical_market_id(text) is None


def test_only_32_bytes_are_an_id_and_every_spelling_has_one_canonical_form() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        market_id_from_bytes(bytes(31))
    assert canonical_market_id(PLATFORM.upper()) == PLATFORM
    assert canonical_market_id(uuid.UUID(LEGACY).hex) == LEGACY


def test_new_ids_are_random_hex_never_of_the_older_shape() -> None:
    ids = {new_market_id() for _ in range(200)}
    assert len(ids) == 200
    for market_id in ids:
        assert len(market_id) == 64 and market_id == market_id.lower()
        assert market_id_from_bytes(market_id_bytes(market_id)) == market_id


def test_new_ids_redraw_the_older_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([b"a" * 32, b"\x01" * 32])
    monkeypatch.setattr("marketd.chain.addresses.secrets.token_bytes", lambda n: next(draws))
    assert new_market_id() == "01" * 32


def test_account_addresses_are_told_from_ids() -> None:
    assert looks_like_address(str(market_address(PROGRAM, PLATFORM)))
    assert looks_like_address("11111111111111111111111111111111")
    for text in (PLATFORM, LEGACY, "does-not-exist", "0" * 44, ""):
        assert not looks_like_address(text)
