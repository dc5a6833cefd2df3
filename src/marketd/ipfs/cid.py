"""CID helpers on top of the ``multiformats`` package.

marketd only produces and accepts what UnixFS files use: sha2-256 multihashes with the ``raw``
(0x55) or ``dag-pb`` (0x70) codec, as CIDv1 (written base32, ``b...``) or CIDv0 (written base58btc,
``Qm...``, always dag-pb).

The hot paths (a CID per block, its string per stored block and recorded row) avoid the generic,
type-validating constructors and encoders of ``multiformats``, which cost ~100-170 µs a call;
tests check they give exactly what the generic paths give.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import base58
from multiformats import CID, multibase, multicodec, multihash

from marketd.ipfs.errors import DecodeError, InvalidCidError, VerificationError
from marketd.ipfs.varint import decode_varint

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12
SHA2_256_LENGTH = 32
_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb"}
_CODECS = {code: multicodec.get(name) for code, name in _CODEC_NAMES.items()}
_BASES = {0: multibase.get("base58btc"), 1: multibase.get("base32")}
_SHA2_256 = multihash.get("sha2-256")

# ``multiformats`` ships no type information, so a CID is typed as this alias.
Cid = Any


def parse_cid(value: str | bytes | Cid) -> Cid:
    """Parse a CID string (any multibase, or a bare ``Qm...``), binary CID or ``CID`` object.

    The result uses the canonical text base (base58btc for v0, base32 for v1) and is checked to
    be a sha2-256 raw / dag-pb CID.
    """
    if isinstance(value, CID):
        cid = value
    elif isinstance(value, str | bytes):
        try:
            cid = CID.decode(value)
        except (ValueError, LookupError) as exc:  # multiformats: IndexError on "b", "z", "0"
            raise InvalidCidError(f"not a CID: {value!r}") from exc
    else:
        raise InvalidCidError(f"not a CID: {value!r}")
    _check_supported(cid)
    return cid.set(base="base58btc" if cid.version == 0 else "base32")


def _check_supported(cid: Cid) -> None:
    if cid.hashfun.code != SHA2_256:
        raise InvalidCidError(f"unsupported multihash {cid.hashfun.name} in {cid}")
    if cid.codec.code not in _CODEC_NAMES:
        raise InvalidCidError(f"unsupported codec {cid.codec.name} in {cid}")


def cid_to_str(cid: Cid) -> str:
    """The canonical string: ``Qm...`` for CIDv0, ``b...`` (base32) for CIDv1."""
    if not isinstance(cid, CID):
        return str(parse_cid(cid))
    _check_supported(cid)
    if cid.version == 0:
        text: str = base58.b58encode(bytes(cid)).decode("ascii")
        return text
    return "b" + base64.b32encode(bytes(cid)).decode("ascii").lower().rstrip("=")


def cid_for_block(data: bytes, codec: int, version: int) -> Cid:
    """The sha2-256 CID of a block's bytes."""
    if version == 0 and codec != DAG_PB:
        raise InvalidCidError("CIDv0 can only address dag-pb blocks")
    digest = hashlib.sha256(data).digest()
    return CID(_BASES[version], version, _CODECS[codec], (_SHA2_256, digest))


def codec_of(cid: Cid) -> int:
    code: int = cid.codec.code
    return code


def verify_block(cid: Cid, data: bytes) -> None:
    """Raise ``VerificationError`` unless ``data`` hashes to ``cid``."""
    # The multihash minus its two-byte header (0x12 0x20): ``raw_digest`` re-parses it, slowly.
    if hashlib.sha256(data).digest() != cid.digest[2:]:
        raise VerificationError(f"block bytes do not hash to {cid}")


def read_binary_cid(buf: bytes | memoryview, offset: int = 0) -> tuple[Cid, int]:
    """Read a binary CID at ``offset`` (as framed in CAR sections); return it and the end offset.

    A CIDv0 is a bare 34-byte sha2-256 multihash (``0x12 0x20 ...``); a CIDv1 is
    ``varint(1) varint(codec) varint(hash) varint(length) digest``.
    """
    if len(buf) >= offset + 2 and buf[offset] == SHA2_256 and buf[offset + 1] == SHA2_256_LENGTH:
        end = offset + 2 + SHA2_256_LENGTH
    else:
        version, position = decode_varint(buf, offset)
        if version != 1:
            raise DecodeError(f"unsupported CID version {version}")
        _codec, position = decode_varint(buf, position)
        _hash, position = decode_varint(buf, position)
        length, position = decode_varint(buf, position)
        end = position + length
    if end > len(buf):
        raise DecodeError("truncated CID")
    return parse_cid(bytes(buf[offset:end])), end
