"""Cross-cutting HTTP behaviour: health, metrics, docs, errors, CORS and rate limits."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from marketd.app import create_app
from marketd.core.database import Database

ORIGIN = "https://app.example"  # the origin the test settings allow


async def test_health_and_readiness(api):
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert ("redis" in checks) == (api.container.redis is not None)


async def test_metrics_are_not_served_on_the_api_port_by_default(api):
    hidden = await api.client.get("/metrics")
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"


async def test_metrics_have_their_own_port_on_loopback(make_settings):
    app = create_app(make_settings(metrics_port=0))
    assert app.state.container.settings.metrics_host == "127.0.0.1"
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as api_client,
        httpx.AsyncClient() as scraper,
    ):
        assert (await api_client.get("/healthz")).status_code == 200
        server = app.state.metrics_server
        assert server.server.server_address[0] == "127.0.0.1"
        scraped = await scraper.get(f"http://127.0.0.1:{server.port}/metrics")
        assert (await api_client.get("/metrics")).status_code == 404
    assert 'marketd_http_request_duration_seconds_count{method="GET",route="/healthz"' in (
        scraped.text
    )
    async with httpx.AsyncClient() as scraper:
        with pytest.raises(httpx.ConnectError):  # closed with the app
            await scraper.get(f"http://127.0.0.1:{server.port}/metrics")


async def test_readiness_fails_when_the_database_is_gone(api):
    healthy = api.container.database
    url = healthy.engine.url.set(database="missing_" + uuid.uuid4().hex[:8])
    if url.get_backend_name() == "sqlite":
        url = url.set(database="/nonexistent-dir/marketd.db")
    api.container.database = Database(create_async_engine(url))
    try:
        response = await api.client.get("/readyz")
    finally:
        await api.container.database.dispose()
        api.container.database = healthy
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["database"].startswith("error")


async def test_openapi_and_docs(api):
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        "/api/auth/challenge",
        "/api/auth/verify",
        "/api/auth/logout",
        "/api/markets",
        "/api/markets/{market_id}",
        "/api/markets/{market_id}/prices",
        "/api/votes/proposal",
        "/api/votes/dispute",
        "/api/discussions",
        "/api/discussions/{post_id}",
        "/api/trades/buy",
        "/api/trades/sell",
        "/api/users/{wallet}/positions",
    ):
        assert path in spec["paths"], path
    assert "examples" in str(spec["components"]["schemas"]["MarketCreate"])
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_route_and_method_are_problems(api):
    missing = await api.client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await api.client.put("/api/markets")
    assert wrong.status_code == 405
    assert wrong.json()["title"] == "Method not allowed"


async def test_bad_json_names_the_request_body(api):
    malformed = await api.client.post(
        "/api/auth/challenge", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    assert malformed.json()["detail"] == "The request body is not valid JSON."
    assert malformed.json()["errors"] == [
        {"field": "body", "message": "request body is not valid JSON", "code": "json_invalid"}
    ]


async def test_rule_messages_are_shown_without_pydantic_prefixes(api):
    _, headers = await api.sign_in()
    blank = await api.client.post("/api/markets", json={"question": "  short   "}, headers=headers)
    assert blank.status_code == 422
    (error,) = blank.json()["errors"]
    assert error == {
        "field": "body.question",
        "message": "question must have 10-200 characters",
        "code": "value_error",
    }


async def test_cors_preflight_and_simple_requests(api):
    preflight = await api.client.options(
        "/api/votes/proposal",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    denied = await api.client.options(
        "/api/votes/proposal",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers
    simple = await api.client.get("/api/markets", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "RateLimit-Remaining" in simple.headers["access-control-expose-headers"]


async def test_rate_limit_is_shared_by_instances(api_factory, backend):
    prefix = f"rl-{uuid.uuid4().hex[:8]}:"
    first = await api_factory(rate_limit="5/minute", redis_prefix=prefix)
    second = await api_factory(rate_limit="5/minute", redis_prefix=prefix)
    statuses = []
    for index in range(8):
        client = (first if index % 2 == 0 else second).client
        statuses.append((await client.get("/api/markets")).status_code)
    if backend != "embedded":
        # One budget in Redis for both instances: five requests in all, then 429s.
        assert statuses == [200] * 5 + [429] * 3
    else:
        # Embedded default: each process keeps its own in-memory budget.
        assert statuses == [200] * 8
    limited = await first.client.get("/api/markets")
    if backend != "embedded":
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-limit"] == "5"
        assert limited.headers["ratelimit-remaining"] == "0"
        assert limited.headers["content-type"] == "application/problem+json"
        assert limited.json()["status"] == 429
    assert (await first.client.get("/healthz")).status_code == 200  # probes are exempt


async def test_signed_in_budget_follows_the_wallet(api_factory):
    prefix = f"rl-{uuid.uuid4().hex[:8]}:"
    api = await api_factory(rate_limit="4/minute", redis_prefix=prefix)
    _, headers = await api.sign_in()  # 2 requests from the IP
    for _ in range(4):
        assert (await api.client.get("/api/markets", headers=headers)).status_code == 200
    assert (await api.client.get("/api/markets", headers=headers)).status_code == 429
    # The anonymous IP budget is separate from the wallet's.
    assert (await api.client.get("/api/markets")).status_code == 200


async def test_forwarded_for_is_trusted_only_from_configured_proxies(api_factory):
    prefix = f"rl-{uuid.uuid4().hex[:8]}:"
    trusting = await api_factory(
        rate_limit="2/minute", redis_prefix=prefix, trusted_proxies=["203.0.113.0/24"]
    )
    for client_ip in ("198.51.100.1", "198.51.100.2"):
        headers = {"X-Forwarded-For": f"{client_ip}, 203.0.113.7"}
        codes = [
            (await trusting.client.get("/api/markets", headers=headers)).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]

    untrusting = await api_factory(rate_limit="2/minute", redis_prefix=prefix + "u:")
    codes = []
    for client_ip in ("198.51.100.3", "198.51.100.4", "198.51.100.5"):
        response = await untrusting.client.get(
            "/api/markets", headers={"X-Forwarded-For": client_ip}
        )
        codes.append(response.status_code)
    assert codes == [200, 200, 429]  # spoofed headers share the peer's budget
