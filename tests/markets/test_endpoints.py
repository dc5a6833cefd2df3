"""Market routes over HTTP (PostgreSQL + Redis, and the embedded default)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.chain.addresses import market_address
from marketd.indexer import rollups
from marketd.models import Trade


async def _insert_trade(api, market_id: str, at: datetime, price: str, cost: int, wallet: str):
    address = await api.market_address(market_id)
    async with api.container.database.session() as session:
        session.add(
            Trade(
                market_id=market_id,
                user_wallet=wallet,
                market_pubkey=address,
                trader_pubkey=wallet,
                trade_type="buy",
                outcome=True,
                shares=1_000_000_000,
                cost=cost,
                price_after=Decimal(price),
                tx_signature=str(Keypair().sign_message(b"t")),
                block_time=at,
            )
        )
        await session.flush()
        await rollups.recompute_hours(session, market_id)  # as the indexer does with its trades
        await session.commit()


async def test_propose_then_read_market(api):
    keypair, headers = await api.sign_in()
    closes = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    created = await api.client.post(
        "/api/markets",
        json={
            "question": "  Will the bridge open before spring?  ",
            "category": "politics",
            "tags": ["Infra", "infra", "city"],
            "closes_at": closes,
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    market = created.json()
    assert market["question"] == "Will the bridge open before spring?"
    assert market["state"] == "PROPOSED"
    assert market["creator_wallet"] == str(keypair.pubkey())
    assert market["tags"] == ["city", "infra"]
    assert market["current_price_yes"] == "0.500000000"
    assert isinstance(market["b_parameter"], int)

    # Its id is the hex of 32 random bytes (the platform's format), its address their PDA.
    assert len(market["id"]) == 64 and bytes.fromhex(market["id"]).hex() == market["id"]
    program = Pubkey.from_string(api.container.settings.program_id)
    assert market["on_chain_address"] == str(market_address(program, market["id"]))

    fetched = await api.client.get(f"/api/markets/{market['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["closes_at"] is not None
    assert fetched.json()["on_chain_address"] == market["on_chain_address"]

    # The market account's address names the same market (served as under its id).
    by_address = await api.client.get(f"/api/markets/{market['on_chain_address']}")
    assert by_address.status_code == 200
    assert by_address.json() == fetched.json()


async def test_propose_validation_errors_name_the_field(api):
    _, headers = await api.sign_in()
    short = await api.client.post("/api/markets", json={"question": "  short   "}, headers=headers)
    assert short.status_code == 422
    assert short.headers["content-type"] == "application/problem+json"
    assert short.json()["errors"][0]["field"] == "body.question"

    past = await api.client.post(
        "/api/markets",
        json={"question": "Will this be in the past?", "closes_at": "2020-01-01T00:00:00Z"},
        headers=headers,
    )
    assert past.status_code == 422
    assert past.json()["field"] == "closes_at"

    naive = await api.client.post(
        "/api/markets",
        json={"question": "Will this have a zone?", "closes_at": "2030-01-01T00:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422

    resolver = await api.client.post(
        "/api/markets",
        json={"question": "Who resolves this market?", "resolver_wallet": "nope"},
        headers=headers,
    )
    assert resolver.status_code == 422
    assert resolver.json()["field"] == "resolver_wallet"

    tags = await api.client.post(
        "/api/markets", json={"question": "Are the tags fine here?", "tags": [" "]}, headers=headers
    )
    assert tags.status_code == 422

    # Only what the program accepts and can trade on (PROGRAM.md §3.2, §1 MIN_B).
    for field, value in (
        ("b_parameter", 0),
        ("b_parameter", 100 * 10**9 - 1),
        ("initial_liquidity", 0),
        ("initial_liquidity", 2**63),
    ):
        refused = await api.client.post(
            "/api/markets",
            json={"question": "Is this market tradable?", field: value},
            headers=headers,
        )
        assert refused.status_code == 422, (field, value)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["field"] == f"body.{field}"
    accepted = await api.client.post(
        "/api/markets",
        json={"question": "Is this market tradable?", "b_parameter": 100 * 10**9},
        headers=headers,
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["b_parameter"] == 100 * 10**9
    assert accepted.json()["initial_liquidity"] == 10 * 10**9


async def test_unknown_market_is_404_problem(api):
    response = await api.client.get("/api/markets/does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and body["instance"] == "/api/markets/does-not-exist"
    for sub in ("trades", "votes", "prices"):
        assert (await api.client.get(f"/api/markets/nope/{sub}")).status_code == 404
    # An address no market has: 404 as well, naming what was asked for.
    nowhere = str(Keypair().pubkey())
    missing = await api.client.get(f"/api/markets/{nowhere}")
    assert missing.status_code == 404 and nowhere in missing.json()["detail"]


async def test_filters_sorting_and_cursor_pagination(api):
    _, headers = await api.sign_in()
    ids = []
    for index in range(5):
        ids.append(
            await api.market(
                headers,
                state="ACTIVE" if index % 2 else "PROPOSED",
                question=f"Will market number {index} resolve YES?",
                category="sports" if index % 2 == 0 else "science",
                closes_at=(datetime.now(UTC) + timedelta(days=5 - index)).isoformat(),
            )
        )
    for index, market_id in enumerate(ids):
        await api.execute(
            "UPDATE markets SET total_volume = :v WHERE id = :id", v=index * 100, id=market_id
        )

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/api/markets", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once

    by_volume = (await api.client.get("/api/markets", params={"sort": "volume"})).json()
    assert [m["id"] for m in by_volume["items"]] == list(reversed(ids))
    top = (await api.client.get("/api/markets", params={"sort": "volume", "limit": 3})).json()
    lower = await api.client.get(
        "/api/markets", params={"sort": "volume", "cursor": top["next_cursor"]}
    )
    assert [m["id"] for m in top["items"] + lower.json()["items"]] == list(reversed(ids))

    closing = await api.client.get("/api/markets", params={"sort": "closing_soon", "limit": 3})
    closing_body = closing.json()
    assert [m["id"] for m in closing_body["items"]] == [ids[4], ids[3], ids[2]]
    rest = await api.client.get(
        "/api/markets", params={"sort": "closing_soon", "cursor": closing_body["next_cursor"]}
    )
    assert [m["id"] for m in rest.json()["items"]] == [ids[1], ids[0]]

    active = (await api.client.get("/api/markets", params={"state": "ACTIVE"})).json()
    assert {m["id"] for m in active["items"]} == {ids[1], ids[3]}
    even = (await api.client.get("/api/markets", params={"category": "sports"})).json()
    assert {m["id"] for m in even["items"]} == {ids[0], ids[2], ids[4]}
    text = (await api.client.get("/api/markets", params={"q": "NUMBER 3"})).json()
    assert [m["id"] for m in text["items"]] == [ids[3]]
    wildcard = (await api.client.get("/api/markets", params={"q": "%"})).json()
    assert wildcard["items"] == []


async def test_bad_listing_parameters(api):
    bad_state = await api.client.get("/api/markets", params={"state": "OPEN"})
    assert bad_state.status_code == 422
    assert bad_state.json()["errors"][0]["field"] == "query.state"
    too_many = await api.client.get("/api/markets", params={"limit": 1000})
    assert too_many.status_code == 422
    bad_cursor = await api.client.get("/api/markets", params={"cursor": "garbage!"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["type"].endswith("/invalid-cursor")
    _, headers = await api.sign_in()
    for index in range(2):
        await api.market(headers, question=f"Cursor reuse market {index}?")
    page = (await api.client.get("/api/markets", params={"limit": 1})).json()
    other_sort = await api.client.get(
        "/api/markets", params={"sort": "volume", "cursor": page["next_cursor"]}
    )
    assert other_sort.status_code == 422


async def test_price_history_buckets_trades(api):
    keypair, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    start = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    wallet = str(keypair.pubkey())
    await _insert_trade(api, market_id, start - timedelta(hours=1), "0.400000000", 5, wallet)
    await _insert_trade(api, market_id, start + timedelta(minutes=10), "0.550000000", 10, wallet)
    await _insert_trade(api, market_id, start + timedelta(minutes=50), "0.450000000", 20, wallet)
    await _insert_trade(
        api, market_id, start + timedelta(hours=2, minutes=5), "0.600000000", 7, wallet
    )

    response = await api.client.get(
        f"/api/markets/{market_id}/prices",
        params={
            "interval": "1h",
            "from": start.isoformat(),
            "to": (start + timedelta(hours=3)).isoformat(),
        },
    )
    assert response.status_code == 200, response.text
    buckets = response.json()["buckets"]
    assert [b["trades"] for b in buckets] == [2, 0, 1]
    first, empty, last = buckets
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        "0.400000000",
        "0.550000000",
        "0.400000000",
        "0.450000000",
    )
    assert first["volume"] == 30
    assert empty["open"] == empty["close"] == "0.450000000" and empty["volume"] == 0
    assert last["close"] == "0.600000000"

    trades = (await api.client.get(f"/api/markets/{market_id}/trades", params={"limit": 3})).json()
    assert [t["price_after"] for t in trades["items"]] == [
        "0.600000000",
        "0.450000000",
        "0.550000000",
    ]
    assert trades["items"][0]["outcome"] == "YES"
    more = await api.client.get(
        f"/api/markets/{market_id}/trades", params={"cursor": trades["next_cursor"]}
    )
    assert [t["price_after"] for t in more.json()["items"]] == ["0.400000000"]
    assert more.json()["next_cursor"] is None

    default_window = await api.client.get(f"/api/markets/{market_id}/prices")
    assert default_window.status_code == 200
    assert default_window.json()["buckets"][-1]["close"] == "0.600000000"


async def test_trades_of_a_market_without_trades_and_of_an_unknown_market(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    none_yet = await api.client.get(f"/api/markets/{market_id}/trades")
    assert none_yet.status_code == 200
    assert none_yet.json() == {"items": [], "next_cursor": None}
    unknown = await api.client.get("/api/markets/does-not-exist/trades")
    assert unknown.status_code == 404
    assert unknown.json()["instance"] == "/api/markets/does-not-exist/trades"


async def test_price_history_rejects_bad_ranges(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers)
    now = datetime.now(UTC)
    inverted = await api.client.get(
        f"/api/markets/{market_id}/prices",
        params={"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()},
    )
    assert inverted.status_code == 422
    huge = await api.client.get(
        f"/api/markets/{market_id}/prices",
        params={
            "interval": "1m",
            "from": (now - timedelta(days=30)).isoformat(),
            "to": now.isoformat(),
        },
    )
    assert huge.status_code == 422
    assert huge.json()["field"] == "interval"
    bad_interval = await api.client.get(
        f"/api/markets/{market_id}/prices", params={"interval": "7m"}
    )
    assert bad_interval.status_code == 422
