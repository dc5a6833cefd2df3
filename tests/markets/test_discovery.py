"""Categories, trending and related markets over HTTP, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketd.chain.addresses import new_market_id
from marketd.markets import rules

from .trading import Fill, trade, wallet


async def test_categories_count_markets_by_state(api):
    _, headers = await api.sign_in()
    for state in ("ACTIVE", "ACTIVE", "PROPOSED"):
        await api.market(headers, state=state, category="sports")
    await api.market(headers, state="FINALIZED", category="crypto")
    await api.market(headers, category="other")
    first = await api.client.get("/api/markets/categories")
    assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
    items = first.json()["items"]
    assert [(i["category"], i["total"]) for i in items] == [
        ("sports", 3),
        ("crypto", 1),
        ("other", 1),
    ]
    assert items[0]["by_state"] == {
        "PROPOSED": 1,
        "APPROVED": 0,
        "ACTIVE": 2,
        "RESOLVING": 0,
        "DISPUTED": 0,
        "FINALIZED": 0,
        "CANCELLED": 0,
    }
    again = await api.client.get("/api/markets/categories")
    assert again.headers["X-Cache"] == "hit" and again.json() == first.json()
    await api.market(headers, category="crypto")  # a new market drops the listing pages
    counted = (await api.client.get("/api/markets/categories")).json()["items"]
    assert [(i["category"], i["total"]) for i in counted][:2] == [("sports", 3), ("crypto", 2)]


async def test_trending_ranks_active_markets_by_volume_and_price_move(api):
    _, headers = await api.sign_in()
    now = datetime.now(UTC)
    steady = await api.market(headers, state="ACTIVE", question="Steady volume market?")
    mover = await api.market(headers, state="ACTIVE", question="Moving price market?")
    idle = await api.market(headers, state="ACTIVE", question="Nobody trades this market?")
    old = await api.market(headers, state="ACTIVE", question="Traded only long ago market?")
    closed = await api.market(headers, state="RESOLVING", question="Resolving market, traded?")
    await trade(api.container, steady, Fill(wallet(), 1_000, "0.52", now - timedelta(hours=1)))
    # 600 lamports, price 0.5 -> 0.8: 600 x (1 + 4 x 0.3) = 1,320 > 1,000 x (1 + 4 x 0.02)
    await trade(api.container, mover, Fill(wallet(), 600, "0.8", now - timedelta(hours=1)))
    await trade(api.container, old, Fill(wallet(), 5_000, "0.6", now - timedelta(days=3)))
    await trade(api.container, closed, Fill(wallet(), 9_000, "0.9", now - timedelta(hours=1)))
    answer = await api.client.get("/api/markets/trending", params={"limit": 4})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [item["id"] for item in body["items"]] == [mover, steady, old, idle]
    assert body["next_cursor"] is None
    assert body["items"][0]["price_change_24h"] == "0.300000000"
    top = await api.client.get("/api/markets/trending", params={"limit": 1})
    assert [item["id"] for item in top.json()["items"]] == [mover]
    assert (await api.client.get("/api/markets/trending", params={"limit": 0})).status_code == 422


def test_the_trending_score():
    assert rules.trending_score(1_000, Decimal("0")) == 1_000
    assert rules.trending_score(1_000, Decimal("-0.25")) == 2_000
    assert rules.trending_score(0, Decimal("0.5")) == 0


async def test_related_markets_share_category_or_tags_active_first(api):
    _, headers = await api.sign_in()
    base = await api.market(headers, state="ACTIVE", category="crypto", tags=["sol", "eth"])
    both = await api.market(headers, state="ACTIVE", category="crypto", tags=["sol"])
    same_category = await api.market(headers, state="ACTIVE", category="crypto")
    two_tags = await api.market(headers, state="ACTIVE", category="science", tags=["eth", "sol"])
    one_tag = await api.market(headers, state="ACTIVE", category="science", tags=["eth"])
    finished = await api.market(headers, state="FINALIZED", category="crypto", tags=["sol"])
    await api.market(headers, state="ACTIVE", category="sports", tags=["nba"])  # unrelated
    await api.market(headers, state="ACTIVE", category="science", tags=["so%l"])  # no LIKE match
    answer = await api.client.get(f"/api/markets/{base}/related")
    assert answer.status_code == 200, answer.text
    ids = [item["id"] for item in answer.json()["items"]]
    assert ids == [both, same_category, two_tags, one_tag, finished]
    assert [
        i["id"]
        for i in (await api.client.get(f"/api/markets/{base}/related", params={"limit": 2})).json()[
            "items"
        ]
    ] == [both, same_category]
    lonely = await api.market(headers, category="entertainment")
    assert (await api.client.get(f"/api/markets/{lonely}/related")).json()["items"] == []
    missing = await api.client.get(f"/api/markets/{new_market_id()}/related")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_related_rank_orders_active_category_tags_volume():
    base = ("crypto", ["a", "b"])
    ranked = sorted(
        [
            ("FINALIZED", "crypto", ["a", "b"], 9, "f"),
            ("ACTIVE", "science", ["a", "b"], 1, "t2"),
            ("ACTIVE", "science", ["a"], 5, "t1"),
            ("ACTIVE", "crypto", [], 0, "c"),
        ],
        key=lambda other: rules.related_rank(base, other),
    )
    assert [other[4] for other in ranked] == ["c", "t2", "t1", "f"]
