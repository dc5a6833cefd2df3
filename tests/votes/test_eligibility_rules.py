"""The eligibility strategies' rules (pure): parsing a policy, each strategy's verdict, the
decision and what is recorded with a vote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from solders.pubkey import Pubkey

from marketd.config import Settings
from marketd.shared.eligibility import (
    DAY_SECONDS,
    LAMPORTS_PER_SOL,
    ChainFacts,
    Decision,
    Requirement,
    Stage,
    Strategy,
    WalletFacts,
    check,
    parse_policy,
    refusal_detail,
    sol,
    wallet_age_cutoff,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
WALLET = str(Pubkey.new_unique())
OTHER = str(Pubkey.new_unique())


def facts(**chain: object) -> WalletFacts:
    return WalletFacts(WALLET, chain=ChainFacts(**chain))  # type: ignore[arg-type]


def test_a_policy_parses_into_its_strategies_in_order():
    policy = parse_policy(
        f" min_balance_sol=0.05 , min_wallet_age_days=7,min_transactions=3,"
        f"allowlist={WALLET}|{OTHER},position"
    )
    assert [r.strategy for r in policy.requirements] == [
        Strategy.MIN_BALANCE,
        Strategy.MIN_WALLET_AGE,
        Strategy.MIN_TRANSACTIONS,
        Strategy.ALLOWLIST,
        Strategy.POSITION,
    ]
    assert policy.get(Strategy.MIN_BALANCE) == Requirement(Strategy.MIN_BALANCE, 50_000_000)
    assert policy.get(Strategy.MIN_WALLET_AGE) == Requirement(
        Strategy.MIN_WALLET_AGE, 7 * DAY_SECONDS
    )
    assert policy.get(Strategy.ALLOWLIST) == Requirement(
        Strategy.ALLOWLIST, wallets=frozenset({WALLET, OTHER})
    )
    assert policy.describe()[:3] == [
        {"strategy": "min_balance", "required": "0.05 SOL"},
        {"strategy": "min_wallet_age", "required": "7 days"},
        {"strategy": "min_transactions", "required": "3 transactions"},
    ]
    assert not policy.is_open
    assert [r.strategy for r in policy.at(Stage.LOCAL)] == [Strategy.ALLOWLIST]
    assert policy.needs(Stage.DATABASE) and policy.needs(Stage.CHAIN)
    assert parse_policy("any").is_open
    assert not parse_policy("any").needs(Stage.CHAIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("min_karma=3", "unknown vote eligibility strategy 'min_karma'"),
        ("any,position", "`any` stands alone"),
        ("position=1", "position takes no value"),
        ("min_balance_sol", "min_balance_sol needs a value"),
        ("min_balance_sol=lots", "is not a number"),
        ("min_balance_sol=0", "above 0"),
        ("min_balance_sol=-1", "above 0"),
        ("min_balance_sol=0.0000000001", "whole lamports"),
        ("min_balance_sol=NaN", "above 0"),
        ("min_wallet_age_days=0", "1 to 3650"),
        ("min_wallet_age_days=7.5", "not a whole number"),
        ("min_transactions=5001", "1 to 5000"),
        ("allowlist=|", "wallet addresses separated by |"),
        ("allowlist=short", "wallet addresses separated by |"),
        ("position,position", "given twice"),
    ],
)
def test_a_bad_policy_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_policy(text)


def test_settings_refuse_a_bad_policy_and_position_for_proposals():
    with pytest.raises(ValidationError, match="min_karma"):
        Settings(_env_file=None, vote_eligibility="min_karma=1")
    with pytest.raises(ValidationError, match="dispute votes only"):
        Settings(_env_file=None, vote_eligibility="position")
    settings = Settings(_env_file=None, dispute_vote_eligibility="position,min_balance_sol=1")
    assert settings.dispute_vote_eligibility == "position,min_balance_sol=1"
    # The defaults are a real barrier (docs/deploy.md says why).
    defaults = Settings(_env_file=None)
    assert parse_policy(defaults.vote_eligibility).needs(Stage.CHAIN)
    assert parse_policy(defaults.dispute_vote_eligibility).get(Strategy.POSITION) is not None


def test_sol_amounts_read_as_people_write_them():
    assert sol(0) == "0 SOL"
    assert sol(50_000_000) == "0.05 SOL"
    assert sol(LAMPORTS_PER_SOL) == "1 SOL"
    assert sol(123_456_789_012) == "123.456789012 SOL"


def test_min_balance_is_met_at_the_amount_and_not_below():
    rule = parse_policy("min_balance_sol=0.05").requirements[0]
    assert check(rule, facts(balance=50_000_000), NOW).passed
    below = check(rule, facts(balance=49_999_999), NOW)
    assert not below.passed
    assert (below.required, below.value) == ("0.05 SOL", "0.049999999 SOL")
    assert check(rule, facts(), NOW).value == "0 SOL"  # no account: nothing held


def test_min_wallet_age_counts_from_the_oldest_transaction():
    rule = parse_policy("min_wallet_age_days=7").requirements[0]
    old = check(rule, facts(first_seen=NOW - timedelta(days=7)), NOW)
    assert old.passed and old.value == "7 days"
    young = check(rule, facts(first_seen=NOW - timedelta(days=6, hours=23)), NOW)
    assert not young.passed and young.value == "6 days"
    assert check(rule, facts(first_seen=NOW - timedelta(days=1)), NOW).value == "1 day"
    never = check(rule, facts(), NOW)
    assert not never.passed and never.value == "no transactions"
    future = check(rule, facts(first_seen=NOW + timedelta(hours=1)), NOW)  # clock skew
    assert not future.passed and future.value == "0 days"
    assert wallet_age_cutoff(parse_policy("min_wallet_age_days=7"), NOW) == NOW - timedelta(days=7)
    assert wallet_age_cutoff(parse_policy("any"), NOW) is None


def test_min_transactions_counts_what_was_read():
    rule = parse_policy("min_transactions=3").requirements[0]
    assert check(rule, facts(transactions=3), NOW).passed
    short = check(rule, facts(transactions=2), NOW)
    assert not short.passed and short.value == "2 transactions"
    assert check(rule, facts(), NOW).value == "0 transactions"


def test_position_needs_shares_of_the_market():
    rule = parse_policy("position").requirements[0]
    holder = check(rule, WalletFacts(WALLET, position=(0, 12)), NOW)
    assert holder.passed and holder.value == "0 YES and 12 NO shares"
    sold_out = check(rule, WalletFacts(WALLET, position=(0, 0)), NOW)
    assert not sold_out.passed
    none = check(rule, WalletFacts(WALLET), NOW)
    assert not none.passed and none.value == "no position"
    assert none.required == "shares of this market"


def test_allowlist_and_any():
    rule = parse_policy(f"allowlist={OTHER}").requirements[0]
    assert check(rule, WalletFacts(OTHER), NOW).value == "listed"
    refused = check(rule, WalletFacts(WALLET), NOW)
    assert not refused.passed and refused.value == "not listed"
    anyone = check(parse_policy("any").requirements[0], WalletFacts(WALLET), NOW)
    assert anyone.passed and anyone.required == "a signed-in wallet"


def test_a_decision_needs_every_strategy_and_records_them():
    policy = parse_policy("min_balance_sol=0.05,min_wallet_age_days=7")
    wallet = facts(balance=120_000_000, first_seen=NOW - timedelta(days=30))
    checks = tuple(check(r, wallet, NOW) for r in policy.requirements)
    decision = Decision(policy, checks, NOW)
    assert decision.eligible and decision.unmet == []
    assert decision.record() == {
        "strategy": "all_of",
        "checks": [
            {"strategy": "min_balance", "required": "0.05 SOL", "value": "0.12 SOL"},
            {"strategy": "min_wallet_age", "required": "7 days", "value": "30 days"},
        ],
        "checked_at": NOW.isoformat(),
    }
    partial = Decision(policy, checks[:1], NOW)  # a stage was not reached: not eligible
    assert not partial.eligible
    open_policy = parse_policy("any")
    anyone = Decision(open_policy, (check(open_policy.requirements[0], wallet, NOW),), NOW)
    assert anyone.eligible and anyone.record()["strategy"] == "any"


def test_the_refusal_says_what_is_required_and_what_the_wallet_has():
    policy = parse_policy("min_balance_sol=0.05,min_wallet_age_days=7")
    wallet = facts(balance=0, first_seen=None)
    decision = Decision(policy, tuple(check(r, wallet, NOW) for r in policy.requirements), NOW)
    assert [c.strategy for c in decision.unmet] == [Strategy.MIN_BALANCE, Strategy.MIN_WALLET_AGE]
    assert refusal_detail("proposal", decision) == (
        "This wallet may not vote on the proposal off-chain: min_balance needs 0.05 SOL, has "
        "0 SOL; min_wallet_age needs 7 days, has no transactions. An on-chain vote "
        "(submit_proposal_vote) always counts."
    )


def test_chain_facts_survive_the_cache():
    stored = ChainFacts(balance=5, first_seen=NOW, transactions=9)
    assert ChainFacts.from_json(stored.to_json()) == stored
    assert ChainFacts.from_json(ChainFacts().to_json()) == ChainFacts()
