"""The twin program's checks one by one (PROGRAM.md §2, §3): each instruction's happy path and
each failing check with the code zmart_core returns, beyond what the golden sequences cover."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from solders.account import Account
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.rent import Rent

from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.build import PROGRAM_DIR

from ..helpers import lmsr_model as model
from ..helpers.twin import (
    PROGRAM_ID,
    SOL,
    Result,
    Scenario,
    config_pda,
    key,
    market_pda,
    position_pda,
    vote_pda,
)

MARKET_RENT = 4_287_360
POSITION_RENT = 2_157_600
SYSTEM = Pubkey.default()


@pytest.fixture
def scenario(chain_coder: IdlCoder) -> Scenario:
    return Scenario(chain_coder)


@pytest.fixture
def active(scenario: Scenario) -> Scenario:
    scenario.open_market()
    return scenario


def event_fields(scenario: Scenario, data: bytes) -> dict[str, Any]:
    decoded = scenario.ledger.coder.decode_event(data)
    assert decoded is not None
    return decoded[1]


def fails(result: Result, code: int) -> None:
    assert not result.ok, "expected a failure"
    assert result.custom_code == code, result.error
    assert result.events == []


def market_state(scenario: Scenario) -> dict[str, object]:
    return scenario.ledger.decode("MarketAccount", scenario.market)


def set_account(scenario: Scenario, address: Pubkey, **changes: object) -> None:
    """Rewrite an account in place (a test control for states instructions cannot reach)."""
    svm = scenario.ledger.svm
    current = svm.get_account(address)
    assert current is not None
    fields = {
        "lamports": current.lamports,
        "data": bytes(current.data),
        "owner": current.owner,
        "executable": current.executable,
        "rent_epoch": current.rent_epoch,
    }
    fields.update(changes)
    svm.set_account(address, Account(**fields))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the framework passes


def test_unknown_instruction_and_short_data(scenario: Scenario) -> None:
    ledger = scenario.ledger
    fails(ledger.send([Instruction(PROGRAM_ID, b"\x01" * 8, [])]), 101)
    fails(ledger.send([Instruction(PROGRAM_ID, b"\x01\x02", [])]), 101)


def test_arguments_that_do_not_decode(active: Scenario) -> None:
    data = active.ledger.coder.encode_instruction(
        "buy_shares", {"outcome": True, "target_cost": SOL}
    )
    bad_bool = data[:8] + b"\x02" + data[9:]
    ix = active.ledger.instruction("buy_shares", bad_bool, active.trade_accounts("alice"))
    fails(active.ledger.send([ix]), 102)
    short = active.ledger.instruction("buy_shares", data[:12], active.trade_accounts("alice"))
    fails(active.ledger.send([short]), 102)
    # trailing bytes are ignored
    long = active.ledger.instruction("buy_shares", data + b"xyz", active.trade_accounts("alice"))
    assert active.ledger.send([long]).ok


def test_too_few_accounts(active: Scenario) -> None:
    accounts = active.trade_accounts("alice")
    del accounts["protocol_fee_wallet"]
    data = active.ledger.coder.encode_instruction(
        "buy_shares", {"outcome": True, "target_cost": SOL}
    )
    metas = active.ledger.instruction("buy_shares", data, accounts).accounts[:4]
    fails(active.ledger.send([Instruction(PROGRAM_ID, data, metas)]), 3005)


def test_missing_signature_and_writability(active: Scenario) -> None:
    fails(active.buy("alice", True, SOL, overrides={"user": (False, True)}), 3010)
    fails(active.buy("alice", True, SOL, overrides={"market": (False, False)}), 2000)
    # the first buy creates the position by a CPI that needs the payer writable: like on a
    # cluster, the runtime rejects it before any constraint runs
    first = active.buy("alice", True, SOL, overrides={"user": (True, False)})
    assert not first.ok and "PrivilegeEscalation" in (first.error or "")
    assert active.buy("alice", True, SOL).ok
    fails(active.buy("alice", True, SOL, overrides={"user": (True, False)}), 2000)
    fails(active.buy("alice", True, SOL, overrides={"protocol_fee_wallet": (False, False)}), 2000)
    fails(active.admin_action("approve_proposal", overrides={"admin": (True, False)}), 2000)


def test_wrong_system_program(active: Scenario) -> None:
    fails(active.buy("alice", True, SOL, accounts={"system_program": key("outsider")}), 3008)


def test_typed_account_decoding(active: Scenario) -> None:
    nobody = Pubkey.new_unique()
    fails(active.buy("alice", True, SOL, accounts={"market": nobody}), 3012)
    fails(active.buy("alice", True, SOL, accounts={"market": key("outsider")}), 3007)
    fails(active.buy("alice", True, SOL, accounts={"market": config_pda()}), 3002)
    stub = Pubkey.new_unique()
    active.ledger.svm.set_account(
        stub, Account(lamports=SOL, data=b"\x01\x02", owner=PROGRAM_ID, executable=False)
    )
    fails(active.buy("alice", True, SOL, accounts={"market": stub}), 3001)
    truncated = active.ledger.data(active.market)[:100]
    active.ledger.svm.set_account(
        stub, Account(lamports=SOL, data=truncated, owner=PROGRAM_ID, executable=False)
    )
    fails(active.buy("alice", True, SOL, accounts={"market": stub}), 3003)


def test_seeds_of_existing_accounts(active: Scenario) -> None:
    copy = Pubkey.new_unique()
    account = active.ledger.svm.get_account(active.market)
    assert account is not None
    active.ledger.svm.set_account(copy, account)
    fails(active.buy("alice", True, SOL, accounts={"market": copy}), 2006)
    fails(active.aggregate("proposal", 1, 1, accounts={"market": copy}), 2006)
    config = active.ledger.svm.get_account(config_pda())
    assert config is not None
    fake_config = Pubkey.new_unique()
    active.ledger.svm.set_account(fake_config, config)
    fails(active.buy("alice", True, SOL, accounts={"global_config": fake_config}), 2006)


def test_init_at_a_non_canonical_address(scenario: Scenario) -> None:
    fails(scenario.initialize(accounts={"global_config": Pubkey.new_unique()}), 2006)
    assert scenario.initialize().ok
    fails(scenario.create(accounts={"market": market_pda(b"\x09" * 32)}), 2006)


def test_payer_without_funds_fails_in_the_system_program(scenario: Scenario) -> None:
    assert scenario.initialize().ok
    poor = Pubkey.new_unique()
    scenario.ledger.svm.airdrop(poor, 1_000_000)
    result = scenario.create(accounts={"creator": poor})
    fails(result, 1)  # ResultWithNegativeLamports inside create_account


def test_init_of_a_prefunded_pda_allocates_and_assigns(scenario: Scenario) -> None:
    assert scenario.initialize().ok
    scenario.ledger.svm.airdrop(scenario.market, 1_000_000)
    creator_before = scenario.ledger.lamports(key("creator"))
    assert scenario.create().ok
    assert scenario.ledger.lamports(scenario.market) == MARKET_RENT
    assert creator_before - scenario.ledger.lamports(key("creator")) == MARKET_RENT - 1_000_000
    assert len(scenario.ledger.data(scenario.market)) == 488
    assert market_state(scenario)["state"] == 0


def test_account_sizes_as_allocated(active: Scenario) -> None:
    assert active.buy("alice", True, SOL).ok
    assert active.vote("dispute", "bob").custom_code == 6051
    sizes = {
        config_pda(): 206,
        active.market: 488,
        position_pda(active.market, key("alice")): 182,
    }
    for address, size in sizes.items():
        assert len(active.ledger.data(address)) == size
    other = Scenario(active.ledger.coder)
    assert other.initialize().ok and other.create().ok
    assert other.vote("proposal", "alice").ok
    assert len(other.ledger.data(vote_pda(other.market, key("alice"), 0))) == 83


@pytest.mark.parametrize("threshold", [2.5, 0.75])
def test_accounts_are_rent_exempt_under_other_rent_parameters(
    chain_coder: IdlCoder, threshold: float
) -> None:
    """The program decodes Rent.exemption_threshold (an f64) without an FPU: a threshold
    other than the default 2.0 gives the runtime's minimum to the lamport."""
    scenario = Scenario(chain_coder)
    svm = scenario.ledger.svm
    svm.set_rent(Rent.from_bytes(struct.pack("<Qdb", 3480, threshold, 50)))
    assert scenario.initialize().ok and scenario.create().ok
    for address, size in ((config_pda(), 206), (scenario.market, 488)):
        exact = int((128 + size) * 3480 * threshold)
        assert exact == svm.minimum_balance_for_rent_exemption(size)
        assert scenario.ledger.lamports(address) == exact


