"""An unexpected exception is a problem+json 500 with CORS headers; OPTIONS, 405 and CORS
preflights name each path's real methods; request booleans are strict; invisible characters
are blank (#19)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

from marketd.core.crash import InternalErrorMiddleware
from marketd.markets.service import MarketService

from ..helpers.api import TEST_ORIGIN

PROBLEM = "application/problem+json"


# --------------------------------------------------------------------- unexpected exceptions


async def test_an_unexpected_exception_is_a_problem_500_with_cors(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> None:
        raise RuntimeError("secret internals: postgres://user:pw@db")

    monkeypatch.setattr(MarketService, "list_markets", broken)
    with structlog.testing.capture_logs() as logs:
        response = await api.client.get("/api/markets?limit=7", headers={"origin": TEST_ORIGIN})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["access-control-allow-origin"] == TEST_ORIGIN
    body = response.json()
    assert body["type"].endswith("/internal-error") and body["status"] == 500
    assert body["instance"] == "/api/markets"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    (logged,) = [entry for entry in logs if entry["event"] == "unhandled exception"]
    assert logged["log_level"] == "error" and logged["path"] == "/api/markets"
    assert logged["exc_info"][0] is RuntimeError  # the traceback, which the renderer prints


async def test_an_exception_after_the_response_started_is_logged_and_reraised() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    transport = httpx.ASGITransport(app=InternalErrorMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with structlog.testing.capture_logs() as logs, pytest.raises(RuntimeError):
            await client.get("/stream")
    assert [entry["event"] for entry in logs] == ["unhandled exception"]


async def test_websocket_scopes_pass_the_error_middleware() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await InternalErrorMiddleware(app)({"type": "websocket"}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket"]


# ------------------------------------------------------------------ methods of each path

PATHS = {
    "/api/markets": "GET, OPTIONS, POST",
    "/api/markets/m1": "GET, OPTIONS",
    "/api/discussions": "OPTIONS, POST",
    "/api/discussions/m1": "DELETE, GET, OPTIONS",
    "/api/auth/logout": "OPTIONS, POST",
    "/healthz": "GET, OPTIONS",
}


async def test_options_lists_the_methods_of_the_path(api: Any) -> None:
    for path, allow in PATHS.items():
        response = await api.client.options(path)
        assert response.status_code == 204 and response.content == b"", path
        assert response.headers["allow"] == allow


async def test_a_method_the_path_does_not_take_is_a_405_naming_all_it_takes(api: Any) -> None:
    response = await api.client.put("/api/markets", json={})
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == "GET, OPTIONS, POST"
    deleted = await api.client.delete("/api/markets/m1")
    assert deleted.status_code == 405 and deleted.headers["allow"] == "GET, OPTIONS"


async def test_an_unknown_path_stays_a_404_for_options(api: Any) -> None:
    response = await api.client.options("/api/nothing-here")
    assert response.status_code == 404


def preflight(method: str) -> dict[str, str]:
    return {"Origin": TEST_ORIGIN, "Access-Control-Request-Method": method}


async def test_a_preflight_allows_the_methods_of_the_path(api: Any) -> None:
    for path, allow in PATHS.items():
        methods = [m for m in allow.split(", ") if m != "OPTIONS"]
        response = await api.client.options(path, headers=preflight(methods[-1]))
        assert response.status_code == 200, path
        assert response.headers["access-control-allow-methods"] == ", ".join(methods)
        assert response.headers["access-control-allow-origin"] == TEST_ORIGIN


async def test_a_preflight_for_a_method_the_path_does_not_take_is_refused(api: Any) -> None:
    for path, method in [("/api/markets", "DELETE"), ("/nowhere", "GET")]:
        response = await api.client.options(path, headers=preflight(method))
        assert response.status_code == 400, path


async def test_preflights_of_paths_with_the_same_methods_share_one_answerer(api: Any) -> None:
    app: FastAPI = api.client._transport.app
    for path in ("/api/markets/a", "/api/markets/b", "/api/users/w"):
        await api.client.options(path, headers=preflight("GET"))
    stack = app.middleware_stack
    while stack is not None and not hasattr(stack, "_preflights"):
        stack = getattr(stack, "app", None)
    assert stack is not None
    assert list(stack._preflights) == [("GET",)]


# ---------------------------------------------------------------- strict booleans, blanks


async def test_a_vote_is_a_json_boolean(api: Any) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    for vote in ["yes", "true", 1, 0, "1", None, 1.0]:
        response = await api.client.post(
            "/api/votes/proposal", json={"market_id": market_id, "vote": vote}, headers=headers
        )
        assert response.status_code == 422, (vote, response.text)
        assert response.json()["errors"][0]["field"] == "body.vote"


async def test_true_and_false_are_votes(api: Any) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    for vote in (True, False):
        response = await api.client.post(
            "/api/votes/proposal", json={"market_id": market_id, "vote": vote}, headers=headers
        )
        assert response.status_code == 200 and response.json()["vote"] is vote


async def test_a_post_of_only_invisible_characters_is_empty(api: Any) -> None:
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    for content in ["\u200b", "\u200b\u200c\u200d\u2060\ufeff", " \u200b \n"]:
        response = await api.client.post(
            "/api/discussions", json={"market_id": market_id, "content": content}, headers=headers
        )
        assert response.status_code == 422, content
        assert response.json()["errors"][0]["message"] == "content is empty after trimming"


async def test_invisible_characters_around_a_post_and_a_question_are_trimmed(api: Any) -> None:
    _, headers = await api.sign_in()
    created = await api.client.post(
        "/api/markets",
        json={"question": "\u200bWill invisible text be trimmed?\ufeff", "tags": ["\u200bA"]},
        headers=headers,
    )
    assert created.status_code == 201
    assert created.json()["question"] == "Will invisible text be trimmed?"
    assert created.json()["tags"] == ["a"]
    blank_question = await api.client.post(
        "/api/markets", json={"question": "\u200b" * 20 + "short"}, headers=headers
    )
    assert blank_question.status_code == 422
    post = await api.client.post(
        "/api/discussions",
        json={"market_id": created.json()["id"], "content": "\u200b hello \u200b"},
        headers=headers,
    )
    assert post.status_code == 201 and post.json()["content"] == "hello"
