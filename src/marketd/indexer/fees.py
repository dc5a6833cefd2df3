"""The program's trading fees (PROGRAM.md §4.8) and the amounts its trade events leave out.

Split of an amount a with bps p, r, l (S = p + r + l): total = floor(a*S/10000), protocol =
floor(total*p/S), resolver = floor(total*r/S), lp = the rest. A buy charges them on top of the
pre-fee LMSR cost; a sale deducts them from its gross proceeds.

The events carry one amount each: `SharesBought.cost` is the buyer's TOTAL (pre-fee cost +
fees) and `SharesSold.proceeds` is the seller's NET (gross - fees). The market account moves by
other amounts (its liquidity by the resolver + LP fees of a buy, by net + protocol fee of a
sale; its volume by a buy's total and a sale's gross), so the pre-fee cost and the gross are
recovered here: total = c + fee(c) is strictly increasing in c (one c per total); net = g -
fee(g) is non-decreasing, so the gross is the smallest one with that net (two grosses with the
same net differ by one lamport; the reconcile job repairs that rare case).
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class FeeSplit:
    protocol: int
    resolver: int
    lp: int

    @property
    def total(self) -> int:
        return self.protocol + self.resolver + self.lp


@dataclass(frozen=True)
class FeeSchedule:
    protocol_bps: int = 300
    resolver_bps: int = 200
    lp_bps: int = 500

    @property
    def total_bps(self) -> int:
        return self.protocol_bps + self.resolver_bps + self.lp_bps

    def split(self, amount: int) -> FeeSplit:
        """The program's split of `amount` (zero fees when no bps are configured: the program
        then refuses every trade with DivisionByZero, so no event ever needs it)."""
        total_bps = self.total_bps
        if total_bps == 0:
            return FeeSplit(0, 0, 0)
        total = amount * total_bps // BPS
        protocol = total * self.protocol_bps // total_bps
        resolver = total * self.resolver_bps // total_bps
        return FeeSplit(protocol, resolver, total - protocol - resolver)

    def fees_on(self, amount: int) -> int:
        return self.split(amount).total

    def net_of(self, gross: int) -> int:
        return gross - self.fees_on(gross)

    def cost_before_fees(self, total_cost: int) -> int:
        """The pre-fee cost c whose c + fees equals a buy's `total_cost` (the largest c not
        above it when none is exact, which no program event produces)."""
        if total_cost <= 0:
            return 0
        cost = total_cost * BPS // (BPS + self.total_bps)
        while cost + self.fees_on(cost) > total_cost:
            cost -= 1
        while cost + 1 + self.fees_on(cost + 1) <= total_cost:
            cost += 1
        return cost

    def gross_from_net(self, net: int) -> int:
        """The smallest gross whose net is `net` (or the closest below when none is exact)."""
        if net <= 0 or self.total_bps >= BPS:
            return max(net, 0)
        # net_of(g) <= g * (1 - total/BPS) + 1, so the answer is at most a few units below this
        gross = max(0, net * BPS // (BPS - self.total_bps) - 4)
        while self.net_of(gross) < net:
            gross += 1
        return gross
