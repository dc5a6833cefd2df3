"""Oversized request bodies are refused with 413 problem+json before anything parses them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from marketd.core.bodylimit import BodyLimitMiddleware

from ..helpers.api import TEST_ORIGIN

LIMIT = 128 * 1024


async def test_a_declared_oversized_body_is_refused_unread(api: Any) -> None:
    body = b'{"market_id": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = await api.client.post(
        "/api/votes/proposal",
        content=body,
        headers={"content-type": "application/json", "origin": TEST_ORIGIN},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/payload-too-large")
    assert problem["max_bytes"] == LIMIT
    assert problem["instance"] == "/api/votes/proposal"
    assert response.headers["access-control-allow-origin"] == TEST_ORIGIN


async def test_a_chunked_body_is_cut_off_at_the_limit(api: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):  # 4 MB in 64 KiB chunks, no Content-Length
            yield b" " * (64 * 1024)

    response = await api.client.post(
        "/api/votes/proposal", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


async def test_a_body_within_the_limit_reaches_validation(api: Any) -> None:
    body = b'{"market_id": "' + b"x" * (LIMIT - 100) + b'", "vote": true}'
    response = await api.client.post(
        "/api/votes/proposal", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 401  # read in full, then the route asks for a session


async def test_a_content_length_that_is_not_a_number_is_a_bad_request(api: Any) -> None:
    response = await api.client.post(
        "/api/votes/proposal",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "lots"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("length", ["-1", "12x"])
async def test_the_middleware_alone_refuses_malformed_lengths(length: str) -> None:
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    transport = httpx.ASGITransport(app=BodyLimitMiddleware(app, max_bytes=1024))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/x", content=b"{}", headers={"content-length": length})
    assert response.status_code == 400 and reached == []


async def test_websocket_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await BodyLimitMiddleware(app, max_bytes=1024)({"type": "websocket"}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket"]
