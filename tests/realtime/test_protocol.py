"""Parsing of client frames and the shapes of server frames."""

from __future__ import annotations

import json

import pytest

from marketd.realtime import protocol
from marketd.realtime.protocol import (
    MAX_SEQ,
    Auth,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    parse_client_message,
)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('{"type":"subscribe","marketId":"m-1"}', Subscribe("m-1")),
        ('{"type":"subscribe","marketId":"m-1","sinceSeq":0}', Subscribe("m-1", 0)),
        ('{"type":"subscribe","marketId":"m-1","sinceSeq":41}', Subscribe("m-1", 41)),
        ('{"type":"subscribe","marketId":"m-1","sinceSeq":null}', Subscribe("m-1")),
        ('{"type":"unsubscribe","marketId":"m-2"}', Unsubscribe("m-2")),
        ('{"type":"ping"}', Ping()),
        ('{"type":"ping","id":7}', Ping(7)),
        ('{"type":"auth","token":"abc"}', Auth("abc")),
        ('{"type":"subscribe","channel":"activity"}', Join("activity")),
        (
            '{"type":"subscribe","channel":"activity","kinds":["trade","vote","trade"]}',
            Join("activity", frozenset({"trade", "vote"})),
        ),
        ('{"type":"subscribe","channel":"activity","kinds":null}', Join("activity")),
        ('{"type":"unsubscribe","channel":"activity"}', Leave("activity")),
    ],
)
def test_valid_messages(text, parsed):
    assert parse_client_message(text) == parsed


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "invalid_json"),
        ('"subscribe"', "invalid_message"),
        ("null", "invalid_message"),
        ('{"marketId":"m"}', "unknown_type"),
        ('{"type":"SUBSCRIBE","marketId":"m"}', "unknown_type"),
        ('{"type":"subscribe"}', "invalid_message"),
        ('{"type":"subscribe","marketId":""}', "invalid_message"),
        ('{"type":"subscribe","marketId":12}', "invalid_message"),
        ('{"type":"subscribe","marketId":"' + "m" * 65 + '"}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m","sinceSeq":-1}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m","sinceSeq":1.5}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m","sinceSeq":true}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m","sinceSeq":"3"}', "invalid_message"),
        ('{"type":"unsubscribe"}', "invalid_message"),
        ('{"type":"auth","token":""}', "invalid_message"),
        ('{"type":"subscribe","channel":"trades"}', "unknown_channel"),
        ('{"type":"unsubscribe","channel":null}', "unknown_channel"),
        ('{"type":"subscribe","channel":"activity","kinds":[]}', "invalid_message"),
        ('{"type":"subscribe","channel":"activity","kinds":"trade"}', "invalid_message"),
        ('{"type":"subscribe","channel":"activity","kinds":["discussion"]}', "invalid_message"),
        ('{"type":"subscribe","channel":"activity","kinds":[1]}', "invalid_message"),
        ('{"type":"auth","token":' + json.dumps("t" * 513) + "}", "invalid_message"),
        ("[" * 3000 + "]" * 3000, "message_too_large"),
        # Nested past the JSON parser's depth within the size limit.
        ("[" * 2000 + "]" * 2000, "invalid_json"),
        ('{"type":"ping","id":' + "[" * 2000 + "]" * 2000 + "}", "invalid_json"),
        # Lone surrogates and NUL cannot be sent to Redis, PostgreSQL or the socket.
        ('{"type":"auth","token":"\\ud800abc"}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m\\udfff"}', "invalid_message"),
        ('{"type":"subscribe","marketId":"m\\u0000"}', "invalid_message"),
        # Beyond any seq (Redis refuses stream ids past 2^64; the in-memory log did not).
        ('{"type":"subscribe","marketId":"m","sinceSeq":' + str(10**30) + "}", "invalid_message"),
        ('{"type":"subscribe","marketId":"m","sinceSeq":' + str(2**53) + "}", "invalid_message"),
    ],
)
def test_invalid_messages_have_a_stable_code(text, code):
    with pytest.raises(ProtocolError) as raised:
        parse_client_message(text)
    assert raised.value.code == code
    frame = json.loads(raised.value.frame())
    assert frame["type"] == "error"
    assert frame["code"] == code
    assert frame["message"]


def test_the_largest_since_seq_is_accepted():
    assert parse_client_message(
        '{"type":"subscribe","marketId":"m","sinceSeq":' + str(MAX_SEQ) + "}"
    ) == Subscribe("m", MAX_SEQ)


def test_an_error_never_echoes_a_market_id_that_cannot_be_sent():
    with pytest.raises(ProtocolError) as raised:
        parse_client_message('{"type":"subscribe","marketId":"\\ud800","sinceSeq":-1}')
    assert "marketId" not in json.loads(raised.value.frame())


def test_errors_about_a_market_name_it():
    with pytest.raises(ProtocolError) as raised:
        parse_client_message('{"type":"subscribe","marketId":"m-9","sinceSeq":-4}')
    assert json.loads(raised.value.frame())["marketId"] == "m-9"


def test_server_frames():
    assert json.loads(protocol.subscribed("m")) == {"type": "subscribed", "marketId": "m"}
    assert json.loads(protocol.unsubscribed("m")) == {"type": "unsubscribed", "marketId": "m"}
    assert json.loads(protocol.market_state("m", 4, {"id": "m"})) == {
        "type": "market_state",
        "marketId": "m",
        "seq": 4,
        "market": {"id": "m"},
    }
    assert json.loads(protocol.resync_required("m", 2, 50, 99)) == {
        "type": "resync_required",
        "marketId": "m",
        "sinceSeq": 2,
        "oldestSeq": 50,
        "seq": 99,
    }
    assert json.loads(protocol.pong(None)) == {"type": "pong"}
    assert json.loads(protocol.pong("x")) == {"type": "pong", "id": "x"}
    assert json.loads(protocol.heartbeat()) == {"type": "heartbeat"}
    assert json.loads(protocol.authenticated("w")) == {"type": "authenticated", "wallet": "w"}
    assert json.loads(protocol.error("c", "m")) == {"type": "error", "code": "c", "message": "m"}
    event = {"seq": 3, "type": "trade", "marketId": "m", "price": "0.5"}
    assert json.loads(protocol.event_frame(event)) == event
    assert " " not in protocol.event_frame(event)
