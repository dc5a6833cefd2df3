"""The snapshot document and its canonical bytes (pure: no I/O, no clock).

A snapshot is one market's discussion over one UTC day ``[start, end)``: the live posts created
in the window, the proposal and dispute vote tallies at snapshot time, and the CID of the
market's previous snapshot, so a market's snapshots form a hash chain. Its bytes are canonical
JSON (sorted keys, UTF-8, no insignificant whitespace, integers and strings only, no floats):
the same input always gives the same bytes, hence the same CID, and anyone holding the data can
rebuild and check it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SCHEMA = "marketd.discussion-snapshot/1"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class NonCanonicalValueError(TypeError):
    """A value that canonical JSON does not admit (a float, a naive datetime, bytes...)."""


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    wallet: str
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VoteCounts:
    """One market's stored votes of one kind at snapshot time, by value (votes/rules.py's
    `Tally` is the live count the aggregator decides on)."""

    yes: int
    no: int


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class SnapshotInput:
    market_id: str
    day: date
    posts: Sequence[Post]
    previous_cid: str | None
    proposal: VoteCounts
    dispute: VoteCounts


def day_window(day: date) -> Window:
    """The UTC day ``[00:00, next 00:00)``."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return Window(start, start + timedelta(days=1))


def last_complete_day(now: datetime) -> date:
    """The UTC day that ended most recently (what the midnight run archives)."""
    return now.astimezone(UTC).date() - timedelta(days=1)


def is_complete(day: date, now: datetime) -> bool:
    """Whether the day's window has ended: a snapshot of an unfinished day would freeze a
    partial discussion under the day's one and only snapshot."""
    return day_window(day).end <= now.astimezone(UTC)


def retention_cutoff(today: date, retention_days: int) -> date:
    """Snapshots dated before this day are past retention."""
    return today - timedelta(days=retention_days)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with exactly six fractional digits and ``Z``: one spelling per instant
    (``TIMESTAMP_FORMAT``, written with ``isoformat``, which is several times faster than
    ``strftime`` and spells years from 1000 on identically; earlier years take ``strftime``)."""
    if moment.tzinfo is None:
        raise NonCanonicalValueError(f"naive datetime {moment!r}")
    utc = moment.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime(TIMESTAMP_FORMAT)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def document(snapshot: SnapshotInput) -> dict[str, Any]:
    """The document as plain JSON values; posts ordered by (created_at, id).

    Raises ``ValueError`` when a post lies outside the day's window (the caller selected
    the wrong rows).
    """
    window = day_window(snapshot.day)
    start, end = window.start, window.end
    for post in snapshot.posts:
        if not start <= post.created_at < end:
            raise ValueError(f"post {post.id} at {post.created_at} is outside {snapshot.day}")
    posts = sorted(snapshot.posts, key=_post_order)
    return {
        "schema": SCHEMA,
        "market_id": snapshot.market_id,
        "snapshot_date": snapshot.day.isoformat(),
        "window": {"start": timestamp(window.start), "end": timestamp(window.end)},
        "previous_cid": snapshot.previous_cid,
        "discussions_count": len(posts),
        "posts": [
            {
                "id": post.id,
                "wallet": post.wallet,
                "content": post.content,
                "created_at": timestamp(post.created_at),
            }
            for post in posts
        ],
        "votes": {
            "proposal": {"yes": snapshot.proposal.yes, "no": snapshot.proposal.no},
            "dispute": {"yes": snapshot.dispute.yes, "no": snapshot.dispute.no},
        },
    }


def canonical_json(value: Any) -> bytes:
    """Sorted keys, UTF-8 (no ``\\u`` escapes for non-ASCII), ``,`` and ``:`` separators.

    Only dicts with string keys, lists, strings, integers, booleans and None are admitted; a
    float (whose text form is not unique across implementations) raises.
    """
    _check_canonical(value)
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def snapshot_bytes(snapshot: SnapshotInput) -> bytes:
    return canonical_json(document(snapshot))


def parse_document(data: bytes) -> dict[str, Any]:
    """Read snapshot bytes back, refusing anything that is not this schema in canonical form."""
    try:
        value = json.loads(data.decode("utf-8"), parse_float=_refuse_float)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"not a snapshot document: {exc}") from exc
    if not isinstance(value, dict) or value.get("schema") != SCHEMA:
        raise ValueError("not a snapshot document: unknown schema")
    if canonical_json(value) != data:
        raise ValueError("snapshot document is not in canonical form")
    return value


def group_posts(rows: Iterable[tuple[str, Post]]) -> dict[str, list[Post]]:
    """(market id, post) pairs to posts by market, keeping the given order."""
    grouped: dict[str, list[Post]] = {}
    for market_id, post in rows:
        grouped.setdefault(market_id, []).append(post)
    return grouped


def vote_counts(counts: Mapping[bool, int]) -> VoteCounts:
    """Vote counts by value (True = yes / agree / like) as `VoteCounts`."""
    return VoteCounts(yes=counts.get(True, 0), no=counts.get(False, 0))


def _post_order(post: Post) -> tuple[datetime, str]:
    return post.created_at, post.id


def _refuse_float(text: str) -> Any:
    raise ValueError(f"float {text} in a snapshot document")


def _check_canonical(value: Any) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise NonCanonicalValueError(f"float {value!r} has no canonical JSON form")
    if isinstance(value, list | tuple):
        for item in value:
            _check_canonical(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NonCanonicalValueError(f"non-string key {key!r}")
            _check_canonical(item)
        return
    raise NonCanonicalValueError(f"{type(value).__name__} has no canonical JSON form")
