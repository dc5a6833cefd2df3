"""The input rules (marketd.core.inputs), the cursor decoder that applies them, and the guard
that every inbound string of every route carries the text rule."""

from __future__ import annotations

import base64
import json
import tempfile
import typing
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from pydantic import BaseModel, TypeAdapter, ValidationError

from marketd.app import create_app
from marketd.config import Settings
from marketd.core import inputs
from marketd.core.openapi import api_routes
from marketd.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from marketd.core.schemas import TEXT_RULE, Moment, Text


@pytest.mark.parametrize("text", ["", "plain", "ünïcødé ✓", "emoji 🎉", "\ufffd"])
def test_text_that_can_be_stored_passes(text: str) -> None:
    assert inputs.check_text(text) == text


@pytest.mark.parametrize(
    ("text", "code"),
    [("a\x00b", "text_nul"), ("\x00", "text_nul"), ("a\ud800", "text_surrogate")],
)
def test_nul_and_lone_surrogates_are_refused(text: str, code: str) -> None:
    with pytest.raises(inputs.InputError) as raised:
        inputs.check_text(text)
    assert raised.value.code == code


def test_the_text_type_reports_the_rule_as_a_validation_error() -> None:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(Text).validate_python("a\x00")
    (error,) = raised.value.errors()
    assert error["type"] == "text_nul" and "NUL" in error["msg"]


def test_moments_are_aware_in_range_and_given_back_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = inputs.check_moment(datetime(2030, 1, 1, 2, tzinfo=plus_two))
    assert moment == datetime(2030, 1, 1, tzinfo=UTC) and moment.tzinfo is UTC
    assert inputs.check_moment(inputs.MIN_MOMENT) == inputs.MIN_MOMENT
    for bad, code in [
        (datetime(2030, 1, 1), "moment_naive"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "moment_range"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-1))), "moment_range"),
        (inputs.MAX_MOMENT, "moment_range"),
        (inputs.MIN_MOMENT - timedelta(microseconds=1), "moment_range"),
    ]:
        with pytest.raises(inputs.InputError) as raised:
            inputs.check_moment(bad)
        assert raised.value.code == code


def test_the_moment_type_parses_then_checks() -> None:
    adapter = TypeAdapter(Moment)
    assert adapter.validate_python("2030-01-01T01:00:00+01:00") == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as raised:
        adapter.validate_python("0001-01-01T00:00:00+01:00")
    assert raised.value.errors()[0]["type"] == "moment_range"


def test_int64_bounds() -> None:
    assert inputs.check_int64(2**63 - 1) == 2**63 - 1
    assert inputs.check_int64(-(2**63)) == -(2**63)
    for bad in (2**63, -(2**63) - 1):
        with pytest.raises(inputs.InputError):
            inputs.check_int64(bad)


@pytest.mark.parametrize(
    "blank",
    [
        "\u200b",  # zero-width space
        "\u200c\u200d",  # zero-width non-joiner, joiner
        "\ufeff",  # byte-order mark
        "\u2060",  # word joiner
        "\u200e\u200f",  # direction marks
        "\u00ad",  # soft hyphen
        "\u3164",  # Hangul filler
        "\u2800",  # Braille blank
        "\ufe0f",  # variation selector
        " \t\n\u00a0\u3000",  # white space
    ],
)
def test_invisible_characters_are_blank(blank: str) -> None:
    assert inputs.strip_blank(blank) == ""
    assert inputs.strip_blank(blank + "text" + blank) == "text"


def test_visible_text_and_inner_joiners_are_kept() -> None:
    family = "👩\u200d👩\u200d👧"  # joiners inside an emoji sequence
    assert inputs.strip_blank(f"\u200b {family} \u200b") == family
    assert inputs.strip_blank("a\u200bb") == "a\u200bb"


# ------------------------------------------------------------------------ the cursor decoder


