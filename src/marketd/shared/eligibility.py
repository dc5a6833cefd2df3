"""Who may vote off-chain (pure): the eligibility strategies and their decisions.

Shared below every layer because the settings (VOTE_ELIGIBILITY, DISPUTE_VOTE_ELIGIBILITY)
parse their policies with it at start-up, and the votes domain decides with it.

Signing in needs only a keypair, so one person can hold any number of wallets. An off-chain
vote costs nothing, so before it is stored the wallet must meet every strategy of the kind's
policy (all-of), in the spirit of Snapshot's voting strategies:

* ``any``: every signed-in wallet (the demo, the tests); stands alone.
* ``allowlist=A|B|...``: the wallet is listed.
* ``position``: the wallet holds shares of the market (dispute votes only: a PROPOSED market
  has no trades yet).
* ``min_balance_sol=X``: the wallet's balance on chain, read when the vote is cast, is >= X SOL.
* ``min_wallet_age_days=N``: the wallet's oldest transaction (its first funding, usually) is at
  least N days old.
* ``min_transactions=N``: at least N transactions involve the wallet.

A policy is written as these items separated by commas, e.g.
``min_balance_sol=0.05,min_wallet_age_days=7``. On-chain votes (``submit_proposal_vote``,
``submit_dispute_vote``) pay rent and always count; they are never judged here.

The facts (balance, history, position) are gathered by `marketd.votes.eligibility_service`; this
module only decides, so each decision can be tested and recounted without I/O. A decision is
recorded with the vote (`Decision.record`) so the votes page shows why each vote counted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

LAMPORTS_PER_SOL = 1_000_000_000
DAY_SECONDS = 24 * 3600
MAX_SOL = Decimal(1_000_000)
MAX_DAYS = 3650
MAX_TRANSACTIONS = 5000
"""At most what `eligibility_service` reads of a wallet's history (five pages of 1,000)."""
ON_CHAIN = "on_chain"
"""The record of a vote cast on chain: it always counts."""


class Strategy(enum.StrEnum):
    ANY = "any"
    ALLOWLIST = "allowlist"
    POSITION = "position"
    MIN_BALANCE = "min_balance"
    MIN_WALLET_AGE = "min_wallet_age"
    MIN_TRANSACTIONS = "min_transactions"


class Stage(enum.IntEnum):
    """Where a strategy's facts come from, cheapest first: a later stage is not consulted once
    an earlier one has refused the wallet (an ineligible vote costs no RPC call when it can)."""

    LOCAL = 0
    DATABASE = 1
    CHAIN = 2


STAGE = {
    Strategy.ANY: Stage.LOCAL,
    Strategy.ALLOWLIST: Stage.LOCAL,
    Strategy.POSITION: Stage.DATABASE,
    Strategy.MIN_BALANCE: Stage.CHAIN,
    Strategy.MIN_WALLET_AGE: Stage.CHAIN,
    Strategy.MIN_TRANSACTIONS: Stage.CHAIN,
}

# The configuration's words: `key` alone or `key=value`.
_KEYS = {
    "any": Strategy.ANY,
    "allowlist": Strategy.ALLOWLIST,
    "position": Strategy.POSITION,
    "min_balance_sol": Strategy.MIN_BALANCE,
    "min_wallet_age_days": Strategy.MIN_WALLET_AGE,
    "min_transactions": Strategy.MIN_TRANSACTIONS,
}
_FLAGS = frozenset({Strategy.ANY, Strategy.POSITION})


def sol(lamports: int) -> str:
    """Lamports as SOL text without trailing zeros: 50_000_000 -> "0.05 SOL"."""
    text = f"{Decimal(lamports) / LAMPORTS_PER_SOL:.9f}".rstrip("0").rstrip(".")
    return f"{text} SOL"


def _days(seconds: int) -> str:
    days = seconds // DAY_SECONDS
    return f"{days} day" if days == 1 else f"{days} days"


