"""Opaque keyset cursors: stable order under concurrent inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from marketd.core.errors import Problem

T = TypeVar("T")

MAX_LIMIT = 100
DEFAULT_LIMIT = 20


class InvalidCursor(Problem):
    status, slug, title = 422, "invalid-cursor", "Invalid cursor"


def encode_cursor(sort: str, values: Sequence[Any]) -> str:
    payload = {"s": sort, "v": [_encode_value(v) for v in values]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, types: Sequence[type]) -> list[Any]:
    """Decode a cursor made for `sort`; values are parsed back to `types`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if payload["s"] != sort or len(payload["v"]) != len(types):
            raise ValueError("cursor made for another listing")
        return [_decode_value(v, t) for v, t in zip(payload["v"], types, strict=True)]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("The cursor is malformed or belongs to another query.") from exc


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode_value(value: Any, kind: type) -> Any:
    if value is None:
        return None
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive datetime in cursor")
        return parsed
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("expected an integer")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    raise ValueError(f"unsupported cursor type {kind}")


def split_page(
    rows: Sequence[T], limit: int, listing: str, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """Cut `limit + 1` fetched rows into the page and the cursor of the next one (None when
    the extra row is absent, i.e. this is the last page)."""
    if len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), encode_cursor(listing, key(rows[limit - 1]))