def raw_cursor(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def test_cursors_round_trip_every_kind() -> None:
    moment, day, key = datetime(2030, 5, 1, tzinfo=UTC), date(2030, 5, 1), uuid.uuid4()
    cursor = encode_cursor("t", [moment, day.isoformat(), 7, "abc", str(key)])
    assert decode_cursor(cursor, "t", (datetime, date, int, str, uuid.UUID)) == [
        moment,
        day,
        7,
        "abc",
        key,
    ]


@pytest.mark.parametrize(
    ("payload", "types"),
    [
        ('{"s":"t","v":[null]}', (str,)),
        ('{"s":"t","v":[null]}', (datetime,)),
        ('{"s":"t","v":[1]}', (str,)),
        ('{"s":"t","v":[true]}', (int,)),
        ('{"s":"t","v":[1.5]}', (int,)),
        ('{"s":"t","v":["1"]}', (int,)),
        ('{"s":"t","v":[' + str(2**63) + "]}", (int,)),
        ('{"s":"t","v":[' + "9" * 5000 + "]}", (int,)),
        ('{"s":"t","v":["x"]}', (uuid.UUID,)),
        ('{"s":"t","v":["2030-13-01"]}', (date,)),
        ('{"s":"t","v":["2030-01-01T00:00:00"]}', (datetime,)),
        ('{"s":"t","v":["0001-01-01T00:00:00+01:00"]}', (datetime,)),
        ('{"s":"t","v":["a\\u0000"]}', (str,)),
        ('{"s":"t","v":["\\ud800"]}', (str,)),
        ('{"s":"t","v":["' + "x" * 200 + '"]}', (str,)),
        ('{"s":"t","v":[' + "[" * 100_000 + "]" * 100_000 + "]}", (str,)),
        ('{"s":"t","v":{"a":1}}', (str,)),
        ('{"s":"t"}', (str,)),
        ('{"s":"other","v":["x"]}', (str,)),
        ('{"s":"t","v":["x","y"]}', (str,)),
        ('["t",["x"]]', (str,)),
        ('"t"', (str,)),
        ("not json", (str,)),
    ],
)
def test_cursors_with_the_wrong_values_are_invalid(payload: str, types: tuple[type, ...]) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(raw_cursor(payload), "t", types)


@pytest.mark.parametrize("cursor", ["%%%", "a", base64.urlsafe_b64encode(b"\xff\xfe").decode()])
def test_cursors_that_are_not_base64_json_are_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, "t", (str,))


def test_a_cursor_of_a_kind_no_listing_uses_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        decode_cursor(raw_cursor(json.dumps({"s": "t", "v": ["1.5"]})), "t", (float,))


# ------------------------------------------------- every inbound string carries the text rule


def _strings_without_rule(annotation: Any, metadata: list[Any], where: str) -> list[str]:
    """Where `annotation` holds a `str` that is not checked by TEXT_RULE."""
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _strings_without_rule(inner, [*metadata, *extra], where)
    if annotation is str:
        return [] if TEXT_RULE in metadata else [where]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [
            missing
            for name, field in annotation.model_fields.items()
            for missing in _strings_without_rule(
                field.annotation, list(field.metadata), f"{where}.{name}"
            )
        ]
    return [
        missing
        for arg in typing.get_args(annotation)
        for missing in _strings_without_rule(arg, [], where)
    ]


def _dependants(dependant: Dependant) -> list[Dependant]:
    return [dependant, *(d for sub in dependant.dependencies for d in _dependants(sub))]


def test_every_inbound_string_of_every_route_carries_the_text_rule() -> None:
    settings = Settings(_env_file=None, environment="test", data_dir=tempfile.mkdtemp())
    app = create_app(settings)
    missing: list[str] = []
    for route in api_routes(app.routes):
        for dependant in _dependants(route.dependant):
            for field in (*dependant.path_params, *dependant.query_params):
                info = field.field_info
                missing += _strings_without_rule(
                    info.annotation, list(info.metadata), f"{route.path_format} {field.name}"
                )
        if route.body_field is not None:
            missing += _strings_without_rule(
                route.body_field.field_info.annotation, [], f"{route.path_format} body"
            )
    assert missing == []


def test_the_guard_finds_plain_strings() -> None:
    class Body(BaseModel):
        plain: str
        checked: Text
        listed: list[str] = []
        optional: Text | None = None

    assert _strings_without_rule(Body, [], "Body") == ["Body.plain", "Body.listed"]
