"""Sign-In With Solana message grammar and checks (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from marketd.auth.siws import (
    SiwsError,
    SiwsMessage,
    check_against_issued,
    parse_message,
    parse_wallet,
    verify_signature,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def message(**changes: object) -> SiwsMessage:
    base = SiwsMessage(
        domain="app.example:443",
        address=str(Keypair.from_seed(bytes(32)).pubkey()),
        statement="Sign in to marketd.",
        uri="https://app.example",
        version="1",
        chain_id="mainnet",
        nonce="abc123def456",
        issued_at=NOW,
        expiration_time=NOW + timedelta(minutes=5),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_text_layout_matches_the_standard():
    text = message().to_text()
    assert text.splitlines() == [
        "app.example:443 wants you to sign in with your Solana account:",
        message().address,
        "",
        "Sign in to marketd.",
        "",
        "URI: https://app.example",
        "Version: 1",
        "Chain ID: mainnet",
        "Nonce: abc123def456",
        "Issued At: 2026-05-01T12:00:00.123Z",
        "Expiration Time: 2026-05-01T12:05:00.123Z",
    ]


@given(
    statement=st.text(
        st.characters(blacklist_characters="\n\r", blacklist_categories=["Cs"]), max_size=80
    ),
    nonce=st.from_regex(r"[A-Za-z0-9]{8,32}", fullmatch=True),
    minutes=st.integers(1, 10_000),
)
def test_round_trip(statement: str, nonce: str, minutes: int):
    original = message(
        statement=statement, nonce=nonce, expiration_time=NOW + timedelta(minutes=minutes)
    )
    assert parse_message(original.to_text()) == original


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        message().to_text().replace(" wants you to sign in", " would like you to sign in"),
        message().to_text().replace("URI:", "Uri:"),
        message().to_text().replace("2026-05-01T12:00:00.123Z", "yesterday"),
        message().to_text().replace("2026-05-01T12:00:00.123Z", "2026-05-01T12:00:00"),
        message().to_text() + "\nResources: x",
    ],
)
def test_malformed_messages(text: str):
    with pytest.raises(SiwsError) as error:
        parse_message(text)
    assert error.value.reason == "malformed_message"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("domain", "evil.example"),
        ("address", str(Keypair().pubkey())),
        ("statement", "Other"),
        ("uri", "https://evil.example"),
        ("version", "2"),
        ("chain_id", "devnet"),
        ("nonce", "zzzzzzzzzz"),
        ("issued_at", NOW - timedelta(seconds=1)),
        ("expiration_time", NOW + timedelta(hours=1)),
    ],
)
def test_every_field_is_checked_against_the_issued_challenge(field, value):
    issued = message()
    with pytest.raises(SiwsError) as error:
        check_against_issued(replace(issued, **{field: value}), issued, NOW)
    expected = "domain_mismatch" if field == "domain" else "field_mismatch"
    assert error.value.reason == expected


def test_the_issued_challenge_itself_passes_until_it_expires():
    issued = message()
    check_against_issued(issued, issued, NOW)
    with pytest.raises(SiwsError) as expired:
        check_against_issued(issued, issued, issued.expiration_time)
    assert expired.value.reason == "expired"


def test_signatures_are_ed25519_over_the_utf8_text():
    keypair = Keypair()
    text = message(address=str(keypair.pubkey()), statement="Ünïcode ✓").to_text()
    signature = keypair.sign_message(text.encode("utf-8"))
    verify_signature(text, str(signature), str(keypair.pubkey()))
    with pytest.raises(SiwsError) as wrong:
        verify_signature(text + " ", str(signature), str(keypair.pubkey()))
    assert wrong.value.reason == "bad_signature"
    with pytest.raises(SiwsError) as malformed:
        verify_signature(text, "not-base58!", str(keypair.pubkey()))
    assert malformed.value.reason == "malformed_signature"


def test_wallets_are_canonical_base58_keys():
    key = Keypair().pubkey()
    assert parse_wallet(str(key)) == key


@pytest.mark.parametrize("bad", ["", "0OIl", "1" * 60])
def test_text_that_is_no_canonical_base58_key_is_no_wallet(bad):
    with pytest.raises(SiwsError):
        parse_wallet(bad)
