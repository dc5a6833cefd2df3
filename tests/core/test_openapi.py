"""The OpenAPI document says what the API really does: the bearer scheme exactly where a
session is needed, and on every route the problem+json errors it can answer (checked against
the document's text and against real requests)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel
from solders.keypair import Keypair

from marketd.app import create_app
from marketd.chain.addresses import new_market_id
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.errors import PROBLEM_MEDIA_TYPE, Problem
from marketd.core.migrate import upgrade
from marketd.core.openapi import (
    BEARER_SCHEME,
    PROBLEM_REF,
    api_routes,
    can_fail_validation,
    depends_on,
    install_openapi,
    problems,
)
from marketd.core.ratelimit import EXEMPT_PATHS
from marketd.core.schemas import MARKET_ID_MAX_CHARS

SESSION_ROUTES = {
    ("post", "/api/auth/logout"),
    ("post", "/api/markets"),
    ("post", "/api/votes/proposal"),
    ("post", "/api/votes/dispute"),
    ("post", "/api/discussions"),
    ("delete", "/api/discussions/{post_id}"),
    ("post", "/api/trades/buy"),
    ("post", "/api/trades/sell"),
}

# What each route can answer besides success, read from its code (services, dependencies,
# validation, the limiter). /healthz and /readyz are exempt from the limiter; /ws is the
# WebSocket handshake, not an HTTP route of the limiter.
ERRORS: dict[tuple[str, str], set[int]] = {
    ("get", "/healthz"): set(),
    ("get", "/readyz"): {503},
    ("post", "/api/auth/challenge"): {400, 413, 422, 429},
    ("post", "/api/auth/verify"): {400, 413, 401, 422, 429},
    ("post", "/api/auth/logout"): {401, 429},
    ("get", "/api/markets"): {422, 429},
    ("post", "/api/markets"): {400, 413, 401, 422, 429},
    ("get", "/api/activity"): {422, 429},
    ("get", "/api/markets/categories"): {429},
    ("get", "/api/markets/trending"): {422, 429},
    ("get", "/api/markets/{market_id}"): {404, 422, 429},
    ("get", "/api/markets/{market_id}/related"): {404, 422, 429},
    ("get", "/api/markets/{market_id}/trades"): {404, 422, 429},
    ("get", "/api/markets/{market_id}/votes"): {404, 422, 429},
    ("get", "/api/markets/{market_id}/prices"): {404, 422, 429},
    ("get", "/api/markets/{market_id}/snapshots"): {404, 422, 429},
    ("get", "/api/snapshots/{cid}"): {404, 422, 429, 502},
    ("post", "/api/votes/proposal"): {400, 413, 401, 403, 404, 409, 422, 429, 503},
    ("post", "/api/votes/dispute"): {400, 413, 401, 403, 404, 409, 422, 429, 503},
    ("get", "/api/discussions/{market_id}"): {404, 422, 429},
    ("post", "/api/discussions"): {400, 413, 401, 404, 409, 422, 429},
    ("delete", "/api/discussions/{post_id}"): {401, 403, 404, 422, 429},
    ("post", "/api/trades/buy"): {400, 413, 401, 404, 409, 422, 429},
    ("post", "/api/trades/sell"): {400, 413, 401, 404, 409, 422, 429},
    ("get", "/api/users/{wallet}"): {404, 422, 429},
    ("get", "/api/users/{wallet}/trades"): {422, 429},
    ("get", "/api/users/{wallet}/votes"): {422, 429},
    ("get", "/api/users/{wallet}/positions"): {422, 429},
    ("get", "/api/users/{wallet}/portfolio"): {422, 429},
    ("get", "/ws"): set(),
}

PATH_VALUES = {
    "market_id": new_market_id(),
    "post_id": str(uuid.uuid4()),
    "wallet": "11111111111111111111111111111111",
    "cid": "not-a-cid",
}


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if int(status) >= 400}


@pytest.fixture
def settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "rate_limit": "100000/minute",
            "sign_in_rate_limit": "100000/minute",
            "ip_wallets_limit": 100_000,
            "_env_file": None,
        }
        return Settings(**(values | overrides))

    return build


@pytest_asyncio.fixture
async def serve(settings) -> AsyncIterator[Callable[..., Any]]:
    """An app on the embedded database (the document is the same on every backend)."""
    containers: list[Container] = []
    clients: list[httpx.AsyncClient] = []

    async def start(**overrides: Any) -> tuple[FastAPI, httpx.AsyncClient]:
        container = Container.build(settings(**overrides))
        containers.append(container)
        await upgrade(container.database.engine)
        app = create_app(container=container)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        clients.append(client)
        return app, client

    yield start
    for client in clients:
        await client.aclose()
    for container in containers:
        await container.close()


@pytest_asyncio.fixture
async def document(serve) -> dict[str, Any]:
    _, client = await serve()
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


# ----------------------------------------------------------------------- the document


def test_bearer_scheme_is_declared(document):
    scheme = document["components"]["securitySchemes"][BEARER_SCHEME]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert "/api/auth/verify" in scheme["description"]


def test_security_is_required_exactly_on_session_routes(document):
    operations = _operations(document)
    secured = {key for key, operation in operations.items() if "security" in operation}
    assert secured == SESSION_ROUTES
    for key in secured:
        operation = operations[key]
        assert operation["security"] == [{BEARER_SCHEME: []}]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "security" not in document  # no global requirement: the reads stay open


def test_every_route_lists_the_problems_it_can_answer(document):
    operations = _operations(document)
    assert set(operations) == set(ERRORS)
    documented = {key: _error_statuses(operation) for key, operation in operations.items()}
    assert documented == ERRORS
    for key, operation in operations.items():
        for status in _error_statuses(operation):
            response = operation["responses"][str(status)]
            assert response["content"] == {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
            assert response["description"], (key, status)


def test_fastapi_validation_schema_is_gone(document):
    text = json.dumps(document)
    assert "HTTPValidationError" not in text
    assert "#/components/schemas/ValidationError" not in text


def test_every_rate_limited_route_can_answer_429(document):
    for (_, path), operation in _operations(document).items():
        limited = path not in EXEMPT_PATHS and path != "/ws"
        assert ("429" in operation["responses"]) == limited, path
        if limited:
            assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_declared_descriptions_follow_the_generated_ones(document):
    listing = document["paths"]["/api/markets"]["get"]["responses"]["422"]["description"]
    assert "`validation-error`" in listing and "`invalid-cursor`" in listing
    # Both: a CID path parameter is text (no NUL, no lone surrogate), and then a CID.
    cid = document["paths"]["/api/snapshots/{cid}"]["get"]["responses"]["422"]["description"]
    assert cid.startswith("Invalid request (`validation-error`") and "`invalid-cid`" in cid


def test_problem_schema_is_what_errors_send(document):
    schema = document["components"]["schemas"]["Problem"]
    body = Problem("Something.").body("/somewhere")
    assert set(schema["required"]) == set(body)
    assert set(body) <= set(schema["properties"])
    item = document["components"]["schemas"]["ProblemFieldError"]
    assert item["required"] == ["field", "message", "code"]
    assert schema["properties"]["errors"]["items"]["$ref"].endswith("/ProblemFieldError")


# ------------------------------------------------------------- against real requests


def _url(path: str, values: dict[str, str] | None = None, **query: Any) -> str:
    values = PATH_VALUES | (values or {})
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _check_problem(response: httpx.Response, document: dict[str, Any]) -> None:
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    schema = document["components"]["schemas"]["Problem"]
    assert set(schema["required"]) <= set(body), body
    assert set(body) <= set(schema["properties"]), body  # every extension member documented
    assert body["status"] == response.status_code
    field_error = document["components"]["schemas"]["ProblemFieldError"]
    for item in body.get("errors", []):
        assert set(item) == set(field_error["required"])


async def _sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    keypair = Keypair()
    challenge = await client.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
    message = challenge.json()["message"]
    signature = keypair.sign_message(message.encode())
    verified = await client.post(
        "/api/auth/verify", json={"message": message, "signature": str(signature)}
    )
    return {"Authorization": f"Bearer {verified.json()['token']}"}


async def test_routes_answer_only_documented_statuses(serve, document):
    """Every route, asked without a session and with dummy path values, answers success or a
    documented problem; a route with the lock answers 401 then, and with a bad token."""
    _, client = await serve()
    for (method, path), operation in _operations(document).items():
        if path == "/ws":
            continue
        response = await client.request(method, _url(path))
        documented = _error_statuses(operation)
        assert response.status_code < 300 or response.status_code in documented, (
            method,
            path,
            response.status_code,
        )
        if response.status_code >= 400:
            _check_problem(response, document)
        if (method, path) in SESSION_ROUTES:
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            revoked = await client.request(
                method, _url(path), headers={"Authorization": "Bearer not-a-session"}
            )
            assert revoked.status_code == 401


async def test_documented_422s_happen(serve, document):
    """Where the document lists 422, an invalid request gets it (signed in): a body route with
    an empty object, a listing with `limit=0`, a post id that is not a UUID, a bad CID, a
    market id or wallet longer than any can be."""
    _, client = await serve()
    headers = await _sign_in(client)
    checked = 0
    for (method, path), operation in _operations(document).items():
        if "422" not in operation["responses"]:
            continue
        parameters = {p["name"] for p in operation.get("parameters", [])}
        if "requestBody" in operation:
            response = await client.request(method, _url(path), json={}, headers=headers)
        elif "limit" in parameters:
            response = await client.request(method, _url(path, limit=0), headers=headers)
        elif "interval" in parameters:
            response = await client.request(method, _url(path, interval="2m"), headers=headers)
        else:
            too_long = {"market_id": "m" * (MARKET_ID_MAX_CHARS + 1), "wallet": "w" * 45}
            url = _url(path, {"post_id": "not-a-uuid", "cid": "not-a-cid"} | too_long)
            response = await client.request(method, url, headers=headers)
        assert response.status_code == 422, (method, path, response.text)
        _check_problem(response, document)
        checked += 1
    assert checked == sum("422" in op["responses"] for op in _operations(document).values())


async def test_documented_413s_and_400s_happen(serve, document):
    """Every route documented with 413 refuses an oversized body, and 400 a Content-Length
    that is not a number; no other route documents them."""
    _, client = await serve()
    checked = 0
    for (method, path), operation in _operations(document).items():
        responses = operation["responses"]
        assert ("413" in responses) == ("requestBody" in operation) == ("400" in responses)
        if "413" not in responses:
            continue
        big = await client.request(
            method,
            _url(path),
            content=b"{" + b" " * (256 * 1024) + b"}",
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413, (method, path)
        _check_problem(big, document)
        bad = await client.request(
            method,
            _url(path),
            content=b"{}",
            headers={"content-type": "application/json", "content-length": "many"},
        )
        assert bad.status_code == 400, (method, path)
        _check_problem(bad, document)
        checked += 1
    assert checked == 8


async def test_documented_429s_happen(serve, document):
    """With a budget of one request, every route the document marks rate limited answers 429
    (with Retry-After) and the exempt ones do not. Sign-in has a budget of its own."""
    _, client = await serve(rate_limit="1/minute", sign_in_rate_limit="1/minute")
    assert (await client.get("/api/markets")).status_code == 200
    challenge = await client.post("/api/auth/challenge", json={"wallet": str(Keypair().pubkey())})
    assert challenge.status_code == 200  # the sign-in budget was untouched by the listing
    for (method, path), operation in _operations(document).items():
        if path == "/ws":
            continue
        response = await client.request(method, _url(path))
        if "429" in operation["responses"]:
            assert response.status_code == 429, (method, path)
            assert int(response.headers["retry-after"]) >= 1
            _check_problem(response, document)
        else:
            assert response.status_code != 429, (method, path)


async def test_signed_in_routes_answer_documented_statuses(serve, document):
    """The session routes with a live session: success or a documented problem (the dummy
    ids do not exist)."""
    _, client = await serve()
    headers = await _sign_in(client)
    bodies: dict[str, dict[str, Any]] = {
        "/api/markets": {"question": "Will the documented statuses hold?", "category": "other"},
        "/api/votes/proposal": {"market_id": PATH_VALUES["market_id"], "vote": True},
        "/api/votes/dispute": {"market_id": PATH_VALUES["market_id"], "vote": False},
        "/api/discussions": {"market_id": PATH_VALUES["market_id"], "content": "Hello."},
        "/api/trades/buy": {"market_id": PATH_VALUES["market_id"], "transaction": "AA=="},
        "/api/trades/sell": {"market_id": PATH_VALUES["market_id"], "transaction": "AA=="},
    }
    operations = _operations(document)
    for method, path in sorted(SESSION_ROUTES - {("post", "/api/auth/logout")}):
        response = await client.request(method, _url(path), json=bodies.get(path), headers=headers)
        documented = _error_statuses(operations[(method, path)])
        assert response.status_code < 300 or response.status_code in documented, (
            method,
            path,
            response.text,
        )
        if response.status_code >= 400:
            _check_problem(response, document)
    logout = await client.post("/api/auth/logout", headers=headers)
    assert logout.status_code == 204
    again = await client.post("/api/auth/logout", headers=headers)
    assert again.status_code == 401


# ---------------------------------------------------------------- how routes are read


def _session() -> str:
    return "wallet"


class _Body(BaseModel):
    name: str


def _facts_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/r", dependencies=[Depends(_session)])

    @router.get("/{name}")
    async def plain(name: str, cursor: str | None = None) -> None: ...

    @router.get("/{name}/typed", responses=problems({404: None}))
    async def typed(name: str, limit: int = 1) -> None: ...

    @router.get("/{name}/short")
    async def short(name: str, q: Annotated[str | None, Query(max_length=3)] = None) -> None: ...

    @router.get("/{name}/needs")
    async def needs(name: str, q: str) -> None: ...

    @router.post("")
    async def create(body: _Body) -> None: ...

    app.include_router(router)

    @app.get("/open")
    async def open_route() -> None: ...

    return app


def test_what_can_fail_validation_and_who_needs_a_session():
    app = _facts_app()
    routes = {str(route.path_format): route for route in api_routes(app.routes)}
    fails = {path: can_fail_validation(route) for path, route in routes.items()}
    assert fails == {
        "/r/{name}": False,  # a path string and an optional string: nothing to reject
        "/r/{name}/typed": True,
        "/r/{name}/short": True,
        "/r/{name}/needs": True,
        "/r": True,
        "/open": False,
    }
    # A dependency of the router counts as one of each route included through it.
    needs = {path: depends_on(route, _session) for path, route in routes.items()}
    assert needs == {path: path != "/open" for path in routes}


def test_install_openapi_builds_the_document_once():
    app = _facts_app()
    install_openapi(app, session_dependency=_session, rate_limit_exempt={"/open"})
    first = app.openapi()
    assert app.openapi() is first
    typed = first["paths"]["/r/{name}/typed"]["get"]["responses"]
    assert sorted(typed) == ["200", "401", "404", "422", "429"]
    assert typed["404"]["description"] == "Not found (`not-found`)."
    assert sorted(first["paths"]["/open"]["get"]["responses"]) == ["200"]
    assert "422" not in first["paths"]["/r/{name}"]["get"]["responses"]