@dataclass(frozen=True)
class Requirement:
    """One strategy of a policy with its threshold (`amount`: lamports, seconds or a count)."""

    strategy: Strategy
    amount: int = 0
    wallets: frozenset[str] = frozenset()

    @property
    def stage(self) -> Stage:
        return STAGE[self.strategy]

    @property
    def required(self) -> str:
        """What the strategy asks, as the 403 and the votes page say it."""
        if self.strategy is Strategy.MIN_BALANCE:
            return sol(self.amount)
        if self.strategy is Strategy.MIN_WALLET_AGE:
            return _days(self.amount)
        if self.strategy is Strategy.MIN_TRANSACTIONS:
            return f"{self.amount} transactions"
        if self.strategy is Strategy.POSITION:
            return "shares of this market"
        if self.strategy is Strategy.ALLOWLIST:
            return "a wallet on the allowlist"
        return "a signed-in wallet"

    def describe(self) -> dict[str, str]:
        return {"strategy": self.strategy.value, "required": self.required}


@dataclass(frozen=True)
class Policy:
    """The strategies a wallet must all meet to vote off-chain on one kind of vote."""

    requirements: tuple[Requirement, ...]

    @property
    def is_open(self) -> bool:
        """``any``: every wallet may vote; nothing to look up."""
        return all(r.strategy is Strategy.ANY for r in self.requirements)

    def at(self, stage: Stage) -> tuple[Requirement, ...]:
        return tuple(r for r in self.requirements if r.stage is stage)

    def needs(self, stage: Stage) -> bool:
        return any(r.stage is stage for r in self.requirements)

    def get(self, strategy: Strategy) -> Requirement | None:
        return next((r for r in self.requirements if r.strategy is strategy), None)

    def describe(self) -> list[dict[str, str]]:
        return [r.describe() for r in self.requirements]


def _parse_item(key: str, value: str | None) -> Requirement:
    strategy = _KEYS.get(key)
    if strategy is None:
        raise ValueError(f"unknown vote eligibility strategy {key!r} (known: {', '.join(_KEYS)})")
    if strategy in _FLAGS:
        if value is not None:
            raise ValueError(f"{key} takes no value")
        return Requirement(strategy)
    if not value:
        raise ValueError(f"{key} needs a value ({key}=...)")
    if strategy is Strategy.ALLOWLIST:
        wallets = frozenset(item.strip() for item in value.split("|") if item.strip())
        if not wallets or any(not 32 <= len(w) <= 44 for w in wallets):
            raise ValueError("allowlist= takes wallet addresses separated by |")
        return Requirement(strategy, wallets=wallets)
    if strategy is Strategy.MIN_BALANCE:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"min_balance_sol={value!r} is not a number") from None
        lamports = amount * LAMPORTS_PER_SOL
        if not (amount.is_finite() and 0 < amount <= MAX_SOL and lamports == int(lamports)):
            raise ValueError(
                "min_balance_sol must be above 0 and at most 1,000,000 SOL, in whole lamports"
            )
        return Requirement(strategy, amount=int(lamports))
    if not value.isdigit():
        raise ValueError(f"{key}={value!r} is not a whole number")
    number = int(value)
    if strategy is Strategy.MIN_WALLET_AGE:
        if not 1 <= number <= MAX_DAYS:
            raise ValueError(f"min_wallet_age_days must be 1 to {MAX_DAYS}")
        return Requirement(strategy, amount=number * DAY_SECONDS)
    if not 1 <= number <= MAX_TRANSACTIONS:
        raise ValueError(f"min_transactions must be 1 to {MAX_TRANSACTIONS}")
    return Requirement(strategy, amount=number)


@lru_cache(maxsize=16)
def parse_policy(text: str) -> Policy:
    """A policy from its configuration text; ValueError names what is wrong."""
    requirements: list[Requirement] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        requirement = _parse_item(key.strip().lower(), value.strip() if sep else None)
        if any(r.strategy is requirement.strategy for r in requirements):
            raise ValueError(f"{key.strip()} is given twice")
        requirements.append(requirement)
    if not requirements:
        raise ValueError("empty vote eligibility policy (use `any` to let every wallet vote)")
    if len(requirements) > 1 and any(r.strategy is Strategy.ANY for r in requirements):
        raise ValueError("`any` stands alone: it lets every wallet vote")
    return Policy(tuple(requirements))


