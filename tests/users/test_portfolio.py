"""Positions with their value and profit, and the portfolio's totals (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketd.users import portfolio
from marketd.users.portfolio import Fill as Traded

from ..markets.trading import Fill, chain_event, trade, wallet

SOL = 1_000_000_000


async def test_positions_carry_value_profit_and_claims_and_the_portfolio_sums_them(api):
    _, headers = await api.sign_in()
    active = await api.market(headers, state="ACTIVE", question="Active market for the folio?")
    won = await api.market(headers, state="ACTIVE", question="Market this wallet will win?")
    alice, at = wallet(), datetime.now(UTC) - timedelta(hours=1)
    await trade(
        api.container,
        active,
        Fill(alice, SOL, "0.6", at, shares=2 * SOL),
        Fill(alice, 4 * SOL // 10, "0.55", at + timedelta(seconds=1), outcome=False, shares=SOL),
        Fill(alice, 7 * SOL // 10, "0.5", at + timedelta(seconds=2), sell=True, shares=SOL),
    )
    await trade(api.container, won, Fill(alice, SOL // 2, "0.7", at, shares=SOL))
    await api.execute(
        "UPDATE markets SET state = 'FINALIZED', final_outcome = :yes WHERE id = :id",
        yes=True,
        id=won,
    )

    async def positions():
        answer = await api.client.get(f"/api/users/{alice}/positions")
        assert answer.status_code == 200, answer.text
        return {item["market_id"]: item for item in answer.json()["items"]}

    before = await positions()
    a = before[active]
    assert (a["question"], a["state"], a["current_price_yes"]) == (
        "Active market for the folio?",
        "ACTIVE",
        "0.500000000",
    )
    assert (a["shares_yes"], a["shares_no"]) == (SOL, SOL)
    assert (a["current_value"], a["cost_basis"]) == (SOL, 9 * SOL // 10)
    assert (a["unrealized_profit"], a["realized_profit"]) == (SOL // 10, 2 * SOL // 10)
    assert Decimal(a["roi"]) == Decimal("0.2143")
    assert (a["claimable"], a["claimed"]) == (False, False)
    w = before[won]
    assert (w["state"], w["current_value"], w["claimable"], w["unrealized_profit"]) == (
        "FINALIZED",
        SOL,
        True,
        SOL // 2,
    )
    summary = (await api.client.get(f"/api/users/{alice}/portfolio")).json()
    assert (summary["claimable"], summary["claimable_value"]) == (1, SOL)

    await chain_event(
        api.container,
        won,
        "WinningsClaimed",
        at + timedelta(minutes=5),
        user=alice,
        outcome=True,
        amount=SOL,
    )
    w = (await positions())[won]
    assert (w["current_value"], w["claimable"], w["claimed"]) == (0, False, True)
    assert (w["realized_profit"], w["unrealized_profit"], w["cost_basis"]) == (SOL // 2, 0, 0)

    summary = (await api.client.get(f"/api/users/{alice}/portfolio")).json()
    invested = a["total_invested"] + w["total_invested"]
    assert summary == {
        "wallet": alice,
        "positions": 2,
        "open_positions": 1,
        "current_value": SOL,
        "total_invested": invested,
        "cost_basis": 9 * SOL // 10,
        "unrealized_profit": SOL // 10,
        "realized_profit": 7 * SOL // 10,
        "roi": str((Decimal(8 * SOL // 10) / invested).quantize(Decimal("0.0001"))),
        "claimable": 0,
        "claimable_value": 0,
    }
    nobody = (await api.client.get(f"/api/users/{wallet()}/portfolio")).json()
    assert (nobody["positions"], nobody["roi"]) == (0, "0")


def test_average_cost_profit_and_values():
    fills = [Traded(True, True, 10, 100), Traded(True, False, 5, 80), Traded(False, True, 4, 20)]
    valued = portfolio.evaluate(fills, 70, None, "ACTIVE", None, 0)
    assert (valued.cost_basis, valued.realized_pnl, valued.unrealized_pnl) == (70, 30, 0)
    assert valued.roi == Decimal("0.25")
    # A sale with nothing held (history before the wallet's first indexed buy) costs nothing.
    assert portfolio.evaluate([Traded(True, False, 5, 8)], 0, None, "ACTIVE", None, 0).roi == 0
    lost = portfolio.evaluate(fills, 0, None, "FINALIZED", False, 0)
    assert (lost.claimable, lost.unrealized_pnl) == (False, -70)
    assert (
        portfolio.current_value("ACTIVE", None, 10, 4, Decimal("0.55"), Decimal("0.45"), False) == 7
    )
    assert portfolio.current_value("FINALIZED", False, 10, 4, Decimal(1), Decimal(0), False) == 4
    assert portfolio.current_value("FINALIZED", None, 10, 4, Decimal(1), Decimal(0), False) == 0
