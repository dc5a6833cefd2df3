"""What any inbound value must be before it reaches a query (pure rules, no I/O).

A string with a NUL character cannot be stored or even compared by PostgreSQL (its text types
refuse U+0000), and one with a lone surrogate (JSON's `"\\ud800"`) cannot be encoded as UTF-8
by any driver: both crashed the request that carried them. A moment near year 1 or 9999 with an
offset cannot be converted to UTC, and one just inside the range overflows the first time a
day is added to it. Each rule raises `InputError`, which the request schemas
(`marketd.core.schemas`) and the cursor decoder (`marketd.core.pagination`) turn into a 422.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

MIN_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)
"""Moments taken from a client, in UTC: from the Unix epoch to the start of year 9999
(exclusive), which leaves a year of room for the arithmetic done with them (price buckets,
lookbacks, closing times)."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""What a BIGINT column holds."""


class InputError(ValueError):
    """The value is not acceptable; `code` is machine-readable, the message is for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_text(value: str) -> str:
    """`value` if it is text that can be stored: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise InputError("text_nul", "must not contain NUL (U+0000) characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(
                "text_surrogate", "must not contain lone surrogates (not valid Unicode text)"
            ) from exc
    return value


def check_moment(value: datetime) -> datetime:
    """An aware `value` as UTC, if it lies in [MIN_MOMENT, MAX_MOMENT)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError("moment_naive", "must carry a time zone offset")
    try:
        moment = value.astimezone(UTC)
    except OverflowError as exc:
        raise InputError("moment_range", _moment_range()) from exc
    if not MIN_MOMENT <= moment < MAX_MOMENT:
        raise InputError("moment_range", _moment_range())
    return moment


def _moment_range() -> str:
    return f"must lie from {MIN_MOMENT.isoformat()} to before {MAX_MOMENT.isoformat()}"


def check_int64(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError("int64_range", "must fit in a signed 64-bit integer")
    return value


_INVISIBLE_FORMAT = frozenset(
    {
        "\u00ad",  # soft hyphen
        "\u034f",  # combining grapheme joiner
        "\u061c",  # Arabic letter mark
        "\u115f",  # Hangul choseong filler
        "\u1160",  # Hangul jungseong filler
        "\u17b4",  # Khmer vowel inherent aq
        "\u17b5",  # Khmer vowel inherent aa
        "\u180e",  # Mongolian vowel separator
        "\u2800",  # Braille pattern blank
        "\u3164",  # Hangul filler
        "\uffa0",  # halfwidth Hangul filler
    }
)


def is_blank_char(char: str) -> bool:
    """Whether `char` shows nothing: white space, an invisible format character (category Cf:
    zero-width space and joiners, direction marks, the byte-order mark...), a variation
    selector, or one of the fillers and blanks that render as empty."""
    if char.isspace() or char in _INVISIBLE_FORMAT:
        return True
    if "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef":
        return True  # variation selectors
    return unicodedata.category(char) == "Cf"


def strip_blank(value: str) -> str:
    """`value` without the blank characters (`is_blank_char`) around it: what "after trimming"
    means for a client's text, so a post of only zero-width characters is empty."""
    start, end = 0, len(value)
    while start < end and is_blank_char(value[start]):
        start += 1
    while end > start and is_blank_char(value[end - 1]):
        end -= 1
    return value[start:end]
