"""The program's trading fees, and the gross amount of a sale recovered from its net proceeds.

`SharesSold.proceeds` is what the seller received, after fees; the market's liquidity and volume
move by the gross amount. The fees are floor(gross * bps / 10000) each, so the gross is the
smallest amount whose net equals the proceeds (the reconcile job repairs the rare case where
two gross amounts give the same net).
"""

from __future__ import annotations

from dataclasses import dataclass

BPS = 10_000


@dataclass(frozen=True)
class FeeSchedule:
    protocol_bps: int = 300
    resolver_bps: int = 200
    lp_bps: int = 500

    @property
    def total_bps(self) -> int:
        return self.protocol_bps + self.resolver_bps + self.lp_bps

    def fees_on(self, amount: int) -> int:
        """Each fee floored on its own, as the program does (runs for every indexed trade)."""
        return (
            amount * self.protocol_bps // BPS
            + amount * self.resolver_bps // BPS
            + amount * self.lp_bps // BPS
        )

    def net_of(self, gross: int) -> int:
        return gross - self.fees_on(gross)

    def gross_from_net(self, net: int) -> int:
        """The smallest gross whose net is `net` (or the closest below when none is exact)."""
        if net <= 0 or self.total_bps >= BPS:
            return max(net, 0)
        # net_of(g) <= g * (1 - total/BPS) + 3, so the answer is at most a few units below this
        gross = max(0, net * BPS // (BPS - self.total_bps) - 4)
        while self.net_of(gross) < net:
            gross += 1
        return gross
