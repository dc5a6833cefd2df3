"""Typed errors of the IPFS layer; callers map them (e.g. the API turns
``ContentUnavailableError`` into 502)."""

from __future__ import annotations


class IpfsError(Exception):
    """Base of every error raised by ``marketd.ipfs``."""


class InvalidCidError(IpfsError, ValueError):
    """A string or byte sequence that is not a CID this layer accepts."""


class DecodeError(IpfsError, ValueError):
    """Bytes that are not a well-formed protobuf / dag-pb / UnixFS / CBOR / CAR structure."""


class VerificationError(IpfsError):
    """Content does not match its CID: a wrong hash, a missing, extra or malformed block."""


class CidMismatchError(IpfsError):
    """A remote store reported a CID different from the one computed locally.

    This means the remote built a different DAG (other chunker, layout or CID version) or
    corrupted the content; it is never retried silently.
    """

    def __init__(self, store: str, expected: str, actual: str) -> None:
        super().__init__(f"{store} returned CID {actual}, locally computed {expected}")
        self.store = store
        self.expected = expected
        self.actual = actual


class BlockstoreError(IpfsError):
    """A store failed to perform an operation (transport error, bad status, bad reply)."""


class ContentNotFoundError(IpfsError, KeyError):
    """The store does not hold the requested content."""


class ContentUnavailableError(IpfsError):
    """No gateway or store could serve verified content for a CID."""