# ------------------------------------------------------------------ admin instructions


def test_update_global_config_writes_and_reports(scenario: Scenario) -> None:
    assert scenario.initialize().ok
    result = scenario.update_config(
        protocol_fee_bps=100,
        resolver_reward_bps=100,
        liquidity_provider_fee_bps=100,
        proposal_approval_threshold=5000,
        dispute_success_threshold=5500,
        dispute_period=60,
    )
    assert result.ok
    config = scenario.ledger.decode("GlobalConfig", config_pda())
    assert config["protocol_fee_bps"] == 100
    assert config["dispute_success_threshold"] == 5500
    assert config["dispute_period"] == 60
    assert config["min_resolution_delay"] == 86_400
    event = event_fields(scenario, result.events[0])
    assert event["dispute_period"] == 60
    assert event["min_resolution_delay"] == 86_400


def test_admin_only_config_changes(scenario: Scenario) -> None:
    assert scenario.initialize().ok
    fails(scenario.update_config(signer="outsider"), 6029)
    fails(scenario.pause(signer="backend"), 6029)
    fails(scenario.update_config(overrides={"global_config": (False, False)}), 2000)
    fails(scenario.update_config(min_resolution_delay=0), 6002)
    fails(scenario.update_config(dispute_success_threshold=10_001), 6001)
    fails(scenario.update_config(protocol_fee_bps=9_000, liquidity_provider_fee_bps=1_001), 6004)


