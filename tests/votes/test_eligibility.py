"""Vote eligibility at work: the facts read from a local chain (balance, age, history) and the
database (positions), the shared cache, the 403 and 503 over HTTP on both backends, on-chain
votes always counting and the votes page saying why each vote counts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from marketd.chain.addresses import new_market_id
from marketd.chain.client import ChainClient
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet.rpc_server import RpcEndpoint, serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.chain.program import BUNDLED_IDL, program_id
from marketd.config import Settings
from marketd.core.cache import Cache, MemoryCache, RedisCache
from marketd.core.database import Database, create_engine
from marketd.models import Position, ProposalVote, User
from marketd.votes import eligibility_service
from marketd.votes.eligibility_service import (
    EligibilityChecker,
    EligibilityUnavailable,
    VoteIneligible,
)
from marketd.votes.rules import VoteKind
from marketd.votes.tally_repository import TallyRepository

pytestmark = pytest.mark.integration  # serves the local chain over JSON-RPC

SOL = 1_000_000_000
REFUSED = "marketd_votes_ineligible_total"
LABELS = {"kind": "proposal", "reason": "min_balance"}
STRICT = "min_balance_sol=0.05,min_wallet_age_days=7"


class Chain:
    """A local chain (no program needed: balances and histories) served over JSON-RPC."""

    def __init__(self, chain: LocalChain, endpoint: RpcEndpoint, client: ChainClient) -> None:
        self.chain = chain
        self.endpoint = endpoint
        self.client = client

    def wallet(self, lamports: int = 0, *, days_old: float = 0, funding: int = 1) -> Keypair:
        """A wallet funded `funding` times (`lamports` in all), `days_old` days ago."""
        keypair = Keypair()
        if lamports:
            now = self.chain.unix_timestamp
            self.chain.set_unix_timestamp(now - int(days_old * 86_400))
            for _ in range(funding):
                self.chain.airdrop(keypair.pubkey(), lamports // funding)
            self.chain.set_unix_timestamp(now)
        return keypair


@pytest_asyncio.fixture
async def chain() -> AsyncIterator[Chain]:
    local = LocalChain()
    async with serve_local_rpc(local) as endpoint:
        rpc = AsyncClient(endpoint.http_url, commitment=Confirmed)
        settings = Settings(_env_file=None)
        coder = IdlCoder(Idl.from_path(BUNDLED_IDL))
        async with ChainClient(rpc, coder, program_id(settings)) as client:
            yield Chain(local, endpoint, client)


def checker(
    tmp_path: Path, chain: Any, cache: Cache | None = None, **settings: Any
) -> EligibilityChecker:
    values = {"_env_file": None, "data_dir": tmp_path, "vote_eligibility": STRICT} | settings
    config = Settings(**values)
    database = Database(create_engine(config))  # not read by the chain strategies
    return EligibilityChecker(config, cache or MemoryCache(), database, chain)


MARKET = new_market_id()


# --------------------------------------------------------------------------- the service


async def test_balance_and_age_are_read_from_the_chain(chain, tmp_path):
    judge = checker(tmp_path, chain.client)
    old = chain.wallet(SOL // 5, days_old=30)
    decision = await judge.require(VoteKind.PROPOSAL, MARKET, str(old.pubkey()))
    assert decision.record()["checks"] == [
        {"strategy": "min_balance", "required": "0.05 SOL", "value": "0.2 SOL"},
        {"strategy": "min_wallet_age", "required": "7 days", "value": "30 days"},
    ]

    fresh = chain.wallet(SOL // 100)  # funded now, 0.01 SOL
    refusals = REGISTRY.get_sample_value(REFUSED, LABELS) or 0.0
    with pytest.raises(VoteIneligible) as refused:
        await judge.require(VoteKind.PROPOSAL, MARKET, str(fresh.pubkey()))
    assert REGISTRY.get_sample_value(REFUSED, LABELS) == refusals + 1
    assert refused.value.extra["reason"] == "min_balance"
    assert refused.value.extra["unmet"] == [
        {"strategy": "min_balance", "required": "0.05 SOL", "value": "0.01 SOL"},
        {"strategy": "min_wallet_age", "required": "7 days", "value": "0 days"},
    ]

    rich_but_new = chain.wallet(10 * SOL, days_old=6)
    young = await judge.judge(VoteKind.PROPOSAL, MARKET, str(rich_but_new.pubkey()))
    assert [c.strategy.value for c in young.unmet] == ["min_wallet_age"]
    assert young.unmet[0].value == "6 days"

    never_used = await judge.judge(VoteKind.PROPOSAL, MARKET, str(Pubkey.new_unique()))
    assert [(c.value, c.passed) for c in never_used.checks] == [
        ("0 SOL", False),
        ("no transactions", False),
    ]


async def test_history_is_paged_until_it_is_old_enough(chain, tmp_path, monkeypatch):
    monkeypatch.setattr(eligibility_service, "PAGE_SIZE", 2)  # five transactions, three pages
    wallet = Keypair()
    now = chain.chain.unix_timestamp
    for days in (40, 30, 20, 1, 0):
        chain.chain.set_unix_timestamp(now - days * 86_400)
        chain.chain.airdrop(wallet.pubkey(), SOL)
    chain.chain.set_unix_timestamp(now)
    policy = {"vote_eligibility": "min_wallet_age_days=35"}
    decision = await checker(tmp_path, chain.client, **policy).require(
        VoteKind.PROPOSAL, MARKET, str(wallet.pubkey())
    )
    assert decision.checks[0].value == "40 days"  # the third page's oldest
    counted = checker(tmp_path, chain.client, vote_eligibility="min_transactions=5")
    assert (await counted.require(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))).eligible
    too_many = checker(tmp_path, chain.client, vote_eligibility="min_transactions=6")
    refusal = await too_many.judge(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))
    assert refusal.unmet[0].value == "5 transactions"  # the whole history, to its end
    # The walk stops once the wallet is old enough: 20 days are met on the second page.
    pages: list[str | None] = []
    reads = chain.client.signatures_for_address

    async def counting(address: Pubkey, **options: Any) -> Any:
        pages.append(options.get("before"))
        return await reads(address, **options)

    monkeypatch.setattr(chain.client, "signatures_for_address", counting)
    young = checker(tmp_path, chain.client, vote_eligibility="min_wallet_age_days=15")
    assert (await young.require(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))).eligible
    assert len(pages) == 2 and pages[0] is None


async def test_chain_facts_are_cached_and_shared_through_redis(
    chain, tmp_path, redis_url, redis_prefix
):
    redis = Redis.from_url(redis_url)
    try:
        shared = RedisCache(redis, f"{redis_prefix}elig-{uuid.uuid4().hex[:8]}:")
        first = checker(tmp_path, chain.client, shared, vote_eligibility="min_balance_sol=1")
        second = checker(tmp_path, chain.client, shared, vote_eligibility="min_balance_sol=1")
        wallet = chain.wallet(SOL // 2)
        refused = await first.judge(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))
        assert refused.unmet[0].value == "0.5 SOL"
        chain.chain.airdrop(wallet.pubkey(), SOL)
        # Another instance within the cache time reads the cached balance, not the chain...
        again = await second.judge(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))
        assert again.unmet[0].value == "0.5 SOL"
        # ... a cache of its own reads the chain.
        alone = checker(tmp_path, chain.client, vote_eligibility="min_balance_sol=1")
        fresh = await alone.require(VoteKind.PROPOSAL, MARKET, str(wallet.pubkey()))
        assert fresh.checks[0].value == "1.5 SOL"
    finally:
        await redis.aclose()


async def test_no_chain_or_a_failing_rpc_refuses_with_503(tmp_path):
    wallet = str(Pubkey.new_unique())
    with pytest.raises(EligibilityUnavailable) as no_chain:
        await checker(tmp_path, None).require(VoteKind.PROPOSAL, MARKET, wallet)
    assert no_chain.value.status == 503
    assert no_chain.value.extra["reason"] == "no-chain"
    assert "SOLANA_RPC_URL" in no_chain.value.detail
    # Nothing listens on port 9: the RPC is down.
    dead = ChainClient.from_settings(Settings(_env_file=None), rpc_url="http://127.0.0.1:9")
    async with dead:
        with pytest.raises(EligibilityUnavailable) as down:
            await checker(tmp_path, dead).require(VoteKind.PROPOSAL, MARKET, wallet)
    assert down.value.extra["reason"] == "rpc-unavailable"
    assert down.value.headers == {"Retry-After": "10"}
    # A policy without chain strategies needs no chain.
    listed = checker(tmp_path, None, vote_eligibility=f"allowlist={wallet}")
    assert (await listed.require(VoteKind.PROPOSAL, MARKET, wallet)).eligible
    with pytest.raises(VoteIneligible):
        await listed.require(VoteKind.PROPOSAL, MARKET, str(Pubkey.new_unique()))


async def test_a_refused_cheap_strategy_costs_no_rpc_call(tmp_path):
    class Unreachable:
        async def balance(self, address: Pubkey) -> int:
            raise AssertionError("the chain was read")

        async def signatures_for_address(self, address: Pubkey, **options: Any) -> Any:
            raise AssertionError("the chain was read")

    listed = str(Pubkey.new_unique())
    judge = checker(tmp_path, Unreachable(), vote_eligibility=f"allowlist={listed},{STRICT}")
    decision = await judge.judge(VoteKind.PROPOSAL, MARKET, str(Pubkey.new_unique()))
    assert [c.strategy.value for c in decision.checks] == ["allowlist"]
    assert not decision.eligible


# --------------------------------------------------------------------------- over HTTP


async def _vote(api: Any, headers: dict[str, str], market_id: str, kind: str = "proposal") -> Any:
    return await api.client.post(
        f"/api/votes/{kind}", json={"market_id": market_id, "vote": True}, headers=headers
    )


async def test_an_ineligible_vote_is_refused_with_403_and_an_eligible_one_says_why(
    api_factory, chain
):
    api = await api_factory(vote_eligibility=STRICT, solana_rpc_url=chain.endpoint.http_url)
    _, creator = await api.sign_in()
    market_id = await api.market(creator)

    _, fresh_headers = await api.sign_in(chain.wallet(SOL // 100))
    refused = await _vote(api, fresh_headers, market_id)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/vote-ineligible")
    assert problem["reason"] == "min_balance"
    assert problem["required"] == [
        {"strategy": "min_balance", "required": "0.05 SOL"},
        {"strategy": "min_wallet_age", "required": "7 days"},
    ]
    assert problem["unmet"][0] == {
        "strategy": "min_balance",
        "required": "0.05 SOL",
        "value": "0.01 SOL",
    }
    assert "submit_proposal_vote" in problem["detail"]
    assert await api.execute("SELECT 1 FROM proposal_votes WHERE market_id = :m", m=market_id) == []

    # 404 and 409 come first: the ineligible wallet learns the market is not open.
    missing = await _vote(api, fresh_headers, new_market_id())
    assert missing.status_code == 404
    approved = await api.market(creator, state="APPROVED")
    assert (await _vote(api, fresh_headers, approved)).status_code == 409

    voter, headers = await api.sign_in(chain.wallet(SOL // 5, days_old=30))
    accepted = await _vote(api, headers, market_id)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tally"] == {"yes": 1, "no": 0, "total": 1}
    assert accepted.json()["eligibility"]["checks"][0]["value"] == "0.2 SOL"

    page = (await api.client.get(f"/api/markets/{market_id}/votes")).json()
    assert page["tally"] == {"yes": 1, "no": 0, "total": 1}
    [item] = page["items"]
    assert item["wallet"] == str(voter.pubkey())
    eligibility = item["eligibility"]
    assert eligibility["strategy"] == "all_of"
    assert eligibility["checks"] == [
        {"strategy": "min_balance", "required": "0.05 SOL", "value": "0.2 SOL"},
        {"strategy": "min_wallet_age", "required": "7 days", "value": "30 days"},
    ]
    checked_at = datetime.fromisoformat(eligibility["checked_at"])
    assert abs(datetime.now(UTC) - checked_at) < timedelta(minutes=5)


async def test_without_a_chain_a_chain_strategy_answers_503(api_factory):
    api = await api_factory(vote_eligibility="min_balance_sol=0.05")  # no SOLANA_RPC_URL
    voter, headers = await api.sign_in()
    market_id = await api.market(headers)
    response = await _vote(api, headers, market_id)
    assert response.status_code == 503
    assert response.json()["type"].endswith("/eligibility-unavailable")
    assert response.json()["reason"] == "no-chain"
    # A wallet whose vote is on chain already hears so first (no chain read is needed).
    async with api.container.database.session() as session, session.begin():
        session.add(
            ProposalVote(
                market_id=market_id, user_wallet=str(voter.pubkey()), vote=True, tx_signature="s"
            )
        )
    again = await _vote(api, headers, market_id)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/voted-on-chain")


async def test_dispute_votes_need_a_position_in_the_market(api_factory):
    api = await api_factory(dispute_vote_eligibility="position")
    _, creator = await api.sign_in()
    market_id = await api.market(creator, state="DISPUTED")
    holder, headers = await api.sign_in()
    refused = await _vote(api, headers, market_id, "dispute")
    assert refused.status_code == 403
    assert refused.json()["reason"] == "position"
    assert refused.json()["unmet"][0]["value"] == "no position"

    address = await api.market_address(market_id)
    async with api.container.database.session() as session, session.begin():
        wallet = str(holder.pubkey())
        session.add(
            Position(
                market_id=market_id,
                user_wallet=wallet,
                market_pubkey=address,
                user_pubkey=wallet,
                shares_yes=7,
            )
        )
    accepted = await _vote(api, headers, market_id, "dispute")
    assert accepted.status_code == 200, accepted.text
    page = await api.client.get(f"/api/markets/{market_id}/votes", params={"kind": "dispute"})
    [item] = page.json()["items"]
    assert item["eligibility"]["checks"] == [
        {
            "strategy": "position",
            "required": "shares of this market",
            "value": "7 YES and 0 NO shares",
        }
    ]
    # Proposal votes keep their own policy (here: any wallet).
    proposed = await api.market(creator)
    assert (await _vote(api, headers, proposed)).status_code == 200


async def test_on_chain_votes_always_count_and_unrecorded_ones_do_not(api_factory):
    api = await api_factory(vote_eligibility="allowlist=" + str(Pubkey.new_unique()))
    _, creator = await api.sign_in()
    market_id = await api.market(creator)
    on_chain = sorted(str(Pubkey.new_unique()) for _ in range(3))
    legacy = str(Pubkey.new_unique())
    async with api.container.database.session() as session, session.begin():
        # The platform's votes reference users.
        session.add_all([User(wallet=wallet) for wallet in [*on_chain, legacy]])
        await session.flush()
        for index, wallet in enumerate(on_chain):
            session.add(
                ProposalVote(
                    market_id=market_id,
                    user_wallet=wallet,
                    vote=True,
                    voted_at=datetime.now(UTC),
                    tx_signature=f"sig{index}",  # as the indexer records submit_proposal_vote
                )
            )
        # An off-chain vote without a record (marketd never writes one).
        session.add(ProposalVote(market_id=market_id, user_wallet=legacy, vote=False))

    # None of the on-chain voters is on the allowlist: it does not apply to them.
    page = (await api.client.get(f"/api/markets/{market_id}/votes")).json()
    assert page["tally"] == {"yes": 3, "no": 0, "total": 3}
    assert [item["wallet"] for item in page["items"]] == on_chain
    assert {item["eligibility"]["strategy"] for item in page["items"]} == {"on_chain"}
    assert page["items"][0]["eligibility"] == {
        "strategy": "on_chain",
        "checks": [],
        "checked_at": None,
    }
    detail = (await api.client.get(f"/api/markets/{market_id}")).json()
    assert detail["votes"]["proposal"] == {"likes": 3, "dislikes": 0, "total": 3}
    async with api.container.database.session() as session:
        tallies = await TallyRepository(session).open_proposal_tallies()
        counted = await TallyRepository(session).cast_votes(VoteKind.PROPOSAL, market_id)
    [tally] = [t for t in tallies if t.market_id == market_id]
    assert (tally.tally.yes, tally.tally.no) == (3, 0)
    assert [v.wallet for v in counted] == on_chain and all(v.on_chain for v in counted)

    # An allowed wallet's vote joins them; the refused one is not stored.
    _, stranger = await api.sign_in()
    assert (await _vote(api, stranger, market_id)).status_code == 403
    listed = Keypair()
    api2 = await api_factory(vote_eligibility=f"allowlist={listed.pubkey()}")
    _, headers = await api2.sign_in(listed)
    accepted = await api2.client.post(
        "/api/votes/proposal", json={"market_id": market_id, "vote": False}, headers=headers
    )
    assert accepted.json()["tally"] == {"yes": 3, "no": 1, "total": 4}
