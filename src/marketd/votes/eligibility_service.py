"""Gathers the facts the eligibility strategies need and asks `eligibility` for the verdict.

Stages, cheapest first (`eligibility.Stage`): the allowlist needs nothing; `position` reads the
positions table; the chain strategies read the RPC (`getBalance`; `getSignaturesForAddress`
paged newest first until the wallet is old enough and has enough transactions, at most
`MAX_TRANSACTIONS` signatures). A stage that refuses the wallet ends the check, so a wallet
off the allowlist costs no RPC call.

Chain facts are cached in the container's cache (Redis when configured, so every instance
shares them) for VOTE_ELIGIBILITY_CACHE_SECONDS: a wallet voting on ten markets costs one
lookup, and a balance moved away is noticed within that time.

No chain (no SOLANA_RPC_URL) or a failing RPC while a chain strategy is configured: the vote
is refused with 503 `eligibility-unavailable`, never let through. A barrier that opens when
the RPC is down is no barrier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

import structlog
from prometheus_client import Counter
from solders.pubkey import Pubkey

from marketd.chain.client import AddressSignature
from marketd.chain.errors import ChainError
from marketd.config import Settings
from marketd.core.cache import Cache
from marketd.core.database import Database
from marketd.core.errors import Forbidden, Unavailable
from marketd.models.base import utcnow
from marketd.shared.eligibility import (
    MAX_TRANSACTIONS,
    ChainFacts,
    Check,
    Decision,
    Policy,
    Stage,
    Strategy,
    WalletFacts,
    check,
    parse_policy,
    refusal_detail,
    wallet_age_cutoff,
)
from marketd.votes.repository import VoteRepository
from marketd.votes.rules import VoteKind

log = structlog.get_logger("marketd.votes.eligibility")

PAGE_SIZE = 1000
RETRY_AFTER_SECONDS = 10

VOTES_INELIGIBLE = Counter(
    "marketd_votes_ineligible_total",
    "Off-chain votes refused by the eligibility strategies, by kind and first unmet strategy.",
    ["kind", "reason"],
)


class VoteIneligible(Forbidden):
    slug, title = "vote-ineligible", "Not eligible to vote"


class EligibilityUnavailable(Unavailable):
    slug, title = "eligibility-unavailable", "Vote eligibility cannot be checked"


class WalletChain(Protocol):
    """The chain reads of the strategies (`ChainClient` has them)."""

    async def balance(self, address: Pubkey) -> int: ...

    async def signatures_for_address(
        self, address: Pubkey, *, before: str | None = None, limit: int = 1000
    ) -> list[AddressSignature]: ...


def policy_of(settings: Settings, kind: VoteKind) -> Policy:
    text = (
        settings.vote_eligibility
        if kind is VoteKind.PROPOSAL
        else settings.dispute_vote_eligibility
    )
    return parse_policy(text)


async def read_history(
    chain: WalletChain, address: Pubkey, cutoff: datetime | None, min_count: int
) -> tuple[datetime | None, int]:
    """(block time of the oldest transaction read, transactions read): pages newest first
    until one is older than `cutoff` and `min_count` are read, or the history ends."""
    first_seen: datetime | None = None
    count = 0
    before: str | None = None
    while count < MAX_TRANSACTIONS:
        page = await chain.signatures_for_address(address, before=before, limit=PAGE_SIZE)
        count += len(page)
        times = [item.block_time for item in page if item.block_time is not None]
        if times:
            oldest = datetime.fromtimestamp(min(times), UTC)
            first_seen = oldest if first_seen is None else min(first_seen, oldest)
        old_enough = cutoff is None or (first_seen is not None and first_seen <= cutoff)
        if len(page) < PAGE_SIZE or (old_enough and count >= min_count):
            break
        before = page[-1].signature
    return first_seen, count


class EligibilityChecker:
    """Judges whether a wallet may vote off-chain (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        cache: Cache,
        database: Database,
        chain: WalletChain | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.database = database
        self.chain = chain
        self.clock = clock

    def policy(self, kind: VoteKind) -> Policy:
        return policy_of(self.settings, kind)

    async def judge(self, kind: VoteKind, market_id: str, wallet: str) -> Decision:
        policy = self.policy(kind)
        now = self.clock()
        facts = WalletFacts(wallet)
        checks: list[Check] = []
        for stage in Stage:
            requirements = policy.at(stage)
            if not requirements:
                continue
            if stage is Stage.DATABASE:
                facts = replace(facts, position=await self._position(market_id, wallet))
            elif stage is Stage.CHAIN:
                facts = replace(facts, chain=await self._chain_facts(policy, wallet, now))
            results = [check(requirement, facts, now) for requirement in requirements]
            checks.extend(results)
            if not all(result.passed for result in results):
                break
        return Decision(policy, tuple(checks), now)

    async def require(self, kind: VoteKind, market_id: str, wallet: str) -> Decision:
        """The decision of an eligible wallet; VoteIneligible (403) otherwise."""
        decision = await self.judge(kind, market_id, wallet)
        if not decision.eligible:
            unmet = decision.unmet
            VOTES_INELIGIBLE.labels(kind.value, unmet[0].strategy.value).inc()
            raise VoteIneligible(
                refusal_detail(kind.value, decision),
                reason=unmet[0].strategy.value,
                required=decision.policy.describe(),
                unmet=[c.to_json() for c in unmet],
            )
        return decision

    async def _position(self, market_id: str, wallet: str) -> tuple[int, int] | None:
        # Its own autocommit session: the caller's transaction is not held across the reads.
        async with self.database.session(read_only=True) as session:
            return await VoteRepository(session).position_shares(market_id, wallet)

    async def _chain_facts(self, policy: Policy, wallet: str, now: datetime) -> ChainFacts:
        balance = policy.get(Strategy.MIN_BALANCE)
        age = policy.get(Strategy.MIN_WALLET_AGE)
        count = policy.get(Strategy.MIN_TRANSACTIONS)
        # The facts read depend on the thresholds (the history walk stops once they are met).
        key = (
            f"vote-eligibility:b{int(balance is not None)}:a{age.amount if age else 0}"
            f":t{count.amount if count else 0}:{wallet}"
        )
        cached = await self.cache.get(key)
        if isinstance(cached, dict):
            return ChainFacts.from_json(cached)
        if self.chain is None:
            raise EligibilityUnavailable(
                "Vote eligibility needs the chain (VOTE_ELIGIBILITY / DISPUTE_VOTE_ELIGIBILITY "
                "name chain strategies) but no SOLANA_RPC_URL is configured.",
                reason="no-chain",
            )
        address = Pubkey.from_string(wallet)
        try:
            facts = ChainFacts(balance=await self.chain.balance(address) if balance else None)
            if age is not None or count is not None:
                first_seen, transactions = await read_history(
                    self.chain,
                    address,
                    wallet_age_cutoff(policy, now),
                    count.amount if count else 0,
                )
                facts = replace(facts, first_seen=first_seen, transactions=transactions)
        except ChainError as exc:
            log.warning("vote eligibility rpc failed", error=f"{type(exc).__name__}: {exc}")
            raise EligibilityUnavailable(
                "The chain could not be read to check this wallet's eligibility; try again.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                reason="rpc-unavailable",
            ) from exc
        await self.cache.set(key, facts.to_json(), self.settings.vote_eligibility_cache_seconds)
        return facts
