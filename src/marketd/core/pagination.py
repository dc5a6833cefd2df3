"""Opaque keyset cursors: stable order under concurrent inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from marketd.core.errors import Problem

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