def test_pause_toggles_and_gates_only_create_buy_sell(active: Scenario) -> None:
    assert active.buy("alice", True, SOL).ok
    result = active.pause()
    assert result.ok
    assert event_fields(active, result.events[0])["is_paused"] is True
    fails(active.buy("alice", True, SOL), 6010)
    fails(active.sell("alice", True, 10**8), 6010)
    fails(active.create(market_id=b"\x07" * 32), 6010)
    assert active.resolve().ok  # not pause-gated
    assert active.pause().ok
    assert active.ledger.decode("GlobalConfig", config_pda())["is_paused"] is False


# ------------------------------------------------------------------ market lifecycle


def test_create_market_argument_checks(scenario: Scenario) -> None:
    assert scenario.initialize().ok
    fails(scenario.create(b=0), 6042)
    fails(scenario.create(liquidity=0), 6017)
    assert scenario.create(b=1, liquidity=1).ok  # b is not compared with MIN_B
    assert market_state(scenario)["shares_yes"] == 0


def test_proposal_gates(scenario: Scenario) -> None:
    assert scenario.initialize().ok and scenario.create().ok
    fails(scenario.admin_action("approve_proposal"), 6024)  # no votes aggregated
    fails(scenario.aggregate("proposal", 1, 1, signer="admin"), 6029)
    fails(scenario.aggregate("proposal", 2**32 - 1, 1), 6033)
    assert scenario.aggregate("proposal", 6, 4).ok
    assert market_state(scenario)["state"] == 0  # aggregation never approves
    fails(scenario.admin_action("approve_proposal"), 6025)
    assert scenario.aggregate("proposal", 7, 3).ok
    fails(scenario.admin_action("approve_proposal", signer="backend"), 6029)
    fails(scenario.admin_action("activate_market"), 6006)  # still Proposed
    assert scenario.admin_action("approve_proposal").ok
    fails(scenario.admin_action("approve_proposal"), 6006)
    fails(scenario.aggregate("proposal", 7, 3), 6051)
    fails(scenario.admin_action("activate_market", signer="outsider"), 6029)
    assert scenario.admin_action("activate_market").ok  # the admin may activate too
    fails(scenario.admin_action("activate_market"), 6006)


