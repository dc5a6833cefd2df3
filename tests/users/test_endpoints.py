"""User routes over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from solders.keypair import Keypair

from marketd.models import Position, Trade


async def test_profile_history_and_positions(api):
    keypair, headers = await api.sign_in()
    wallet = str(keypair.pubkey())
    proposed = await api.market(headers, question="Will the user vote on this one?")
    disputed = await api.market(headers, state="DISPUTED", question="Is this dispute valid now?")
    active = await api.market(headers, state="ACTIVE", question="Will the user trade this one?")
    for market_id, kind in ((proposed, "proposal"), (disputed, "dispute")):
        response = await api.client.post(
            f"/api/votes/{kind}", json={"market_id": market_id, "vote": True}, headers=headers
        )
        assert response.status_code == 200
    base = datetime.now(UTC) - timedelta(hours=1)
    addresses = {m: await api.market_address(m) for m in (active, disputed)}
    async with api.container.database.session() as session:
        for index in range(3):
            session.add(
                Trade(
                    market_id=active,
                    user_wallet=wallet,
                    market_pubkey=addresses[active],
                    trader_pubkey=wallet,
                    trade_type="buy",
                    outcome=index != 1,
                    shares=10**9,
                    cost=100 * (index + 1),
                    price_after=Decimal("0.6"),
                    tx_signature=str(Keypair().sign_message(b"x")),
                    block_time=base + timedelta(minutes=index),
                )
            )
        for market_id in (active, disputed):
            session.add(
                Position(
                    market_id=market_id,
                    user_wallet=wallet,
                    market_pubkey=addresses[market_id],
                    user_pubkey=wallet,
                    shares_yes=2 * 10**9,
                    shares_no=0,
                    total_invested=300,
                    trades_count=3,
                    realized_pnl=0,
                )
            )
        await session.commit()

    profile = (await api.client.get(f"/api/users/{wallet}")).json()
    assert profile["stats"] == {
        "trades_count": 3,
        "trade_volume": 600,
        "markets_created": 3,
        "votes_count": 2,
    }
    trades = (await api.client.get(f"/api/users/{wallet}/trades", params={"limit": 2})).json()
    assert [t["cost"] for t in trades["items"]] == [300, 200]
    assert trades["items"][1]["outcome"] == "NO"
    more = await api.client.get(
        f"/api/users/{wallet}/trades", params={"cursor": trades["next_cursor"]}
    )
    assert [t["cost"] for t in more.json()["items"]] == [100]

    votes = (await api.client.get(f"/api/users/{wallet}/votes", params={"limit": 1})).json()
    assert votes["items"][0]["kind"] == "dispute"  # newest first
    rest = await api.client.get(
        f"/api/users/{wallet}/votes", params={"cursor": votes["next_cursor"]}
    )
    assert [v["kind"] for v in rest.json()["items"]] == ["proposal"]
    assert rest.json()["next_cursor"] is None

    positions = (await api.client.get(f"/api/users/{wallet}/positions", params={"limit": 1})).json()
    following = await api.client.get(
        f"/api/users/{wallet}/positions", params={"cursor": positions["next_cursor"]}
    )
    found = {p["market_id"] for p in positions["items"] + following.json()["items"]}
    assert found == {active, disputed}


async def test_unknown_user_is_404(api):
    response = await api.client.get(f"/api/users/{Keypair().pubkey()}")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


async def test_a_user_without_activity_has_zero_counts(api):
    keypair, _ = await api.sign_in()
    profile = (await api.client.get(f"/api/users/{keypair.pubkey()}")).json()
    assert profile["wallet"] == str(keypair.pubkey())
    assert profile["stats"] == {
        "trades_count": 0,
        "trade_volume": 0,
        "markets_created": 0,
        "votes_count": 0,
    }
