"""The backend's signing key: parsed from BACKEND_KEYPAIR or a keypair file, never shown.

Accepted forms (the two the Solana tooling hands out):

* a base58 string of the 64-byte secret key (Phantom/solana-keygen "private key" export);
* a JSON array of 64 byte values (the `solana-keygen` / `marketd keygen` file format);
* a path to a file holding either of the above.

`solders.keypair.Keypair.__str__` is the base58 secret key, so the keypair is kept inside a
`BackendKey` whose repr/str show only the public key; error messages never echo the input.
"""

from __future__ import annotations

import json
from pathlib import Path

import base58
from pydantic import SecretStr
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.config import Settings

SECRET_KEY_LENGTH = 64


class KeypairError(ValueError):
    """The configured backend keypair is missing or malformed (the message never holds it)."""


class BackendKey:
    """The backend keypair; `signer` is for signing only and must never be logged."""

    __slots__ = ("_keypair",)

    def __init__(self, keypair: Keypair) -> None:
        self._keypair = keypair

    @property
    def signer(self) -> Keypair:
        return self._keypair

    @property
    def pubkey(self) -> Pubkey:
        return self._keypair.pubkey()

    def __repr__(self) -> str:
        return f"BackendKey(pubkey={self.pubkey})"

    __str__ = __repr__


def _from_bytes(raw: bytes) -> Keypair:
    if len(raw) != SECRET_KEY_LENGTH:
        raise KeypairError(f"a secret key has {SECRET_KEY_LENGTH} bytes, got {len(raw)}")
    try:
        return Keypair.from_bytes(raw)
    except ValueError as exc:
        # The public half does not match the secret half; say so without the bytes.
        raise KeypairError("the secret key's public half does not match") from exc


def _from_json_array(text: str) -> Keypair:
    try:
        values = json.loads(text)
    except ValueError:
        raise KeypairError("the keypair JSON does not parse") from None
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in values
    ):
        raise KeypairError("the keypair JSON must be an array of byte values")
    return _from_bytes(bytes(values))


def parse_keypair(text: str) -> Keypair:
    """A keypair from its base58 or JSON-array text (not a path)."""
    stripped = text.strip()
    if stripped.startswith("["):
        return _from_json_array(stripped)
    try:
        raw = bytes(base58.b58decode(stripped))
    except ValueError:
        # `from None`: the decoder's message quotes characters of the secret.
        raise KeypairError("the keypair is neither a JSON array nor base58") from None
    return _from_bytes(raw)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith(".json")


def load_keypair(source: SecretStr | str | Path) -> BackendKey:
    """The key from inline text (base58 / JSON array) or from a file holding it."""
    if isinstance(source, Path):
        return BackendKey(_read_file(source))
    text = source.get_secret_value() if isinstance(source, SecretStr) else source
    stripped = text.strip()
    if not stripped:
        raise KeypairError("the backend keypair is empty")
    if not stripped.startswith("[") and _looks_like_path(stripped):
        return BackendKey(_read_file(Path(stripped).expanduser()))
    return BackendKey(parse_keypair(stripped))


def _read_file(path: Path) -> Keypair:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeypairError(f"cannot read the keypair file {path}: {exc.strerror}") from exc
    return parse_keypair(text)


def backend_key(settings: Settings) -> BackendKey:
    """The configured BACKEND_KEYPAIR (inline or a file path)."""
    if settings.backend_keypair is None:
        raise KeypairError("BACKEND_KEYPAIR is not set")
    return load_keypair(settings.backend_keypair)
