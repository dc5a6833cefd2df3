"""What a position is worth and what it made, with no I/O.

Amounts are lamports. A share is 10^9 units and pays 1 SOL when its outcome wins, so a
position's value at the market's prices is units x price (in lamports). Profit is counted by
average cost, per outcome, from the wallet's trades in the market (in chain order):

* a buy adds its cost to the outcome's basis; a sale realizes its proceeds minus the average
  cost of the shares sold;
* a claim realizes the winnings minus the basis of everything still held (the market is over);
* what is still held is unrealized: its value now minus its basis.

Costs are what the trades paid (`trades.cost`), without the program's fees, which
`total_invested` includes; ROI is (realized + unrealized) / the buys' cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from marketd.shared.market_state import MarketState

SHARE_UNITS = 10**9


@dataclass(frozen=True)
class Fill:
    outcome: bool
    buy: bool
    shares: int
    amount: int


@dataclass(frozen=True)
class Valuation:
    current_value: int
    cost_basis: int
    unrealized_pnl: int
    realized_pnl: int
    roi: Decimal
    claimable: bool
    claimed: bool


def current_value(
    state: str,
    final_outcome: bool | None,
    shares_yes: int,
    shares_no: int,
    price_yes: Decimal,
    price_no: Decimal,
    claimed: bool,
) -> int:
    """What the held shares are worth: after finalization the winning shares at 1 SOL (0 once
    claimed: paid out), else at the market's current prices (a cancelled market's too)."""
    if state == MarketState.FINALIZED.value:
        if claimed or final_outcome is None:
            return 0
        return shares_yes if final_outcome else shares_no
    value = Decimal(shares_yes) * price_yes + Decimal(shares_no) * price_no
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def evaluate(
    fills: Iterable[Fill],
    value: int,
    claimed_amount: int | None,
    state: str,
    final_outcome: bool | None,
    winning_shares: int,
) -> Valuation:
    basis = {True: 0, False: 0}
    held = {True: 0, False: 0}
    realized = spent = 0
    for fill in fills:
        if fill.buy:
            basis[fill.outcome] += fill.amount
            held[fill.outcome] += fill.shares
            spent += fill.amount
            continue
        part = basis[fill.outcome] * fill.shares // held[fill.outcome] if held[fill.outcome] else 0
        realized += fill.amount - part
        basis[fill.outcome] -= part
        held[fill.outcome] -= fill.shares
    claimed = claimed_amount is not None
    if claimed:
        realized += (claimed_amount or 0) - basis[True] - basis[False]
        basis = {True: 0, False: 0}
    cost_basis = basis[True] + basis[False]
    unrealized = value - cost_basis
    roi = (
        (Decimal(realized + unrealized) / spent).quantize(Decimal("0.0001"))
        if spent
        else Decimal(0)
    )
    claimable = (
        state == MarketState.FINALIZED.value
        and final_outcome is not None
        and not claimed
        and winning_shares > 0
    )
    return Valuation(value, cost_basis, unrealized, realized, roi, claimable, claimed)
