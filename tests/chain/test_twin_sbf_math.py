"""The SBF build computes what the host build and the model compute: seeded random market
states written into a market account, then real buy_shares / sell_shares through LiteSVM,
compared with lmsr_model (the host build is held to the same model in test_twin_math.py)."""

from __future__ import annotations

import random
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

from marketd.chain.idl import IdlCoder

from ..helpers import lmsr_model as model
from ..helpers.twin import PROGRAM_ID, SOL, Scenario, key, position_pda

BPS = (300, 200, 500)
CASES = 60


def write_state(scenario: Scenario, q_yes: int, q_no: int, b: int) -> None:
    market = scenario.ledger.decode("MarketAccount", scenario.market)
    market.update(shares_yes=q_yes, shares_no=q_no, b_parameter=b, current_liquidity=10**15)
    raw: dict[str, Any] = dict(market)
    for name in ("market_id", "ipfs_evidence_hash", "reserved"):
        raw[name] = bytes.fromhex(raw[name])
    for name in ("creator", "resolver", "dispute_initiator"):
        raw[name] = Pubkey.from_string(raw[name])
    raw["state"] = "Active"
    data = scenario.ledger.coder.encode_account("MarketAccount", raw)
    padded = data + b"\0" * (488 - len(data))
    scenario.ledger.svm.set_account(
        scenario.market,
        Account(lamports=10**15, data=padded, owner=PROGRAM_ID, executable=False),
    )


def expected_buy(q_yes: int, q_no: int, b: int, yes: bool, target: int) -> Any:
    try:
        budget = model.buy_budget(target)
        shares, cost = model.buy(q_yes, q_no, b, yes, budget)
        fees = model.fee_split(cost, *BPS)
    except model.ModelError as exc:
        return exc.code
    total = cost + fees.total
    if total > target:
        return 6015
    new = (q_yes + shares, q_no) if yes else (q_yes, q_no + shares)
    return shares, total, model.yes_price(*new, b)


def random_state(rng: random.Random) -> tuple[int, int, int]:
    """(q_yes, q_no, b): seeds of b/1000 plus a lead from none to 15·b on either side."""
    b = rng.randrange(100, 3000) * SOL
    seed = b // 1000
    spread = rng.choice([0, rng.randrange(0, b), rng.randrange(0, 15 * b)])
    if rng.random() < 0.5:
        return seed + spread, seed, b
    return seed, seed + spread, b


def fund(scenario: Scenario, name: str) -> None:
    scenario.ledger.svm.set_account(
        key(name), Account(lamports=10**17, data=b"", owner=Pubkey.default(), executable=False)
    )


def test_sbf_buys_match_the_model(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    scenario.open_market()
    fund(scenario, "alice")
    rng = random.Random(1616)
    outcomes = set()
    for _ in range(CASES):
        q_yes, q_no, b = random_state(rng)
        write_state(scenario, q_yes, q_no, b)
        yes = rng.random() < 0.5
        target = rng.choice([rng.randrange(10_000, 10**8), rng.randrange(10**8, 10**12)])
        result = scenario.buy("alice", yes, target)
        want = expected_buy(q_yes, q_no, b, yes, target)
        if isinstance(want, int):
            assert result.custom_code == want, (q_yes, q_no, b, yes, target, result.error)
            outcomes.add(want)
            continue
        assert result.ok, (q_yes, q_no, b, yes, target, result.error)
        decoded = chain_coder.decode_event(result.events[0])
        assert decoded is not None
        fields = decoded[1]
        assert (fields["shares"], fields["cost"], fields["new_price_yes"]) == want
        outcomes.add(0)
    assert 0 in outcomes and len(outcomes) > 1  # both successes and failures were exercised


def test_sbf_sells_match_the_model(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder, fixed=True)  # sells pay out only in the fixed build
    scenario.open_market()
    assert scenario.buy("alice", True, SOL).ok and scenario.buy("alice", False, SOL).ok
    position = position_pda(scenario.market, key("alice"))
    raw = bytearray(scenario.ledger.data(position))
    raw[72:80] = raw[80:88] = (10**15).to_bytes(8, "little")
    current = scenario.ledger.svm.get_account(position)
    assert current is not None
    scenario.ledger.svm.set_account(
        position,
        Account(lamports=current.lamports, data=bytes(raw), owner=PROGRAM_ID, executable=False),
    )
    rng = random.Random(1617)
    paid = 0
    for _ in range(CASES):
        q_yes, q_no, b = random_state(rng)
        write_state(scenario, q_yes, q_no, b)
        market = scenario.ledger.decode("MarketAccount", scenario.market)
        yes = rng.random() < 0.5
        held = q_yes if yes else q_no
        n = rng.randrange(0, held + 1)
        result = scenario.sell("alice", yes, n)
        try:
            gross = model.sell(q_yes, q_no, b, yes, n)
            fees = model.fee_split(gross, *BPS)
        except model.ModelError as exc:
            assert result.custom_code == exc.code, (q_yes, q_no, b, yes, n, result.error)
            continue
        if gross < 10_000:
            assert result.custom_code == 6018
            continue
        net = gross - fees.total
        if market["current_liquidity"] < net + fees.protocol:
            assert result.custom_code == 6016
            continue
        assert result.ok, (q_yes, q_no, b, yes, n, result.error)
        decoded = chain_coder.decode_event(result.events[0])
        assert decoded is not None
        new = (q_yes - n, q_no) if yes else (q_yes, q_no - n)
        assert decoded[1]["proceeds"] == net
        assert decoded[1]["new_price_yes"] == model.yes_price(*new, b)
        paid += 1
    assert paid > CASES // 4
