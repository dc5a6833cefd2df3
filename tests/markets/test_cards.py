"""What a market card shows (24-hour volume and price change, trades, traders, the live tally
while voting is open), in the listing and the detail, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .trading import Fill, trade, wallet


async def test_cards_carry_the_24h_volume_price_change_trades_and_traders(api):
    _, headers = await api.sign_in()
    market_id = await api.market(headers, state="ACTIVE")
    quiet = await api.market(headers, state="ACTIVE", question="Will nobody trade this one?")
    now = datetime.now(UTC)
    alice, bob = wallet(), wallet()
    await trade(
        api.container,
        market_id,
        Fill(alice, 1_000, "0.6", now - timedelta(hours=30)),  # before the window
        Fill(bob, 100, "0.7", now - timedelta(hours=2)),
        Fill(alice, 50, "0.65", now - timedelta(seconds=5), sell=True),
    )
    detail = (await api.client.get(f"/api/markets/{market_id}")).json()
    card = {
        key: detail[key]
        for key in ("volume_24h", "price_change_24h", "trades_count", "unique_traders")
    }
    assert card == {
        "volume_24h": 150,
        "price_change_24h": "0.050000000",
        "trades_count": 3,
        "unique_traders": 2,
    }
    assert detail["current_price_yes"] == "0.650000000"
    listed = (await api.client.get("/api/markets", params={"sort": "volume"})).json()["items"]
    by_id = {item["id"]: item for item in listed}
    assert {key: by_id[market_id][key] for key in card} == card
    assert by_id[market_id]["votes"] is None  # ACTIVE: no votes open
    assert {key: by_id[quiet][key] for key in card} == {
        "volume_24h": 0,
        "price_change_24h": "0.000000000",
        "trades_count": 0,
        "unique_traders": 0,
    }


async def test_a_new_market_has_an_empty_card_and_a_proposed_one_lists_its_tally(api):
    _, headers = await api.sign_in()
    created = await api.client.post(
        "/api/markets",
        json={"question": "Will the card start empty?", "category": "other"},
        headers=headers,
    )
    body = created.json()
    assert (body["volume_24h"], body["trades_count"], body["unique_traders"]) == (0, 0, 0)
    assert body["price_change_24h"] == "0.000000000"
    listed = (await api.client.get("/api/markets")).json()["items"][0]
    assert listed["votes"]["proposal"] == {"likes": 0, "dislikes": 0, "total": 0}
