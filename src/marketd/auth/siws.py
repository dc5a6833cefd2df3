"""Sign-In With Solana message grammar (pure; no I/O).

The text follows the Sign-In With Solana / EIP-4361 layout that wallets display:

    {domain} wants you to sign in with your Solana account:
    {address}

    {statement}

    URI: {uri}
    Version: 1
    Chain ID: {chain_id}
    Nonce: {nonce}
    Issued At: {issued_at}
    Expiration Time: {expiration_time}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from solders.pubkey import Pubkey
from solders.signature import Signature

HEADER_SUFFIX = " wants you to sign in with your Solana account:"
SIGNATURE_MIN_CHARS, SIGNATURE_MAX_CHARS = 64, 88
"""Base58 of a 64-byte ed25519 signature."""
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9]{8,64}$")
_FIELD_ORDER = ("URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time")


class SiwsError(ValueError):
    """The message or signature does not hold; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class SiwsMessage:
    domain: str
    address: str
    statement: str
    uri: str
    version: str
    chain_id: str
    nonce: str
    issued_at: datetime
    expiration_time: datetime

    def to_text(self) -> str:
        return (
            f"{self.domain}{HEADER_SUFFIX}\n"
            f"{self.address}\n"
            "\n"
            f"{self.statement}\n"
            "\n"
            f"URI: {self.uri}\n"
            f"Version: {self.version}\n"
            f"Chain ID: {self.chain_id}\n"
            f"Nonce: {self.nonce}\n"
            f"Issued At: {format_time(self.issued_at)}\n"
            f"Expiration Time: {format_time(self.expiration_time)}"
        )


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SiwsError("malformed_message", f"{field} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise SiwsError("malformed_message", f"{field} has no time zone")
    return moment


def parse_message(text: str) -> SiwsMessage:
    """Parse the exact layout `to_text` produces; anything else is rejected."""
    lines = text.split("\n")
    if len(lines) != 11 or lines[2] != "" or lines[4] != "":
        raise SiwsError("malformed_message", "message does not have the Sign-In With Solana layout")
    if not lines[0].endswith(HEADER_SUFFIX):
        raise SiwsError("malformed_message", "missing the sign-in header line")
    domain = lines[0][: -len(HEADER_SUFFIX)]
    fields: dict[str, str] = {}
    for line, name in zip(lines[5:], _FIELD_ORDER, strict=True):
        prefix = f"{name}: "
        if not line.startswith(prefix):
            raise SiwsError("malformed_message", f"expected the {name} field")
        fields[name] = line[len(prefix) :]
    return SiwsMessage(
        domain=domain,
        address=lines[1],
        statement=lines[3],
        uri=fields["URI"],
        version=fields["Version"],
        chain_id=fields["Chain ID"],
        nonce=fields["Nonce"],
        issued_at=_parse_time(fields["Issued At"], "Issued At"),
        expiration_time=_parse_time(fields["Expiration Time"], "Expiration Time"),
    )


def parse_wallet(address: str) -> Pubkey:
    try:
        key = Pubkey.from_string(address)
    except ValueError as exc:
        raise SiwsError("invalid_wallet", "not a base58 Solana public key") from exc
    return key


def verify_signature(message: str, signature_b58: str, wallet: str) -> None:
    """ed25519 check of the signature over the UTF-8 bytes of the message."""
    key = parse_wallet(wallet)
    try:
        signature = Signature.from_string(signature_b58)
    except ValueError as exc:
        raise SiwsError("malformed_signature", "signature is not 64 bytes of base58") from exc
    if not signature.verify(key, message.encode("utf-8")):
        raise SiwsError("bad_signature", "signature does not match the wallet and message")


def check_against_issued(received: SiwsMessage, issued: SiwsMessage, now: datetime) -> None:
    """Every field must equal what the server issued, and the message must still be valid."""
    for field in ("domain", "address", "statement", "uri", "version", "chain_id", "nonce"):
        if getattr(received, field) != getattr(issued, field):
            reason = "domain_mismatch" if field == "domain" else "field_mismatch"
            raise SiwsError(reason, f"{field} differs from the issued challenge")
    if received.issued_at != issued.issued_at or received.expiration_time != issued.expiration_time:
        raise SiwsError("field_mismatch", "times differ from the issued challenge")
    if now >= issued.expiration_time:
        raise SiwsError("expired", "the challenge has expired")


def check_origin(received: SiwsMessage, domain: str, uri: str) -> None:
    """The message is for the domain and URI this server signs in for (see auth.origin)."""
    if received.domain != domain:
        raise SiwsError("domain_mismatch", f"the message is for {received.domain}, not {domain}")
    if received.uri != uri:
        raise SiwsError("field_mismatch", "uri differs from this server's sign-in URI")
