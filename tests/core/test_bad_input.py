"""Bad input is a 4xx problem+json on both backends, never a 500 (#19).

Each case is one input the adversarial run found answered with a 500 (text/plain, no CORS
headers, a traceback): a NUL byte or a lone surrogate in any text, an id longer than its
column, dates near year 1 or 9999 with an offset, a CID that does not parse, well-formed
cursors with the wrong inner values, trade transactions that decode but cannot be trades.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from solders.hash import Hash
from solders.instruction import CompiledInstruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from marketd.chain.program import program_coder, program_id
from marketd.core.schemas import MARKET_ID_MAX_CHARS

from ..helpers.api import TEST_ORIGIN

PROBLEM = "application/problem+json"


def cursor(sort: str, values: Any) -> str:
    raw = json.dumps({"s": sort, "v": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def nested_cursor(depth: int) -> str:
    """A cursor whose first value is `depth` nested lists (too deep for json.dumps to write)."""
    raw = '{"s":"newest","v":[' + "[" * depth + '"x"' + "]" * depth + ',"x"]}'
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def fault(response: httpx.Response, *statuses: int) -> str | None:
    """What is wrong with the answer to a bad input (None: a 4xx problem+json with CORS)."""
    wanted = statuses or range(400, 500)
    kind = response.headers.get("content-type")
    if response.status_code not in wanted or kind != PROBLEM:
        return f"{response.status_code} {kind}: {response.text[:120]}"
    if response.headers.get("access-control-allow-origin") != TEST_ORIGIN:
        return "no CORS headers"
    return None


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert fault(response, *statuses) is None, fault(response, *statuses)


def assert_all_problems(answers: dict[str, httpx.Response], *statuses: int) -> None:
    """Every case is tried before failing, so a failure lists every input still wrong."""
    faults = {case: fault(r, *statuses) for case, r in answers.items()}
    assert {case: f for case, f in faults.items() if f} == {}


@pytest.fixture(autouse=True)
def unraised(api: Any) -> None:
    """A crash answers as the server would (a 500), not as an exception in the test."""
    transport = api.client._transport
    transport.raise_app_exceptions = False


async def get(api: Any, url: str, **params: Any) -> httpx.Response:
    response: httpx.Response = await api.client.get(
        url, params=params or None, headers={"origin": TEST_ORIGIN}
    )
    return response


YEAR_1 = "0001-01-01T00:00:00+01:00"
YEAR_9999 = "9999-12-31T23:59:59-01:00"

PATH_CASES = [
    "/api/markets/%00",
    "/api/markets/a%00b/trades",
    "/api/markets/a%00b/votes",
    "/api/markets/a%00b/prices",
    "/api/markets/a%00b/snapshots",
    "/api/discussions/a%00b",
    "/api/users/a%00b",
    "/api/users/a%00b/trades",
    "/api/users/a%00b/votes",
    "/api/users/a%00b/positions",
    "/api/snapshots/a%00b",
    "/api/markets/" + "x" * (MARKET_ID_MAX_CHARS + 1),
    "/api/markets/" + "x" * (MARKET_ID_MAX_CHARS + 1) + "/trades",
    "/api/markets/" + "x" * (MARKET_ID_MAX_CHARS + 1) + "/votes",
    "/api/markets/" + "x" * (MARKET_ID_MAX_CHARS + 1) + "/snapshots",
    "/api/discussions/" + "x" * (MARKET_ID_MAX_CHARS + 1),
    "/api/users/" + "x" * 45 + "/positions",
    "/api/snapshots/b",
    "/api/snapshots/z",
    "/api/snapshots/0",
]


async def test_bad_paths_are_problems(api: Any) -> None:
    assert_all_problems({path: await get(api, path) for path in PATH_CASES})


QUERY_CASES: list[tuple[str, dict[str, str]]] = [
    ("/api/markets", {"category": "a\x00b"}),
    ("/api/markets", {"q": "a\x00b"}),
    ("/api/markets", {"cursor": "a\x00b"}),
    # well-formed cursors holding the wrong values
    ("/api/markets", {"cursor": cursor("newest", [None, None])}),
    ("/api/markets", {"cursor": cursor("newest", [YEAR_1, "x"])}),
    ("/api/markets", {"cursor": cursor("newest", [YEAR_9999, "x"])}),
    ("/api/markets", {"cursor": cursor("newest", ["2024-01-01T00:00:00+00:00", "a\x00b"])}),
    ("/api/markets", {"cursor": cursor("newest", ["2024-01-01T00:00:00+00:00", "\ud800"])}),
    ("/api/markets", {"cursor": cursor("newest", ["2024-01-01T00:00:00+00:00", "x" * 500])}),
    ("/api/markets", {"cursor": nested_cursor(5000)}),
    ("/api/markets", {"cursor": cursor("volume", [10**30, "x"])}),
    ("/api/markets", {"cursor": cursor("volume", [-(10**30), "x"])}),
    ("/api/markets", {"cursor": cursor("volume", [1.5, "x"])}),
    ("/api/markets", {"cursor": cursor("closing_soon", [YEAR_9999, "x"])}),
    ("/api/markets", {"cursor": cursor("newest", {"a": 1})}),
    ("/api/markets", {"cursor": base64.urlsafe_b64encode(b"[1,2]").decode()}),
    ("/api/markets", {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}),
]


async def test_bad_queries_are_problems(api: Any) -> None:
    answers = {f"{path} {params}": await get(api, path, **params) for path, params in QUERY_CASES}
    assert_all_problems(answers)


async def test_bad_cursors_and_ranges_of_a_market_are_problems(api: Any) -> None:
    _, headers = await api.sign_in()
    market = await api.market(headers)
    wallet = str(Keypair().pubkey())
    trades_cursor = "eyJzIjoidXNlci10cmFkZXMiLCJ2IjpbIjIwMjQtMDEtMDFUMDA6MDA6MDArMDA6MDAiLCJ4Il19"
    cases: list[tuple[str, dict[str, str]]] = [
        (f"/api/users/{wallet}/trades", {"cursor": trades_cursor}),
        (
            f"/api/users/{wallet}/trades",
            {"cursor": cursor("user-trades", [YEAR_1, str(uuid.uuid4())])},
        ),
        (f"/api/users/{wallet}/votes", {"cursor": cursor("user-votes", [YEAR_9999, "a\x00"])}),
        (f"/api/users/{wallet}/positions", {"cursor": cursor("positions", ["a\x00"])}),
        (f"/api/users/{wallet}/positions", {"cursor": cursor("positions", [None])}),
        (f"/api/markets/{market}/trades", {"cursor": cursor("trades", [YEAR_1, "x"])}),
        (f"/api/markets/{market}/trades", {"cursor": cursor("trades", [YEAR_9999, None])}),
        (f"/api/markets/{market}/votes", {"cursor": cursor("votes:proposal", ["a\x00"])}),
        (f"/api/markets/{market}/votes", {"cursor": cursor("votes:proposal", [None])}),
        (f"/api/discussions/{market}", {"cursor": cursor("discussions", [YEAR_1, "x"])}),
        (f"/api/discussions/{market}", {"cursor": cursor("discussions", [YEAR_9999, None])}),
        (f"/api/markets/{market}/snapshots", {"cursor": cursor("snapshots", ["\x00"])}),
        (f"/api/markets/{market}/snapshots", {"cursor": cursor("snapshots", [None])}),
        (f"/api/markets/{market}/prices", {"from": YEAR_1}),
        (f"/api/markets/{market}/prices", {"to": YEAR_9999}),
        (f"/api/markets/{market}/prices", {"from": YEAR_1, "to": YEAR_9999}),
        (f"/api/markets/{market}/prices", {"from": "0001-01-01T00:00:00-01:00"}),
    ]
    answers = {f"{path} {params}": await get(api, path, **params) for path, params in cases}
    assert_all_problems(answers)


async def post(api: Any, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    """`body` is sent as written (json.dumps escapes a lone surrogate as \\ud800)."""
    response: httpx.Response = await api.client.post(
        path,
        content=json.dumps(body).encode(),
        headers=headers | {"content-type": "application/json", "origin": TEST_ORIGIN},
    )
    return response


async def test_bad_bodies_are_problems(api: Any) -> None:
    _, headers = await api.sign_in()
    market = await api.market(headers)
    question = "Will the bad input test pass?"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/api/markets", {"question": question + "\x00"}),
        ("/api/markets", {"question": question + "\ud800"}),
        ("/api/markets", {"question": question, "description": "\x00"}),
        ("/api/markets", {"question": question, "category": "\ud800"}),
        ("/api/markets", {"question": question, "tags": ["a\x00"]}),
        ("/api/markets", {"question": question, "resolver_wallet": "\x00" * 40}),
        ("/api/markets", {"question": question, "closes_at": YEAR_9999}),
        ("/api/markets", {"question": question, "closes_at": "9999-12-31T23:59:59+00:00"}),
        ("/api/markets", {"question": question, "closes_at": YEAR_1}),
        ("/api/discussions", {"market_id": market, "content": "hello\x00"}),
        ("/api/discussions", {"market_id": market, "content": "\ud800"}),
        ("/api/discussions", {"market_id": "x" * (MARKET_ID_MAX_CHARS + 1), "content": "hello"}),
        ("/api/discussions", {"market_id": "\x00", "content": "hello"}),
        ("/api/votes/proposal", {"market_id": "x" * (MARKET_ID_MAX_CHARS + 1), "vote": True}),
        ("/api/votes/proposal", {"market_id": "a\x00", "vote": True}),
        ("/api/votes/dispute", {"market_id": "\ud800", "vote": False}),
        ("/api/trades/buy", {"market_id": "x" * (MARKET_ID_MAX_CHARS + 1), "transaction": "AAAA"}),
        ("/api/trades/sell", {"market_id": "\x00", "transaction": "AAAA"}),
        ("/api/trades/buy", {"market_id": market, "transaction": "AA\x00A"}),
    ]
    answers = {f"{path} {body!r}": await post(api, path, body, headers) for path, body in cases}
    assert_all_problems(answers)


async def test_bad_sign_in_bodies_are_problems(api: Any) -> None:
    cases = [
        ("/api/auth/challenge", {"wallet": "\x00" * 40}),
        ("/api/auth/challenge", {"wallet": "\ud800" * 40}),
        ("/api/auth/verify", {"message": "\x00", "signature": "1" * 80}),
        ("/api/auth/verify", {"message": "\ud800", "signature": "1" * 80}),
        ("/api/auth/verify", {"message": "hi", "signature": "\x00" * 80}),
    ]
    answers = {f"{path} {body!r}": await post(api, path, body, {}) for path, body in cases}
    assert_all_problems(answers)


async def test_percent_encoded_surrogates_arrive_as_replacement_characters(api: Any) -> None:
    """%ED%A0%80 is not UTF-8: the server decodes it as U+FFFD (valid text), so it is an
    unknown id like any other. A lone surrogate that does reach a path or query parameter
    (an ASGI server that decodes otherwise) is refused by the text rule: see below."""
    assert (await get(api, "/api/users/%ED%A0%80/trades")).json()["items"] == []
    assert_problem(await get(api, "/api/markets/%ED%A0%80"), 404)
    assert (await get(api, "/api/markets?q=%ED%A0%80")).status_code == 200


async def asgi_get(api: Any, path: str, query: bytes = b"") -> tuple[int, dict[str, str]]:
    """A GET whose decoded path is `path` as given (a lone surrogate included)."""
    app = api.client._transport.app
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"origin", TEST_ORIGIN.encode())],
        "client": ("203.0.113.9", 5555),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


async def test_a_lone_surrogate_in_a_path_is_a_problem(api: Any) -> None:
    for path in [
        "/api/markets/\ud800",
        "/api/markets/\ud800/trades",
        "/api/users/\udfff/votes",
        "/api/discussions/a\ud800",
        "/api/snapshots/\ud800",
    ]:
        status, headers = await asgi_get(api, path)
        assert status == 422 and headers["content-type"] == PROBLEM, path
        assert headers["access-control-allow-origin"] == TEST_ORIGIN


# --------------------------------------------------------------------- trade transactions


def _signed(message: Message, signers: list[Keypair]) -> str:
    signatures = [signer.sign_message(bytes(message)) for signer in signers]
    transaction = Transaction.populate(message, signatures)
    return base64.b64encode(bytes(transaction)).decode()


def _trade_message(
    api: Any, signer: Keypair, market: Pubkey, *, amount: int = 5_000_000, program_index: int = 2
) -> Message:
    settings = api.container.settings
    coder, program = program_coder(settings), program_id(settings)
    data = coder.encode_instruction("buy_shares", {"outcome": True, "target_cost": amount})
    keys = [signer.pubkey(), market, program] + [Keypair().pubkey() for _ in range(4)]
    # accounts in the IDL's order: config, market, position, user, fee vault, system program
    instruction = CompiledInstruction(program_index, data, bytes([3, 1, 4, 0, 5, 6]))
    return Message.new_with_compiled_instructions(1, 0, 1, keys, Hash.new_unique(), [instruction])


async def test_trade_transactions_that_cannot_be_trades_are_problems(api: Any) -> None:
    signer, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    address = (await api.client.get(f"/api/markets/{market_id}")).json()["on_chain_address"]
    market = Pubkey.from_string(address)

    unsigned = bytes([0]) + bytes(_trade_message(api, signer, market))
    cases = {
        "no_signatures": base64.b64encode(unsigned).decode(),
        "default_signature": base64.b64encode(
            bytes(Transaction.populate(_trade_message(api, signer, market), [Signature.default()]))
        ).decode(),
        "program_index": _signed(_trade_message(api, signer, market, program_index=40), [signer]),
        "amount_2_63": _signed(_trade_message(api, signer, market, amount=2**63), [signer]),
        "amount_max": _signed(_trade_message(api, signer, market, amount=2**64 - 1), [signer]),
    }
    answers = {
        name: await post(
            api, "/api/trades/buy", {"market_id": market_id, "transaction": encoded}, headers
        )
        for name, encoded in cases.items()
    }
    assert_all_problems(answers, 422)
    for answer in answers.values():
        assert answer.json()["type"].endswith("/invalid-transaction"), answer.text


async def test_an_account_index_past_the_keys_is_a_problem(api: Any) -> None:
    signer, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    address = (await api.client.get(f"/api/markets/{market_id}")).json()["on_chain_address"]
    message = _trade_message(api, signer, Pubkey.from_string(address))
    instruction = message.instructions[0]
    broken = CompiledInstruction(
        instruction.program_id_index, instruction.data, bytes([3, 1, 4, 90, 5, 6])
    )
    message = Message.new_with_compiled_instructions(
        1, 0, 1, message.account_keys, message.recent_blockhash, [broken]
    )
    response = await post(
        api,
        "/api/trades/buy",
        {"market_id": market_id, "transaction": _signed(message, [signer])},
        headers,
    )
    assert_problem(response, 422)
    assert response.json()["type"].endswith("/invalid-transaction")


async def test_a_body_nested_too_deep_to_parse_is_a_bad_request(api: Any) -> None:
    for body in [b"[" * 60_000 + b"]" * 60_000, b'{"a":' * 20_000 + b"1" + b"}" * 20_000]:
        response = await api.client.post(
            "/api/auth/challenge",
            content=body,
            headers={"content-type": "application/json", "origin": TEST_ORIGIN},
        )
        assert_problem(response, 400)
        assert response.json()["type"].endswith("/bad-request")