def test_cancel_rules(scenario: Scenario) -> None:
    assert scenario.initialize().ok and scenario.create().ok
    fails(scenario.admin_action("cancel_market", signer="creator"), 6029)
    assert scenario.aggregate("proposal", 7, 3).ok
    assert scenario.admin_action("approve_proposal").ok
    assert scenario.admin_action("cancel_market").ok  # Approved may be cancelled
    state = market_state(scenario)
    assert state["state"] == 6 and state["is_cancelled"] is False
    other = Scenario(scenario.ledger.coder)
    other.open_market()
    fails(other.admin_action("cancel_market"), 6011)


# ------------------------------------------------------------------ votes


def test_votes_create_records_and_never_count(scenario: Scenario) -> None:
    assert scenario.initialize().ok and scenario.create().ok
    user_before = scenario.ledger.lamports(key("alice"))
    result = scenario.vote("proposal", "alice", vote=False)
    assert result.ok
    assert user_before - scenario.ledger.lamports(key("alice")) == 1_468_560
    record = scenario.ledger.decode("VoteRecord", vote_pda(scenario.market, key("alice"), 0))
    assert record["vote"] is False and record["vote_type"] == 0
    assert market_state(scenario)["proposal_total_votes"] == 0
    fails(scenario.vote("proposal", "alice"), 0)  # Custom(0): the record exists
    fails(scenario.vote("dispute", "alice"), 6051)  # the dispute record is another PDA
    # the record's rent is paid by a CPI that needs the voter writable (as on a cluster)
    read_only = scenario.vote("proposal", "bob", overrides={"user": (True, False)})
    assert not read_only.ok and "PrivilegeEscalation" in (read_only.error or "")
    fails(scenario.vote("proposal", "bob", accounts={"market": config_pda()}), 3002)


# ------------------------------------------------------------------ trading


def test_buy_checks(active: Scenario) -> None:
    fails(active.buy("alice", True, 9_999), 6018)
    fails(active.buy("alice", True, 1_000_000), 6034)  # fresh market: the ln jump
    fails(active.buy("alice", True, 2**64 - 1), 6033)
    fails(active.buy("alice", True, SOL, accounts={"protocol_fee_wallet": key("outsider")}), 6029)
    assert active.update_config(protocol_fee_bps=2000).ok
    fails(active.buy("alice", True, SOL), 6015)  # the budget assumes 10 % fees
    assert active.update_config(
        protocol_fee_bps=0, resolver_reward_bps=0, liquidity_provider_fee_bps=0
    ).ok
    fails(active.buy("alice", True, SOL), 6035)


def test_buy_moves_lamports_and_counts(active: Scenario) -> None:
    alice, wallet = key("alice"), key("protocol_wallet")
    before = {a: active.ledger.lamports(a) for a in (alice, wallet, active.market)}
    result = active.buy("alice", False, 5 * SOL)
    assert result.ok
    event = event_fields(active, result.events[0])
    total = event["cost"]
    market = market_state(active)
    fee = active.ledger.lamports(wallet) - before[wallet]
    assert (total, fee) == (4_999_515_950, 136_350_435)  # vectors: b100_fresh_no_5sol
    assert before[alice] - active.ledger.lamports(alice) == total + POSITION_RENT
    assert active.ledger.lamports(active.market) - before[active.market] == total - fee
    assert market["total_volume"] == total
    position = active.ledger.decode("UserPosition", position_pda(active.market, alice))
    assert position["total_invested"] == total and position["trades_count"] == 1
    assert position["shares_no"] == event["shares"] == market["shares_no"] - 10**8
    assert active.buy("alice", False, SOL).ok
    position = active.ledger.decode("UserPosition", position_pda(active.market, alice))
    assert position["trades_count"] == 2


