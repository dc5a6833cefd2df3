"""The snapshot document: canonical bytes, windows, the same input giving the same CID."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketd.ipfs.builder import file_cid
from marketd.ipfs.cid import cid_to_str
from marketd.snapshots.rules import (
    SCHEMA,
    TIMESTAMP_FORMAT,
    NonCanonicalValueError,
    Post,
    SnapshotInput,
    VoteCounts,
    canonical_json,
    day_window,
    document,
    group_posts,
    is_complete,
    last_complete_day,
    parse_document,
    retention_cutoff,
    snapshot_bytes,
    timestamp,
    vote_counts,
)

DAY = date(2026, 3, 14)
START = datetime(2026, 3, 14, tzinfo=UTC)


def post(index: int, hours: float, content: str = "hello") -> Post:
    return Post(
        id=f"00000000-0000-4000-8000-{index:012d}",
        wallet=f"Wallet{index}",
        content=content,
        created_at=START + timedelta(hours=hours),
    )


def snapshot(posts: list[Post], previous: str | None = None) -> SnapshotInput:
    return SnapshotInput(
        market_id="3f1c8c1e-6a55-4f7e-9f59-2b2f0e4c2a10",
        day=DAY,
        posts=posts,
        previous_cid=previous,
        proposal=VoteCounts(yes=7, no=3),
        dispute=VoteCounts(yes=0, no=1),
    )


def test_day_window_is_the_utc_day_half_open() -> None:
    window = day_window(DAY)
    assert window.start == START
    assert window.end == datetime(2026, 3, 15, tzinfo=UTC)
    assert window.contains(START)
    assert window.contains(window.end - timedelta(microseconds=1))
    assert not window.contains(window.end)
    assert not window.contains(START - timedelta(microseconds=1))


def test_complete_days_and_the_default_day() -> None:
    midnight = datetime(2026, 3, 15, tzinfo=UTC)
    assert is_complete(DAY, midnight)
    assert not is_complete(DAY, midnight - timedelta(microseconds=1))
    assert last_complete_day(midnight) == DAY
    assert last_complete_day(midnight + timedelta(hours=23, minutes=59)) == DAY
    # A clock in another zone is read in UTC: 01:00+02:00 is still the 14th in UTC.
    plus_two = timezone(timedelta(hours=2))
    assert last_complete_day(datetime(2026, 3, 15, 1, tzinfo=plus_two)) == date(2026, 3, 13)
    assert retention_cutoff(date(2026, 6, 12), 90) == DAY


def test_document_content_and_order() -> None:
    later, earlier = post(2, 5.5, "second"), post(1, 1.25, "first")
    doc = document(snapshot([later, earlier], previous="bafkreiprevious"))
    assert doc["schema"] == SCHEMA
    assert doc["snapshot_date"] == "2026-03-14"
    assert doc["window"] == {
        "start": "2026-03-14T00:00:00.000000Z",
        "end": "2026-03-15T00:00:00.000000Z",
    }
    assert doc["previous_cid"] == "bafkreiprevious"
    assert doc["discussions_count"] == 2
    assert [p["content"] for p in doc["posts"]] == ["first", "second"]
    assert doc["posts"][0] == {
        "id": earlier.id,
        "wallet": "Wallet1",
        "content": "first",
        "created_at": "2026-03-14T01:15:00.000000Z",
    }
    assert doc["votes"] == {"proposal": {"yes": 7, "no": 3}, "dispute": {"yes": 0, "no": 1}}


def test_posts_at_the_same_instant_are_ordered_by_id() -> None:
    a, b = post(1, 2), post(2, 2)
    assert document(snapshot([b, a]))["posts"][0]["id"] == a.id


def test_post_outside_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        document(snapshot([post(1, 24)]))
    with pytest.raises(ValueError, match="outside"):
        document(snapshot([post(1, -0.001)]))


def test_canonical_bytes() -> None:
    data = canonical_json({"b": [1, True, None], "a": {"é": "ü ✓"}, "c": "line\nbreak"})
    assert data == '{"a":{"é":"ü ✓"},"b":[1,true,null],"c":"line\\nbreak"}'.encode()
    assert b" " not in canonical_json({"x": [1, 2], "y": {"z": 3}})


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": 0.1}, [float("nan")], {1: "int key"}, b"bytes", datetime(2026, 1, 1, tzinfo=UTC)],
)
def test_non_canonical_values_are_refused(value: object) -> None:
    with pytest.raises(NonCanonicalValueError):
        canonical_json(value)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(NonCanonicalValueError, match="naive"):
        timestamp(datetime(2026, 1, 1))
    other_zone = datetime(2026, 3, 14, 3, tzinfo=timezone(timedelta(hours=3)))
    assert timestamp(other_zone) == "2026-03-14T00:00:00.000000Z"


def test_same_input_gives_the_same_cid() -> None:
    posts = [post(i, i * 0.5, f"post {i} — ünïcödé") for i in range(40)]
    first = snapshot_bytes(snapshot(posts, previous="bafkreiprev"))
    # Same content, given in another order and as fresh objects.
    again = snapshot_bytes(
        snapshot(
            list(reversed([post(i, i * 0.5, f"post {i} — ünïcödé") for i in range(40)])),
            previous="bafkreiprev",
        )
    )
    assert first == again
    assert cid_to_str(file_cid(first)) == cid_to_str(file_cid(again))
    assert cid_to_str(file_cid(first)).startswith("bafkrei")


def test_any_change_changes_the_cid() -> None:
    base = [post(1, 1), post(2, 2)]
    reference = cid_to_str(file_cid(snapshot_bytes(snapshot(base))))
    variants = [
        snapshot([post(1, 1), post(2, 2, "edited")]),
        snapshot([post(1, 1)]),
        snapshot(base, previous="bafkreiother"),
        SnapshotInput("other-market", DAY, base, None, VoteCounts(7, 3), VoteCounts(0, 1)),
        SnapshotInput(
            snapshot(base).market_id, DAY, base, None, VoteCounts(7, 4), VoteCounts(0, 1)
        ),
    ]
    cids = {cid_to_str(file_cid(snapshot_bytes(variant))) for variant in variants}
    assert reference not in cids
    assert len(cids) == len(variants)


def test_parse_document_round_trip_and_refusals() -> None:
    data = snapshot_bytes(snapshot([post(1, 3, "ok")]))
    assert parse_document(data) == json.loads(data)
    with pytest.raises(ValueError, match="canonical"):
        parse_document(json.dumps(json.loads(data), indent=1).encode())
    with pytest.raises(ValueError, match="unknown schema"):
        parse_document(b'{"schema":"other"}')
    with pytest.raises(ValueError, match="unknown schema"):
        parse_document(b"[1]")
    with pytest.raises(ValueError, match="float"):
        parse_document(b'{"schema":"marketd.discussion-snapshot/1","x":1.5}')
    with pytest.raises(ValueError, match="not a snapshot"):
        parse_document(b"\xff\xfe")


def test_grouping_and_tallies() -> None:
    a, b, c = post(1, 1), post(2, 2), post(3, 3)
    assert group_posts([("m1", a), ("m2", b), ("m1", c)]) == {"m1": [a, c], "m2": [b]}
    assert vote_counts({True: 4}) == VoteCounts(yes=4, no=0)
    assert vote_counts({False: 2, True: 1}) == VoteCounts(yes=1, no=2)


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_timestamp_spells_every_instant_as_the_format_says(
    moment: datetime, offset_minutes: int
) -> None:
    """The fast spelling equals TIMESTAMP_FORMAT's, years before 1000 included (and documents
    written before it existed keep their CIDs)."""
    zone = timezone(timedelta(minutes=offset_minutes))
    expected = moment.strftime(TIMESTAMP_FORMAT)
    assert timestamp(moment) == expected
    assert timestamp(moment.astimezone(zone)) == expected


def test_timestamp_of_early_years() -> None:
    assert timestamp(datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "999-01-02T03:04:05.000006Z"
    assert timestamp(datetime(1000, 1, 1, tzinfo=UTC)) == "1000-01-01T00:00:00.000000Z"
