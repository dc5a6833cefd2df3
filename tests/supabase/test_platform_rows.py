"""The service on the platform's rows: after `marketd migrate`, marketd reads what the
platform's original backend and front end wrote (64-hex market ids, NULL counters, soft-deleted
posts) and writes beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ..helpers.databases import build_original_database, drop_database, migrate
from .test_adoption import ALICE, BARE_MARKET, BOB, MARKET, scratch

FINALIZED = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest_asyncio.fixture(scope="module")
async def platform_url() -> AsyncIterator[str]:
    name, url = await scratch(lambda url: build_original_database(url, rows=True))
    await migrate(url)
    yield url
    await drop_database(name)


@pytest_asyncio.fixture
async def platform(api_factory: Any, platform_url: str) -> Any:
    return await api_factory(keep_rows=True, database_url=platform_url)


async def test_markets_the_platform_wrote_read_through_the_api(platform):
    market = (await platform.client.get(f"/api/markets/{MARKET}")).json()
    assert (market["id"], market["state"], market["category"]) == (MARKET, "ACTIVE", "crypto")
    assert (market["current_price_yes"], market["total_volume"]) == ("0.620000000", 4500000)
    assert market["tags"] == ["sol", "price"]
    bare = await platform.client.get(f"/api/markets/{BARE_MARKET}")
    assert bare.status_code == 200, bare.text
    assert (bare.json()["shares_yes"], bare.json()["current_price_yes"]) == (0, "0.500000000")
    listing = (await platform.client.get("/api/markets", params={"limit": 50})).json()
    assert {MARKET, BARE_MARKET, FINALIZED} <= {m["id"] for m in listing["items"]}
    crypto = (await platform.client.get("/api/markets", params={"category": "crypto"})).json()
    assert [m["id"] for m in crypto["items"]] == [MARKET]


async def test_votes_posts_trades_and_users_the_platform_wrote_read_through_the_api(platform):
    votes = (await platform.client.get(f"/api/markets/{MARKET}/votes")).json()
    assert votes["tally"] == {"yes": 1, "no": 0, "total": 1}
    assert [v["wallet"] for v in votes["items"]] == [BOB]
    posts = (await platform.client.get(f"/api/discussions/{MARKET}")).json()
    assert [p["content"] for p in posts["items"]] == ["The ETF flows say yes."]  # one deleted
    trades = (await platform.client.get(f"/api/markets/{MARKET}/trades")).json()
    assert sorted(t["user_wallet"] for t in trades["items"]) == sorted([ALICE, BOB])
    profile = (await platform.client.get(f"/api/users/{ALICE}")).json()
    assert profile["stats"]["trades_count"] == 1 and profile["stats"]["markets_created"] == 2
    positions = (await platform.client.get(f"/api/users/{ALICE}/positions")).json()
    assert [p["market_id"] for p in positions["items"]] == [MARKET]


async def test_a_new_user_votes_and_posts_on_a_platform_market(platform):
    _, headers = await platform.sign_in()
    vote = await platform.client.post(
        "/api/votes/proposal", json={"market_id": BARE_MARKET, "vote": True}, headers=headers
    )
    assert vote.status_code == 200, vote.text
    post = await platform.client.post(
        "/api/discussions", json={"market_id": MARKET, "content": "New here."}, headers=headers
    )
    assert post.status_code == 201, post.text
    counts = await platform.execute(
        "SELECT (SELECT count(*) FROM proposal_votes WHERE market_id = :m),"
        " (SELECT count(*) FROM discussions WHERE market_id = :d)",
        m=BARE_MARKET,
        d=MARKET,
    )
    assert tuple(counts[0]) == (2, 3)  # the platform's rows and the new one