def test_buy_past_ten_b_lead_exceeds_the_exponent(active: Scenario) -> None:
    active.ledger.svm.airdrop(key("alice"), 2000 * SOL)
    assert active.buy("alice", True, 2500 * SOL).ok  # pushes YES to just under 20·b
    fails(active.buy("bob", True, SOL), 6039)


def test_init_if_needed_position_checks(active: Scenario) -> None:
    position = position_pda(active.market, key("alice"))
    assert active.buy("alice", True, SOL).ok
    data = active.ledger.data(position)
    set_account(active, position, data=data + b"\x00" * 8)
    fails(active.buy("alice", True, SOL), 2019)
    set_account(active, position, data=data, lamports=POSITION_RENT - 1)
    fails(active.buy("alice", True, SOL), 2005)
    set_account(active, position, lamports=POSITION_RENT, owner=key("outsider"))
    fails(active.buy("alice", True, SOL), 3007)
    fails(active.buy("alice", True, SOL, accounts={"position": Pubkey.new_unique()}), 2006)


def test_sell_checks_before_the_payout(active: Scenario) -> None:
    assert active.buy("alice", True, 10 * SOL).ok
    held = active.ledger.decode("UserPosition", position_pda(active.market, key("alice")))
    shares = held["shares_yes"]
    fails(active.sell("alice", True, shares + 1), 6014)
    fails(active.sell("alice", False, 1), 6014)
    fails(active.sell("alice", True, 1_000), 6018)
    fails(active.sell("alice", True, shares // 2, minimum=10 * SOL), 6015)
    fails(active.sell("bob", True, 1), 3012)  # bob has no position
    theirs = {"position": position_pda(active.market, key("alice"))}
    fails(active.sell("bob", True, 1, accounts=theirs), 2006)
    result = active.sell("alice", True, shares // 20)
    assert not result.ok and "PrivilegeEscalation" in (result.error or "")


def test_sell_position_owner_and_liquidity(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    scenario.open_market(liquidity=1)
    assert scenario.buy("alice", True, 10 * SOL).ok
    position = position_pda(scenario.market, key("alice"))
    shares = scenario.ledger.decode("UserPosition", position)["shares_yes"]
    fails(scenario.sell("alice", True, shares), 6016)  # current_liquidity < payout
    data = bytearray(scenario.ledger.data(position))
    data[40:72] = bytes(key("bob"))
    set_account(scenario, position, data=bytes(data))
    fails(scenario.sell("alice", True, 10**8), 6029)


def test_sell_payout_checks_market_lamports(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    scenario.open_market(liquidity=1_000 * SOL)
    assert scenario.buy("alice", True, 10 * SOL).ok
    shares = scenario.ledger.decode("UserPosition", position_pda(scenario.market, key("alice")))[
        "shares_yes"
    ]
    market = market_state(scenario)
    gross = model.sell(market["shares_yes"], market["shares_no"], 100 * SOL, True, shares)
    net = gross - model.fee_split(gross, 300, 200, 500).total
    set_account(scenario, scenario.market, lamports=net + MARKET_RENT - 1)
    fails(scenario.sell("alice", True, shares), 6047)
    set_account(scenario, scenario.market, lamports=net - 1)
    fails(scenario.sell("alice", True, shares), 6046)


def test_new_fee_wallet_below_rent_fails_the_transaction(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    fresh = Pubkey.new_unique()
    assert scenario.initialize(fee_wallet=fresh).ok
    for result in (
        scenario.create(),
        scenario.aggregate("proposal", 7, 3),
        scenario.admin_action("approve_proposal"),
        scenario.admin_action("activate_market"),
    ):
        assert result.ok
    accounts = {"protocol_fee_wallet": fresh}
    result = scenario.buy("alice", True, 10_000_000, accounts=accounts)  # fee 272 460 < 890 880
    assert not result.ok and "InsufficientFundsForRent" in (result.error or "")
    assert scenario.buy("alice", True, 100 * SOL, accounts=accounts).ok


# ------------------------------------------------------------------ resolution and payouts


@pytest.fixture
def resolving(active: Scenario) -> Scenario:
    assert active.buy("alice", True, 10 * SOL).ok
    assert active.buy("bob", False, 5 * SOL).ok
    assert active.resolve(outcome=True).ok
    return active


def test_resolution_window_checks(active: Scenario) -> None:
    fails(active.resolve(tick=0), 6044)  # same second as the activation
    fails(active.dispute(), 6007)
    fails(active.finalize(), 6007)
    fails(active.resolve(overrides={"resolver": (True, False)}), 2000)
    assert active.resolve().ok
    fails(active.dispute(tick=0), 6044)
    fails(active.finalize(tick=0), 6044)
    fails(active.resolve(), 6007)
    fails(active.finalize(signer="admin"), 6029)
    fails(active.finalize(), 6027)  # Resolving waits for the whole dispute period
    fails(active.withdraw(), 6007)


def test_finalize_disputed_needs_votes(resolving: Scenario) -> None:
    assert resolving.dispute().ok
    fails(resolving.finalize(0, 0), 6024)
    fails(resolving.finalize(2**32 - 1, 1), 6033)
    assert resolving.finalize(4, 6).ok  # 40 % < 60 %: the proposal stands
    state = market_state(resolving)
    assert state["final_outcome"] is True and state["was_disputed"] is True


def test_claims_and_withdraw(resolving: Scenario) -> None:
    resolving.tick(259_200)
    assert resolving.finalize().ok
    fails(resolving.claim("bob"), 6023)  # NO lost
    fails(resolving.claim("alice", resolver="outsider"), 6031)
    fails(resolving.claim("alice", overrides={"resolver": (False, False)}), 2000)
    fails(resolving.claim("carol"), 3012)
    market = market_state(resolving)
    before = resolving.ledger.lamports(key("resolver"))
    result = resolving.claim("alice")
    assert result.ok
    assert (
        resolving.ledger.lamports(key("resolver")) - before == market["accumulated_resolver_fees"]
    )
    fails(resolving.claim("alice"), 6022)
    fails(resolving.withdraw(creator="alice"), 6029)
    assert resolving.withdraw().ok
    assert resolving.ledger.lamports(resolving.market) == MARKET_RENT + 10_000
    fails(resolving.withdraw(), 6016)


def test_claim_checks_market_lamports(resolving: Scenario) -> None:
    resolving.tick(259_200)
    assert resolving.finalize().ok
    set_account(resolving, resolving.market, lamports=MARKET_RENT + 1)
    fails(resolving.claim("alice"), 6016)
    position = position_pda(resolving.market, key("alice"))
    data = bytearray(resolving.ledger.data(position))
    data[40:72] = bytes(key("bob"))
    set_account(resolving, position, data=bytes(data))
    fails(resolving.claim("alice"), 2001)


def test_claim_would_break_rent(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    scenario.open_market(liquidity=1_000 * SOL)  # pays out far more than the market holds
    assert scenario.buy("alice", True, 10 * SOL).ok
    assert scenario.resolve().ok
    scenario.tick(259_200)
    assert scenario.finalize().ok
    fails(scenario.claim("alice"), 6016)
    market = market_state(scenario)
    position = scenario.ledger.decode("UserPosition", position_pda(scenario.market, key("alice")))
    owed = position["shares_yes"] * market["current_liquidity"] // market["shares_yes"]
    lamports = owed + market["accumulated_resolver_fees"] + MARKET_RENT - 1
    set_account(scenario, scenario.market, lamports=lamports)
    fails(scenario.claim("alice"), 6047)


# ------------------------------------------------------------------ the runtime defect, both modes


def sell_setup(scenario: Scenario) -> int:
    scenario.open_market(liquidity=100 * SOL)
    assert scenario.buy("alice", True, 10 * SOL).ok
    return int(
        scenario.ledger.decode("UserPosition", position_pda(scenario.market, key("alice")))[
            "shares_yes"
        ]
    )


def test_sell_fails_with_privilege_escalation_as_deployed(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder)
    shares = sell_setup(scenario)
    before = scenario.ledger.data(scenario.market)
    result = scenario.sell("alice", True, shares // 2)
    assert not result.ok
    assert "PrivilegeEscalation" in (result.error or "")
    assert any("signer privilege escalated" in line for line in result.logs)
    assert scenario.ledger.data(scenario.market) == before


def test_sell_pays_out_in_fixed_mode(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder, fixed=True)
    shares = sell_setup(scenario)
    alice, wallet = key("alice"), key("protocol_wallet")
    market_before = market_state(scenario)
    balances = {a: scenario.ledger.lamports(a) for a in (alice, wallet, scenario.market)}
    result = scenario.sell("alice", True, shares // 2)
    assert result.ok, result.logs
    decoded = scenario.ledger.coder.decode_event(result.events[0])
    assert decoded is not None and decoded[0] == "SharesSold"
    net = decoded[1]["proceeds"]
    protocol_fee = scenario.ledger.lamports(wallet) - balances[wallet]
    assert scenario.ledger.lamports(alice) - balances[alice] == net
    assert (
        balances[scenario.market] - scenario.ledger.lamports(scenario.market) == net + protocol_fee
    )
    market = market_state(scenario)
    assert market["shares_yes"] == market_before["shares_yes"] - shares // 2
    assert market["current_liquidity"] == market_before["current_liquidity"] - net - protocol_fee
    assert market["is_locked"] is False
    position = scenario.ledger.decode("UserPosition", position_pda(scenario.market, alice))
    assert position["shares_yes"] == shares - shares // 2 and position["trades_count"] == 2


def test_fixed_mode_keeps_the_other_outcomes(chain_coder: IdlCoder) -> None:
    scenario = Scenario(chain_coder, fixed=True)
    shares = sell_setup(scenario)
    fails(scenario.sell("alice", True, shares + 1), 6014)
    set_account(scenario, scenario.market, lamports=MARKET_RENT + 1)
    fails(scenario.sell("alice", True, shares // 2), 6046)


def all_instructions(coder: IdlCoder) -> Iterator[str]:
    yield from coder.idl.instructions


def test_every_idl_instruction_is_dispatched(active: Scenario) -> None:
    """No instruction falls back to 101: each reaches its own checks."""
    for name in all_instructions(active.ledger.coder):
        data = active.ledger.coder.instruction_discriminator(name)
        result = active.ledger.send([Instruction(PROGRAM_ID, data, [])])
        assert result.custom_code in (102, 3005), name


def test_error_numbers_are_the_idl_errors_of_their_names(chain_coder: IdlCoder) -> None:
    """Every program error the twin can return (fixed.h) has zmart_core's number for its name,
    beyond the codes the golden sequences and the checks above happen to reach."""
    source = (PROGRAM_DIR / "fixed.h").read_text()
    table = {int(code): name for name, code in re.findall(r"#define E_(\w+) (\d+)", source)}
    assert len(table) > 30
    for code, name in table.items():
        camel = "".join(part.capitalize() for part in name.lower().split("_"))
        assert chain_coder.error_for_code(code).name in (camel, f"{camel}Error"), code