# --------------------------------------------------------------------------- facts and checks


@dataclass(frozen=True)
class ChainFacts:
    """What the chain says about a wallet (None: not looked up)."""

    balance: int | None = None
    """Lamports."""
    first_seen: datetime | None = None
    """Block time of the oldest transaction read (the history walk stops once it is old
    enough for the policy, so this is a lower bound of the wallet's age)."""
    transactions: int | None = None
    """Transactions read (the walk stops once the policy's count is reached)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "balance": self.balance,
            "first_seen": None if self.first_seen is None else self.first_seen.isoformat(),
            "transactions": self.transactions,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChainFacts:
        first_seen = data.get("first_seen")
        return cls(
            balance=data.get("balance"),
            first_seen=None if first_seen is None else datetime.fromisoformat(first_seen),
            transactions=data.get("transactions"),
        )


@dataclass(frozen=True)
class WalletFacts:
    """Everything the strategies look at; each stage fills its part."""

    wallet: str
    chain: ChainFacts = field(default_factory=ChainFacts)
    position: tuple[int, int] | None = None
    """(shares_yes, shares_no) in the market; None: no position row."""


@dataclass(frozen=True)
class Check:
    strategy: Strategy
    required: str
    value: str
    passed: bool

    def to_json(self) -> dict[str, str]:
        return {"strategy": self.strategy.value, "required": self.required, "value": self.value}


def check(requirement: Requirement, facts: WalletFacts, now: datetime) -> Check:
    """One strategy's verdict on the wallet, with what the wallet has."""
    strategy = requirement.strategy
    passed: bool
    if strategy is Strategy.ANY:
        value, passed = "signed in", True
    elif strategy is Strategy.ALLOWLIST:
        passed = facts.wallet in requirement.wallets
        value = "listed" if passed else "not listed"
    elif strategy is Strategy.POSITION:
        yes, no = facts.position or (0, 0)
        passed = yes > 0 or no > 0
        value = f"{yes} YES and {no} NO shares" if facts.position else "no position"
    elif strategy is Strategy.MIN_BALANCE:
        balance = facts.chain.balance or 0
        value, passed = sol(balance), balance >= requirement.amount
    elif strategy is Strategy.MIN_WALLET_AGE:
        first = facts.chain.first_seen
        if first is None:
            value, passed = "no transactions", False
        else:
            age = max(0, int((now - first).total_seconds()))
            value, passed = _days(age), age >= requirement.amount
    else:
        count = facts.chain.transactions or 0
        value, passed = f"{count} transactions", count >= requirement.amount
    return Check(strategy, requirement.required, value, passed)


def wallet_age_cutoff(policy: Policy, now: datetime) -> datetime | None:
    """The newest first transaction the age strategy accepts (None: no age strategy)."""
    age = policy.get(Strategy.MIN_WALLET_AGE)
    return None if age is None else now - timedelta(seconds=age.amount)


@dataclass(frozen=True)
class Decision:
    """The verdict on one wallet for one vote: the checks made, cheapest stage first."""

    policy: Policy
    checks: tuple[Check, ...]
    checked_at: datetime

    @property
    def eligible(self) -> bool:
        return len(self.checks) == len(self.policy.requirements) and all(
            c.passed for c in self.checks
        )

    @property
    def unmet(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def record(self) -> dict[str, Any]:
        """What is stored with an accepted vote and shown on the votes page."""
        return {
            "strategy": Strategy.ANY.value if self.policy.is_open else "all_of",
            "checks": [c.to_json() for c in self.checks],
            "checked_at": self.checked_at.isoformat(),
        }


def refusal_detail(kind: str, decision: Decision) -> str:
    """The 403's sentence: what is required and what the wallet has."""
    unmet = "; ".join(
        f"{c.strategy.value} needs {c.required}, has {c.value}" for c in decision.unmet
    )
    return (
        f"This wallet may not vote on the {kind} off-chain: {unmet}. "
        f"An on-chain vote (submit_{kind}_vote) always counts."
    )
