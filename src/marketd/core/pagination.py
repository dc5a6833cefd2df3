"""Opaque keyset cursors: stable order under concurrent inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from fastapi import Query

from marketd.core.errors import Problem
from marketd.core.inputs import InputError, check_int64, check_moment, check_text

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
PageLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
"""The `limit` query parameter of every cursor-paginated listing (default `DEFAULT_LIMIT`)."""


class InvalidCursor(Problem):
    status, slug, title = 422, "invalid-cursor", "Invalid cursor"


def encode_cursor(sort: str, values: Sequence[Any]) -> str:
    payload = {"s": sort, "v": [_encode_value(v) for v in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MAX_TEXT_VALUE = 128
"""Characters of a text value in a cursor (ids, wallets, sort keys are shorter)."""


def decode_cursor(cursor: str, sort: str, types: Sequence[type]) -> list[Any]:
    """Decode a cursor made for `sort`; values are parsed back to `types` (`datetime`, `date`,
    `int`, `str`, `uuid.UUID`) and held to what the listing's query can take: a cursor is
    client input like any other. Anything else is InvalidCursor (422)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict) or payload.get("s") != sort:
            raise ValueError("cursor made for another listing")
        values = payload.get("v")
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("cursor made for another listing")
        return [_decode_value(v, t) for v, t in zip(values, types, strict=True)]
    except (ValueError, RecursionError) as exc:  # InputError, bad base64/UTF-8/JSON, deep JSON
        raise InvalidCursor("The cursor is malformed or belongs to another query.") from exc


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode_value(value: Any, kind: type) -> Any:
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("expected an integer")
        return check_int64(value)
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if len(value) > MAX_TEXT_VALUE:
        raise InputError("cursor_value", "cursor value too long")
    check_text(value)
    if kind is str:
        return value
    if kind is datetime:
        return check_moment(datetime.fromisoformat(value))
    if kind is date:
        return date.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    raise TypeError(f"unsupported cursor type {kind}")


def split_page(
    rows: Sequence[T], limit: int, listing: str, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """Cut `limit + 1` fetched rows into the page and the cursor of the next one (None when
    the extra row is absent, i.e. this is the last page)."""
    if len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), encode_cursor(listing, key(rows[limit - 1]))
