"""Typed errors of the IDL coder and of the on-chain program.

Coder errors form one hierarchy so a caller can catch `CoderError` for "these bytes or this IDL
are not what we expected", or the narrower kinds below when it matters which side failed.
`ProgramError` is different in kind: it is the program telling us it refused an instruction
(Anchor custom error codes, >= 6000 for the program's own `#[error_code]` enum).
"""

from __future__ import annotations

import re


class CoderError(Exception):
    """Base class of every error raised by the IDL model, Borsh coder and log parser."""


class IdlParseError(CoderError):
    """The IDL document is malformed or uses a construct this coder does not support."""


class BorshDecodeError(CoderError):
    """Bytes do not decode: too short, trailing bytes, bad tag, or unknown discriminator."""


class BorshEncodeError(CoderError):
    """A value does not fit its IDL type: out-of-range int, wrong length, missing field, ..."""


class UnknownNameError(BorshDecodeError, BorshEncodeError):
    """No instruction/account/event/type of that name in the IDL.

    It is both a decode and an encode error, so code catching either of them sees it whichever
    direction it was coding in.
    """


class ProgramError(Exception):
    """An instruction failed with a program error code, resolved against the IDL when possible."""

    def __init__(self, code: int, name: str | None = None, msg: str | None = None) -> None:
        self.code = code
        self.name = name
        self.msg = msg
        label = name if name is not None else "unknown program error"
        super().__init__(f"{label} ({code}){': ' + msg if msg else ''}")


_CUSTOM_ERROR = re.compile(r"custom program error: 0x([0-9a-fA-F]+)")


def parse_custom_error_code(text: str) -> int | None:
    """The code in a runtime message such as ``... failed: custom program error: 0x1770``."""
    match = _CUSTOM_ERROR.search(text)
    return int(match.group(1), 16) if match else None
