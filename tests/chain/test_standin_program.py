"""The stand-in zmart_core program, run by LiteSVM and decoded with the REAL zmart_core IDL."""

from __future__ import annotations

import importlib.util
import json
import re
import runpy
import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rent import Rent

from marketd.chain.events import parse_program_events, program_error_from_logs
from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.localnet import build
from marketd.chain.localnet.build import ARTIFACT, PROGRAM_DIR, BuildError


def _load_helpers() -> ModuleType:
    """tests/ has no packages (importlib mode): load the sibling helper module by path."""
    path = Path(__file__).with_name("standin_helpers.py")
    spec = importlib.util.spec_from_file_location("standin_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


h = _load_helpers()
SOL = h.SOL
PRICE_ONE = 1_000_000_000
STANDIN_IDL = ARTIFACT.with_name("zmart_standin.idl.json")
B = 100 * SOL
LIQUIDITY = 10 * SOL
DISPUTE_PERIOD = 259_200


@pytest.fixture(scope="session")
def coder(zmart_idl_path: Path) -> IdlCoder:
    return IdlCoder(Idl.from_path(zmart_idl_path))


@pytest.fixture
def chain(coder: IdlCoder) -> Any:
    chain = h.StandinChain(coder)
    assert chain.initialize().ok
    return chain


def events(chain: Any, outcome: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, e.data) for e in parse_program_events(outcome.logs, h.PROGRAM_ID, chain.coder)]


def only_event(chain: Any, outcome: Any, name: str) -> dict[str, Any]:
    assert outcome.ok, outcome.logs
    found = events(chain, outcome)
    assert [n for n, _ in found] == [name]
    return found[0][1]


def assert_error(chain: Any, outcome: Any, name: str) -> None:
    """Failed with the IDL error `name`: code in the transaction error and in the Anchor log."""
    assert not outcome.ok, "expected a failure"
    error = program_error_from_logs(outcome.logs, h.PROGRAM_ID, chain.coder)
    assert error is not None, outcome.logs
    assert error.name == name, (error, outcome.logs)
    assert outcome.custom_code == error.code
    if error.code >= 6000:  # the program's own errors are in the IDL; Anchor's are not
        assert chain.coder.error_for_code(error.code).name == name


def new_market(chain: Any, creator: Keypair | None = None, seed: int = 7) -> tuple[Pubkey, Keypair]:
    creator = creator or chain.funded()
    market_id = bytes([seed]) * 32
    assert chain.create_market(creator, market_id, B, LIQUIDITY).ok
    return h.market_pda(market_id), creator


def approved_market(chain: Any, seed: int = 7) -> tuple[Pubkey, Keypair]:
    market, creator = new_market(chain, seed=seed)
    assert chain.aggregate("proposal", market, 8, 2).ok
    assert chain.admin_action("approve_proposal", market).ok
    return market, creator


def active_market(chain: Any, seed: int = 7) -> tuple[Pubkey, Keypair]:
    market, creator = approved_market(chain, seed)
    assert chain.admin_action("activate_market", market, creator).ok
    return market, creator


def resolving_market(chain: Any) -> tuple[Pubkey, Keypair]:
    market, creator = active_market(chain)
    assert chain.resolve(creator, market, True).ok
    return market, creator


def disputed_market(chain: Any) -> Pubkey:
    market, _ = resolving_market(chain)
    assert chain.dispute(chain.funded(), market).ok
    return market


def market_state(chain: Any, market: Pubkey) -> dict[str, Any]:
    state: dict[str, Any] = chain.decode("MarketAccount", market)
    return state


def without_signer(ix: Instruction, key: Pubkey) -> Instruction:
    metas = [
        AccountMeta(
            m.pubkey, is_signer=False if m.pubkey == key else m.is_signer, is_writable=m.is_writable
        )
        for m in ix.accounts
    ]
    return Instruction(ix.program_id, ix.data, metas)


def expected_price_yes(shares_yes: int, shares_no: int, b: int = B) -> int:
    price = (shares_yes + b) * PRICE_ONE // (shares_yes + shares_no + 2 * b)
    return min(max(price, 1), PRICE_ONE - 1)


# ------------------------------------------------------------------ the build and the IDL


def test_committed_artifact_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    assert build.main(["--check"]) == 0
    assert build.build_program(tmp_path) == ARTIFACT.read_bytes()
    assert (tmp_path / "zmart_standin.so").read_bytes() == ARTIFACT.read_bytes()


def test_check_reports_a_stale_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.so"
    assert build.main(["--output", str(output)]) == 0
    assert output.read_bytes() == ARTIFACT.read_bytes()
    assert build.main(["--check", "--output", str(output)]) == 0
    output.write_bytes(output.read_bytes() + b"\0")
    assert build.main(["--check", "--output", str(output)]) == 1
    assert build.main(["--check", "--output", str(tmp_path / "missing.so")]) == 1
    assert "is stale" in capsys.readouterr().out


def test_build_fails_cleanly_without_clang(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(build.CLANG_ENV, "clang-does-not-exist")
    with pytest.raises(BuildError, match=r"install-clang\.sh"):
        build.find_clang()
    assert build.main(["--check"]) == 2
    assert "not found" in capsys.readouterr().err


def test_compile_errors_surface(tmp_path: Path) -> None:
    (tmp_path / "zmart_standin.c").write_text("this is not C\n")
    with pytest.raises(BuildError, match="clang failed"):
        build.build_program(tmp_path, source_dir=tmp_path)


def test_module_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["build", "--check"])
    monkeypatch.delitem(sys.modules, "marketd.chain.localnet.build")
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("marketd.chain.localnet.build", run_name="__main__")
    assert exit_info.value.code == 0


def _strip_docs(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_docs(v) for k, v in value.items() if k != "docs"}
    if isinstance(value, list):
        return [_strip_docs(v) for v in value]
    return value


def test_bundled_idl_is_an_exact_subset_of_the_real_one(zmart_idl_path: Path) -> None:
    real = json.loads(zmart_idl_path.read_text())
    mine = json.loads(STANDIN_IDL.read_text())
    assert mine["address"] == real["address"] == str(h.PROGRAM_ID)
    for section in ("instructions", "accounts", "events", "types", "errors"):
        by_key = {(e.get("name"), e.get("code")): _strip_docs(e) for e in real[section]}
        for entry in mine[section]:
            assert by_key[(entry.get("name"), entry.get("code"))] == entry, entry
    assert len(mine["instructions"]) == 14
    idl = Idl.from_path(STANDIN_IDL)
    assert idl.program_id == h.PROGRAM_ID
    assert set(idl.events) == {e["name"] for e in mine["events"]}


def test_program_error_table_matches_the_idl(zmart_idl_path: Path) -> None:
    source = (PROGRAM_DIR / "errors.h").read_text()
    table = {
        int(code): (name, message)
        for name, code, message in re.findall(r'X\((\w+), (\d+),[\s\\]*"([^"]*)"\)', source)
    }
    custom = {code: entry for code, entry in table.items() if code >= 6000}
    real = {
        e["code"]: (e["name"], e["msg"]) for e in json.loads(zmart_idl_path.read_text())["errors"]
    }
    bundled = {
        e["code"]: (e["name"], e["msg"]) for e in json.loads(STANDIN_IDL.read_text())["errors"]
    }
    assert custom and all(real[code] == entry for code, entry in custom.items())
    assert bundled == custom
    assert {table[101][0], table[102][0], table[3005][0]} == {
        "InstructionFallbackNotFound",
        "InstructionDidNotDeserialize",
        "AccountNotEnoughKeys",
    }


# ------------------------------------------------------------------ initialize_global_config


def test_initialize_global_config(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    outcome = chain.initialize()
    event = only_event(chain, outcome, "GlobalConfigInitialized")
    assert event == {
        "admin": chain.admin.pubkey(),
        "backend_authority": chain.backend.pubkey(),
        "protocol_fee_bps": 300,
        "timestamp": h.START_TIME,
    }
    data = chain.account_data(h.config_pda())
    assert len(data) == 198
    config = coder.decode_account("GlobalConfig", data)
    assert config["admin"] == chain.admin.pubkey()
    assert config["backend_authority"] == chain.backend.pubkey()
    assert config["protocol_fee_wallet"] == chain.fee_wallet.pubkey()
    assert (config["proposal_approval_threshold"], config["dispute_success_threshold"]) == (
        7000,
        6000,
    )
    assert (config["min_resolution_delay"], config["dispute_period"]) == (86_400, DISPUTE_PERIOD)
    assert config["bump"] == Pubkey.find_program_address([b"global-config"], h.PROGRAM_ID)[1]
    account = chain.svm.get_account(h.config_pda())
    assert account.owner == h.PROGRAM_ID
    assert account.lamports >= chain.svm.minimum_balance_for_rent_exemption(198)
    assert outcome.compute_units < 10_000


def test_initialize_twice_fails(chain: Any) -> None:
    assert_error(chain, chain.initialize(), "AlreadyInitialized")


def test_initialize_requires_the_canonical_pda(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    outcome = chain.send(
        "initialize_global_config",
        {"backend_authority": chain.backend.pubkey()},
        {
            "admin": chain.admin.pubkey(),
            "global_config": Pubkey.new_unique(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
        [chain.admin],
    )
    assert_error(chain, outcome, "InvalidGlobalConfig")


def test_initialize_requires_the_system_program(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    outcome = chain.send(
        "initialize_global_config",
        {"backend_authority": chain.backend.pubkey()},
        {
            "admin": chain.admin.pubkey(),
            "global_config": h.config_pda(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
            "system_program": Pubkey.new_unique(),
        },
        [chain.admin],
    )
    assert_error(chain, outcome, "InvalidInput")


def test_initialize_requires_the_admin_signature(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    payer = chain.funded()
    ix = chain.instruction(
        "initialize_global_config",
        {"backend_authority": chain.backend.pubkey()},
        {
            "admin": chain.admin.pubkey(),
            "global_config": h.config_pda(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
    )
    outcome = chain.send_instructions([without_signer(ix, chain.admin.pubkey())], [payer])
    assert_error(chain, outcome, "Unauthorized")


def test_duplicate_account_entries_are_resolved(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    outcome = chain.send(
        "initialize_global_config",
        {"backend_authority": chain.backend.pubkey()},
        {
            "admin": chain.admin.pubkey(),
            "global_config": h.config_pda(),
            "protocol_fee_wallet": chain.admin.pubkey(),
        },
        [chain.admin],
    )
    assert outcome.ok, outcome.logs
    assert (
        chain.decode("GlobalConfig", h.config_pda())["protocol_fee_wallet"] == chain.admin.pubkey()
    )


# ------------------------------------------------------------------ dispatch and framework errors


def test_unknown_and_malformed_instructions(chain: Any) -> None:
    payer = chain.funded()
    unknown = Instruction(h.PROGRAM_ID, bytes(8), [])
    assert_error(chain, chain.send_instructions([unknown], [payer]), "InstructionFallbackNotFound")
    short = Instruction(h.PROGRAM_ID, b"\x01", [])
    assert_error(chain, chain.send_instructions([short], [payer]), "InstructionFallbackNotFound")
    claim = Instruction(
        h.PROGRAM_ID, bytes(chain.coder.instruction_discriminator("claim_winnings")), []
    )
    assert_error(chain, chain.send_instructions([claim], [payer]), "InstructionFallbackNotFound")


def test_missing_accounts_and_truncated_args(chain: Any) -> None:
    market, _ = new_market(chain)
    payer = chain.funded()
    for name in (
        "initialize_global_config",
        "create_market",
        "submit_proposal_vote",
        "aggregate_proposal_votes",
        "approve_proposal",
        "activate_market",
        "buy_shares",
        "sell_shares",
        "resolve_market",
        "initiate_dispute",
        "finalize_market",
        "cancel_market",
    ):
        data = bytes(chain.coder.instruction_discriminator(name)) + bytes(64)
        ix = Instruction(h.PROGRAM_ID, data, [AccountMeta(market, False, False)])
        assert_error(chain, chain.send_instructions([ix], [payer]), "AccountNotEnoughKeys")
    truncated = chain.instruction(
        "buy_shares",
        {"outcome": True, "target_cost": SOL},
        {
            "global_config": h.config_pda(),
            "market": market,
            "position": h.position_pda(market, payer.pubkey()),
            "user": payer.pubkey(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
    )
    cut = Instruction(truncated.program_id, truncated.data[:12], truncated.accounts)
    assert_error(chain, chain.send_instructions([cut], [payer]), "InstructionDidNotDeserialize")
    bad_bool = Instruction(
        truncated.program_id, truncated.data[:8] + b"\x02" + truncated.data[9:], truncated.accounts
    )
    assert_error(
        chain, chain.send_instructions([bad_bool], [payer]), "InstructionDidNotDeserialize"
    )


def test_too_many_accounts(chain: Any) -> None:
    payer = chain.funded()
    data = bytes(chain.coder.instruction_discriminator("cancel_market"))
    metas = [AccountMeta(Pubkey.new_unique(), False, False) for _ in range(17)]
    outcome = chain.send_instructions([Instruction(h.PROGRAM_ID, data, metas)], [payer])
    assert_error(chain, outcome, "InvalidInput")


# ------------------------------------------------------------------ create_market


def test_create_market(chain: Any) -> None:
    creator = chain.funded()
    market_id = bytes(range(32))
    before = chain.lamports(creator.pubkey())
    outcome = chain.create_market(creator, market_id, B, LIQUIDITY)
    event = only_event(chain, outcome, "MarketCreated")
    assert event == {
        "market_id": market_id,
        "creator": creator.pubkey(),
        "b_parameter": B,
        "state": 0,
        "timestamp": h.START_TIME,
    }
    market = h.market_pda(market_id)
    data = chain.account_data(market)
    assert len(data) == 483
    state = chain.coder.decode_account("MarketAccount", data, allow_trailing=True)
    assert state["state"] == "Proposed"
    assert state["market_id"] == market_id
    assert (state["b_parameter"], state["initial_liquidity"], state["current_liquidity"]) == (
        B,
        LIQUIDITY,
        LIQUIDITY,
    )
    assert state["created_at"] == h.START_TIME
    assert state["proposed_outcome"] is None and state["cancelled_at"] is None
    assert state["bump"] == Pubkey.find_program_address([b"market", market_id], h.PROGRAM_ID)[1]
    rent = chain.svm.minimum_balance_for_rent_exemption(483)
    assert rent <= chain.lamports(market) - LIQUIDITY <= rent + 1
    assert before - chain.lamports(creator.pubkey()) == chain.lamports(market) + 5000
    assert outcome.compute_units < 15_000


def test_create_market_rules(chain: Any) -> None:
    creator = chain.funded()
    assert_error(chain, chain.create_market(creator, bytes(32), 0, LIQUIDITY), "InvalidBParameter")
    wrong_address = chain.send(
        "create_market",
        {
            "market_id": bytes(32),
            "b_parameter": B,
            "initial_liquidity": 0,
            "ipfs_question_hash": bytes(46),
        },
        {
            "creator": creator.pubkey(),
            "market": h.market_pda(bytes([1]) * 32),
            "global_config": h.config_pda(),
        },
        [creator],
    )
    assert_error(chain, wrong_address, "InvalidMarketId")
    assert chain.create_market(creator, bytes(32)).ok
    again = chain.create_market(creator, bytes(32))
    assert not again.ok and again.custom_code == 0  # the system program: account already in use
    payer = chain.funded()
    ix = chain.instruction(
        "create_market",
        {
            "market_id": bytes([9]) * 32,
            "b_parameter": B,
            "initial_liquidity": 0,
            "ipfs_question_hash": bytes(46),
        },
        {
            "creator": creator.pubkey(),
            "market": h.market_pda(bytes([9]) * 32),
            "global_config": h.config_pda(),
        },
    )
    assert_error(
        chain,
        chain.send_instructions([without_signer(ix, creator.pubkey())], [payer]),
        "Unauthorized",
    )
    wrong_system = chain.send(
        "create_market",
        {
            "market_id": bytes([8]) * 32,
            "b_parameter": B,
            "initial_liquidity": 0,
            "ipfs_question_hash": bytes(46),
        },
        {
            "creator": creator.pubkey(),
            "market": h.market_pda(bytes([8]) * 32),
            "global_config": h.config_pda(),
            "system_program": Pubkey.new_unique(),
        },
        [creator],
    )
    assert_error(chain, wrong_system, "InvalidInput")


def test_create_market_needs_an_initialized_config(coder: IdlCoder) -> None:
    chain = h.StandinChain(coder)
    assert_error(chain, chain.create_market(chain.funded(), bytes(32)), "InvalidGlobalConfig")


def test_paused_protocol_stops_markets_and_trading(chain: Any) -> None:
    market, creator = active_market(chain)
    account = chain.svm.get_account(h.config_pda())
    data = bytearray(account.data)
    data[132] = 1  # GlobalConfig.is_paused
    chain.svm.set_account(
        h.config_pda(), Account(account.lamports, bytes(data), account.owner, False, 0)
    )
    assert chain.decode("GlobalConfig", h.config_pda())["is_paused"] is True
    assert_error(chain, chain.create_market(creator, bytes([3]) * 32), "ProtocolPaused")
    assert_error(chain, chain.trade("buy", chain.funded(), market, True, SOL), "ProtocolPaused")
    assert_error(chain, chain.resolve(creator, market, True), "ProtocolPaused")


# ------------------------------------------------------------------ votes


def test_proposal_vote(chain: Any) -> None:
    market, _ = new_market(chain)
    voter = chain.funded()
    outcome = chain.vote("proposal", voter, market, True)
    event = only_event(chain, outcome, "ProposalVoteSubmitted")
    assert event == {
        "market_id": bytes([7]) * 32,
        "user": voter.pubkey(),
        "vote": True,
        "timestamp": h.START_TIME,
    }
    record_address = h.vote_pda(market, voter.pubkey(), 0)
    data = chain.account_data(record_address)
    assert len(data) == 83
    record = chain.coder.decode_account("VoteRecord", data)
    assert record == {
        "market": market,
        "user": voter.pubkey(),
        "vote_type": "Proposal",
        "vote": True,
        "voted_at": h.START_TIME,
        "bump": Pubkey.find_program_address(
            [b"vote", bytes(market), bytes(voter.pubkey()), b"\x00"], h.PROGRAM_ID
        )[1],
    }
    assert outcome.compute_units < 15_000
    assert_error(chain, chain.vote("proposal", voter, market, False), "AlreadyVoted")


def test_vote_rules(chain: Any) -> None:
    market, _ = new_market(chain)
    voter = chain.funded()
    assert_error(chain, chain.vote("dispute", voter, market, True), "InvalidStateForVoting")
    wrong_record = chain.send(
        "submit_proposal_vote",
        {"vote": True},
        {
            "market": market,
            "vote_record": h.vote_pda(market, voter.pubkey(), 1),
            "user": voter.pubkey(),
        },
        [voter],
    )
    assert_error(chain, wrong_record, "InvalidInput")
    not_a_market = chain.vote("proposal", voter, h.config_pda(), True)
    assert_error(chain, not_a_market, "InvalidMarketId")
    payer = chain.funded()
    ix = chain.instruction(
        "submit_proposal_vote",
        {"vote": True},
        {
            "market": market,
            "vote_record": h.vote_pda(market, voter.pubkey(), 0),
            "user": voter.pubkey(),
        },
    )
    assert_error(
        chain,
        chain.send_instructions([without_signer(ix, voter.pubkey())], [payer]),
        "Unauthorized",
    )
    wrong_system = chain.send(
        "submit_proposal_vote",
        {"vote": True},
        {
            "market": market,
            "vote_record": h.vote_pda(market, voter.pubkey(), 0),
            "user": voter.pubkey(),
            "system_program": Pubkey.new_unique(),
        },
        [voter],
    )
    assert_error(chain, wrong_system, "InvalidInput")


def test_dispute_vote(chain: Any) -> None:
    market = disputed_market(chain)
    voter = chain.funded()
    outcome = chain.vote("dispute", voter, market, False)
    assert only_event(chain, outcome, "DisputeVoteSubmitted")["vote"] is False
    record = chain.decode("VoteRecord", h.vote_pda(market, voter.pubkey(), 1))
    assert (record["vote_type"], record["vote"]) == ("Dispute", False)
    assert_error(chain, chain.vote("proposal", voter, market, True), "InvalidStateForVoting")


# ------------------------------------------------------------------ aggregation, approval


def test_aggregate_proposal_votes_records_without_changing_state(chain: Any) -> None:
    market, _ = new_market(chain)
    event = only_event(chain, chain.aggregate("proposal", market, 7, 3), "ProposalAggregated")
    assert event == {
        "market_id": bytes([7]) * 32,
        "likes": 7,
        "dislikes": 3,
        "approval_percentage": 70,
        "approved": True,  # 7 * 10000 >= 7000 * 10
        "timestamp": h.START_TIME,
    }
    state = market_state(chain, market)
    assert (state["proposal_likes"], state["proposal_dislikes"], state["proposal_total_votes"]) == (
        7,
        3,
        10,
    )
    assert state["state"] == "Proposed"
    below = only_event(chain, chain.aggregate("proposal", market, 69, 31), "ProposalAggregated")
    assert (below["approval_percentage"], below["approved"]) == (69, False)
    none = only_event(chain, chain.aggregate("proposal", market, 0, 0), "ProposalAggregated")
    assert (none["approval_percentage"], none["approved"]) == (0, False)


def test_aggregate_rules(chain: Any) -> None:
    market, _ = new_market(chain)
    assert_error(
        chain, chain.aggregate("proposal", market, 1, 0, signer=chain.admin), "Unauthorized"
    )
    assert_error(chain, chain.aggregate("dispute", market, 1, 0), "InvalidStateForVoting")
    assert_error(chain, chain.aggregate("proposal", market, 2**32 - 1, 1), "OverflowError")
    assert_error(chain, chain.aggregate("proposal", h.config_pda(), 1, 0), "InvalidMarketId")
    bad_config = chain.send(
        "aggregate_proposal_votes",
        {"final_likes": 1, "final_dislikes": 0},
        {"market": market, "global_config": market, "backend_authority": chain.backend.pubkey()},
        [chain.backend],
    )
    assert_error(chain, bad_config, "InvalidGlobalConfig")


def test_approve_proposal(chain: Any) -> None:
    market, _ = new_market(chain)
    assert_error(chain, chain.admin_action("approve_proposal", market), "NoVotesRecorded")
    assert chain.aggregate("proposal", market, 6, 4).ok
    assert_error(chain, chain.admin_action("approve_proposal", market), "InsufficientVotes")
    assert chain.aggregate("proposal", market, 8, 2).ok
    assert_error(
        chain, chain.admin_action("approve_proposal", market, chain.backend), "Unauthorized"
    )
    chain.set_time(h.START_TIME + 60)
    event = only_event(chain, chain.admin_action("approve_proposal", market), "ProposalApproved")
    assert event == {
        "market_id": bytes([7]) * 32,
        "approved_by": chain.admin.pubkey(),
        "timestamp": h.START_TIME + 60,
    }
    state = market_state(chain, market)
    assert (state["state"], state["approved_at"]) == ("Approved", h.START_TIME + 60)
    assert_error(chain, chain.admin_action("approve_proposal", market), "InvalidStateTransition")
    assert_error(chain, chain.admin_action("approve_proposal", h.config_pda()), "InvalidMarketId")


def test_aggregate_and_approve_in_one_transaction(chain: Any) -> None:
    market, _ = new_market(chain)
    aggregate = chain.instruction(
        "aggregate_proposal_votes",
        {"final_likes": 9, "final_dislikes": 1},
        {
            "market": market,
            "global_config": h.config_pda(),
            "backend_authority": chain.backend.pubkey(),
        },
    )
    approve = chain.instruction(
        "approve_proposal",
        {},
        {"admin": chain.admin.pubkey(), "market": market, "global_config": h.config_pda()},
    )
    outcome = chain.send_instructions([aggregate, approve], [chain.admin, chain.backend])
    assert [name for name, _ in events(chain, outcome)] == [
        "ProposalAggregated",
        "ProposalApproved",
    ]
    assert market_state(chain, market)["state"] == "Approved"


def test_activate_market(chain: Any) -> None:
    market, creator = new_market(chain)
    assert_error(
        chain, chain.admin_action("activate_market", market, creator), "InvalidStateTransition"
    )
    assert chain.aggregate("proposal", market, 10, 0).ok
    assert chain.admin_action("approve_proposal", market).ok
    assert_error(
        chain, chain.admin_action("activate_market", market, chain.funded()), "Unauthorized"
    )
    event = only_event(
        chain, chain.admin_action("activate_market", market, creator), "MarketActivated"
    )
    assert event == {
        "market_id": bytes([7]) * 32,
        "creator": creator.pubkey(),
        "initial_liquidity": LIQUIDITY,
        "timestamp": h.START_TIME,
    }
    assert market_state(chain, market)["state"] == "Active"
    other, _ = approved_market(chain, seed=8)
    assert chain.admin_action("activate_market", other, chain.admin).ok  # the admin may too
    assert_error(
        chain, chain.admin_action("activate_market", h.config_pda(), creator), "InvalidMarketId"
    )


def test_cancel_market(chain: Any) -> None:
    market, _ = new_market(chain)
    assert_error(chain, chain.admin_action("cancel_market", market, chain.backend), "Unauthorized")
    chain.set_time(h.START_TIME + 5)
    event = only_event(chain, chain.admin_action("cancel_market", market), "MarketCancelled")
    assert event == {
        "market_id": bytes([7]) * 32,
        "cancelled_by": chain.admin.pubkey(),
        "cancelled_at": h.START_TIME + 5,
    }
    state = market_state(chain, market)
    assert (state["state"], state["is_cancelled"], state["cancelled_at"]) == (
        "Cancelled",
        True,
        h.START_TIME + 5,
    )
    assert_error(chain, chain.admin_action("cancel_market", market), "MarketAlreadyCancelled")
    approved, _ = approved_market(chain, seed=8)
    assert chain.admin_action("cancel_market", approved).ok
    active, _ = active_market(chain, seed=9)
    assert_error(chain, chain.admin_action("cancel_market", active), "CannotCancelMarket")
    assert_error(chain, chain.admin_action("cancel_market", h.config_pda()), "InvalidMarketId")


# ------------------------------------------------------------------ trading


def test_buy_shares(chain: Any) -> None:
    market, _ = active_market(chain)
    trader = chain.funded()
    before = {k: chain.lamports(k) for k in (trader.pubkey(), market, chain.fee_wallet.pubkey())}
    outcome = chain.trade("buy", trader, market, True, SOL)
    event = only_event(chain, outcome, "SharesBought")
    shares, cost = event["shares"], event["cost"]
    y, a = B, B  # both outcomes start at b
    assert 0 < cost <= SOL
    assert cost == -(-shares * (y + shares) // (y + shares + a))  # charged at the post-trade price
    assert (shares + 1) * (y + shares + 1) > SOL * (
        y + shares + 1 + a
    )  # and it is the most the budget buys
    assert event["new_price_yes"] == expected_price_yes(shares, 0)
    assert (event["user"], event["outcome"]) == (trader.pubkey(), True)
    protocol, resolver, lp = cost * 300 // 10_000, cost * 200 // 10_000, cost * 500 // 10_000
    position_address = h.position_pda(market, trader.pubkey())
    position_rent = chain.lamports(position_address)
    assert chain.lamports(market) - before[market] == cost + resolver + lp
    assert chain.lamports(chain.fee_wallet.pubkey()) - before[chain.fee_wallet.pubkey()] == protocol
    spent = before[trader.pubkey()] - chain.lamports(trader.pubkey())
    assert spent == cost + protocol + resolver + lp + position_rent + 5000
    data = chain.account_data(position_address)
    assert len(data) == 182
    position = chain.coder.decode_account("UserPosition", data)
    assert (position["market"], position["user"]) == (market, trader.pubkey())
    assert (position["shares_yes"], position["shares_no"]) == (shares, 0)
    assert position["total_invested"] == cost + protocol + resolver + lp
    assert (position["trades_count"], position["last_trade_at"]) == (1, h.START_TIME)
    state = market_state(chain, market)
    assert (state["shares_yes"], state["current_liquidity"], state["total_volume"]) == (
        shares,
        LIQUIDITY + cost,
        cost,
    )
    assert (
        state["accumulated_protocol_fees"],
        state["accumulated_resolver_fees"],
        state["accumulated_lp_fees"],
    ) == (
        protocol,
        resolver,
        lp,
    )
    assert outcome.compute_units < 40_000
    second = chain.trade("buy", trader, market, False, SOL)
    assert second.ok and second.compute_units < 30_000
    assert chain.decode("UserPosition", position_address)["trades_count"] == 2


def test_prices_are_monotonic_and_complementary(chain: Any) -> None:
    market, _ = active_market(chain)
    trader = chain.funded(1_000 * SOL)
    prices = []
    for _ in range(6):
        prices.append(
            only_event(chain, chain.trade("buy", trader, market, True, 20 * SOL), "SharesBought")[
                "new_price_yes"
            ]
        )
    assert prices == sorted(prices) and len(set(prices)) == len(prices)
    for _ in range(12):
        prices.append(
            only_event(chain, chain.trade("buy", trader, market, False, 20 * SOL), "SharesBought")[
                "new_price_yes"
            ]
        )
    falling = prices[5:]
    assert falling == sorted(falling, reverse=True) and len(set(falling)) == len(falling)
    state = market_state(chain, market)
    assert prices[-1] == expected_price_yes(state["shares_yes"], state["shares_no"])
    for price in prices:
        price_no = PRICE_ONE - price
        assert 0 < price < PRICE_ONE and 0 < price_no < PRICE_ONE
        assert price + price_no == PRICE_ONE
    sold = only_event(chain, chain.trade("sell", trader, market, False, 10 * SOL), "SharesSold")
    assert sold["new_price_yes"] > prices[-1]


def test_sell_shares(chain: Any) -> None:
    market, _ = active_market(chain)
    trader = chain.funded()
    bought = only_event(chain, chain.trade("buy", trader, market, True, 2 * SOL), "SharesBought")
    before = {k: chain.lamports(k) for k in (trader.pubkey(), market, chain.fee_wallet.pubkey())}
    to_sell = bought["shares"] // 2
    outcome = chain.trade("sell", trader, market, True, to_sell)
    event = only_event(chain, outcome, "SharesSold")
    y, a = B + bought["shares"], B
    gross = to_sell * (y - to_sell) // (y - to_sell + a)
    protocol, resolver, lp = gross * 300 // 10_000, gross * 200 // 10_000, gross * 500 // 10_000
    assert event["proceeds"] == gross - protocol - resolver - lp
    assert event["new_price_yes"] == expected_price_yes(bought["shares"] - to_sell, 0)
    assert event["new_price_yes"] < bought["new_price_yes"]
    assert chain.lamports(trader.pubkey()) - before[trader.pubkey()] == event["proceeds"] - 5000
    assert before[market] - chain.lamports(market) == event["proceeds"] + protocol
    assert chain.lamports(chain.fee_wallet.pubkey()) - before[chain.fee_wallet.pubkey()] == protocol
    position = chain.decode("UserPosition", h.position_pda(market, trader.pubkey()))
    assert (position["shares_yes"], position["trades_count"]) == (bought["shares"] - to_sell, 2)
    state = market_state(chain, market)
    assert state["shares_yes"] == bought["shares"] - to_sell
    assert state["current_liquidity"] == LIQUIDITY + bought["cost"] - gross
    assert outcome.compute_units < 20_000


def test_round_trip_never_profits(chain: Any) -> None:
    market, _ = active_market(chain)
    trader = chain.funded()
    bought = only_event(chain, chain.trade("buy", trader, market, False, 5 * SOL), "SharesBought")
    sold = only_event(
        chain, chain.trade("sell", trader, market, False, bought["shares"]), "SharesSold"
    )
    assert sold["proceeds"] < bought["cost"]
    assert sold["new_price_yes"] == PRICE_ONE // 2


def test_trading_rules(chain: Any) -> None:
    proposed, _ = new_market(chain, seed=3)
    trader = chain.funded()
    assert_error(chain, chain.trade("buy", trader, proposed, True, SOL), "InvalidMarketState")
    market, _ = active_market(chain)
    assert_error(chain, chain.trade("buy", trader, market, True, 0), "ZeroAmount")
    assert_error(chain, chain.trade("buy", trader, market, True, 9_999), "TradeTooSmall")
    assert_error(
        chain,
        chain.trade("buy", trader, market, True, SOL, fee_wallet=trader.pubkey()),
        "Unauthorized",
    )
    assert_error(chain, chain.trade("sell", trader, market, True, 1), "Unauthorized")  # no position
    bought = only_event(chain, chain.trade("buy", trader, market, True, SOL), "SharesBought")
    assert_error(chain, chain.trade("sell", trader, market, True, 0), "ZeroAmount")
    assert_error(
        chain, chain.trade("sell", trader, market, True, bought["shares"] + 1), "InsufficientShares"
    )
    assert_error(chain, chain.trade("sell", trader, market, False, 1), "InsufficientShares")
    assert_error(
        chain,
        chain.trade("sell", trader, market, True, bought["shares"], limit=SOL),
        "SlippageExceeded",
    )
    assert_error(chain, chain.trade("buy", trader, h.config_pda(), True, SOL), "InvalidMarketId")
    payer = chain.funded()
    ix = chain.instruction(
        "buy_shares",
        {"outcome": True, "target_cost": SOL},
        {
            "global_config": h.config_pda(),
            "market": market,
            "position": h.position_pda(market, trader.pubkey()),
            "user": trader.pubkey(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
    )
    assert_error(
        chain,
        chain.send_instructions([without_signer(ix, trader.pubkey())], [payer]),
        "Unauthorized",
    )
    wrong_position = chain.send(
        "buy_shares",
        {"outcome": True, "target_cost": SOL},
        {
            "global_config": h.config_pda(),
            "market": market,
            "position": h.position_pda(market, chain.admin.pubkey()),
            "user": payer.pubkey(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
        [payer],
    )
    assert_error(chain, wrong_position, "InvalidInput")
    someone_elses = chain.send(
        "buy_shares",
        {"outcome": True, "target_cost": SOL},
        {
            "global_config": h.config_pda(),
            "market": market,
            "position": h.position_pda(market, trader.pubkey()),
            "user": payer.pubkey(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
        },
        [payer],
    )
    assert_error(chain, someone_elses, "Unauthorized")
    wrong_system = chain.send(
        "buy_shares",
        {"outcome": True, "target_cost": SOL},
        {
            "global_config": h.config_pda(),
            "market": market,
            "position": h.position_pda(market, trader.pubkey()),
            "user": trader.pubkey(),
            "protocol_fee_wallet": chain.fee_wallet.pubkey(),
            "system_program": Pubkey.new_unique(),
        },
        [trader],
    )
    assert_error(chain, wrong_system, "InvalidInput")


def test_sell_cannot_drain_more_than_the_pool(chain: Any) -> None:
    market, _ = active_market(chain)
    trader = chain.funded()
    bought = only_event(chain, chain.trade("buy", trader, market, True, SOL), "SharesBought")
    account = chain.svm.get_account(market)
    state = chain.coder.decode_account("MarketAccount", account.data, allow_trailing=True)
    state["current_liquidity"] = 0
    data = chain.coder.encode_account("MarketAccount", state)
    data += bytes(len(account.data) - len(data))
    chain.svm.set_account(market, Account(account.lamports, data, account.owner, False, 0))
    assert_error(
        chain, chain.trade("sell", trader, market, True, bought["shares"]), "InsufficientLiquidity"
    )


def test_buy_overflow_is_reported(chain: Any) -> None:
    market, _ = active_market(chain)
    account = chain.svm.get_account(market)
    state = chain.coder.decode_account("MarketAccount", account.data, allow_trailing=True)
    state["shares_no"] = 2**64 - B  # shares_no + b no longer fits in u64
    data = chain.coder.encode_account("MarketAccount", state)
    data += bytes(len(account.data) - len(data))
    chain.svm.set_account(market, Account(account.lamports, data, account.owner, False, 0))
    assert_error(chain, chain.trade("buy", chain.funded(), market, True, SOL), "OverflowError")


# ------------------------------------------------------------------ resolve, dispute, finalize


def test_resolve_market(chain: Any) -> None:
    market, creator = active_market(chain)
    resolver = chain.funded()
    chain.set_time(h.START_TIME + 100)
    event = only_event(chain, chain.resolve(resolver, market, False), "MarketResolved")
    assert event == {
        "market_id": bytes([7]) * 32,
        "resolver": resolver.pubkey(),
        "outcome": False,
        "evidence_hash": b"E" * 46,
        "timestamp": h.START_TIME + 100,
    }
    state = market_state(chain, market)
    assert state["state"] == "Resolving"
    assert (state["resolver"], state["proposed_outcome"]) == (resolver.pubkey(), False)
    assert (state["ipfs_evidence_hash"], state["resolution_proposed_at"]) == (
        b"E" * 46,
        h.START_TIME + 100,
    )
    assert_error(chain, chain.resolve(creator, market, True), "InvalidStateTransition")
    approved, _ = approved_market(chain, seed=8)
    assert_error(chain, chain.resolve(creator, approved, True), "InvalidStateTransition")
    payer = chain.funded()
    ix = chain.instruction(
        "resolve_market",
        {"proposed_outcome": True, "ipfs_evidence_hash": bytes(46)},
        {"global_config": h.config_pda(), "market": approved, "resolver": creator.pubkey()},
    )
    assert_error(
        chain,
        chain.send_instructions([without_signer(ix, creator.pubkey())], [payer]),
        "Unauthorized",
    )
    assert_error(chain, chain.resolve(creator, h.config_pda(), True), "InvalidMarketId")


def test_initiate_dispute(chain: Any) -> None:
    market, _ = resolving_market(chain)
    initiator = chain.funded()
    chain.set_time(h.START_TIME + DISPUTE_PERIOD - 1)
    event = only_event(chain, chain.dispute(initiator, market), "DisputeInitiated")
    assert event == {
        "market_id": bytes([7]) * 32,
        "initiator": initiator.pubkey(),
        "disputed_outcome": True,
        "timestamp": h.START_TIME + DISPUTE_PERIOD - 1,
    }
    state = market_state(chain, market)
    assert (state["state"], state["was_disputed"], state["dispute_initiator"]) == (
        "Disputed",
        True,
        initiator.pubkey(),
    )
    assert_error(chain, chain.dispute(initiator, market), "AlreadyDisputed")
    payer = chain.funded()
    ix = chain.instruction(
        "initiate_dispute",
        {},
        {"global_config": h.config_pda(), "market": market, "initiator": initiator.pubkey()},
    )
    assert_error(
        chain,
        chain.send_instructions([without_signer(ix, initiator.pubkey())], [payer]),
        "Unauthorized",
    )
    assert_error(chain, chain.dispute(initiator, h.config_pda()), "InvalidMarketId")


def test_dispute_window_and_state(chain: Any) -> None:
    active, _ = active_market(chain, seed=8)
    assert_error(chain, chain.dispute(chain.funded(), active), "InvalidStateTransition")
    market, _ = resolving_market(chain)
    chain.set_time(h.START_TIME + DISPUTE_PERIOD)
    assert_error(chain, chain.dispute(chain.funded(), market), "DisputePeriodEnded")


def test_aggregate_dispute_votes(chain: Any) -> None:
    market = disputed_market(chain)
    event = only_event(chain, chain.aggregate("dispute", market, 6, 4), "DisputeAggregated")
    assert event == {
        "market_id": bytes([7]) * 32,
        "agrees": 6,
        "disagrees": 4,
        "agreement_percentage": 60,
        "dispute_succeeded": True,  # 6 * 10000 >= 6000 * 10
        "timestamp": h.START_TIME,
    }
    state = market_state(chain, market)
    assert (state["dispute_agree"], state["dispute_disagree"], state["dispute_total_votes"]) == (
        6,
        4,
        10,
    )
    assert state["state"] == "Disputed"
    lost = only_event(chain, chain.aggregate("dispute", market, 5, 5), "DisputeAggregated")
    assert lost["dispute_succeeded"] is False
    assert_error(
        chain, chain.aggregate("dispute", market, 1, 1, signer=chain.admin), "Unauthorized"
    )


def test_finalize_undisputed_market(chain: Any) -> None:
    market, _ = resolving_market(chain)
    assert_error(chain, chain.finalize(market), "DisputePeriodNotEnded")
    chain.set_time(h.START_TIME + DISPUTE_PERIOD)
    assert_error(chain, chain.finalize(market, 1, 0), "InvalidInput")
    assert_error(chain, chain.finalize(market, signer=chain.admin), "Unauthorized")
    event = only_event(chain, chain.finalize(market), "MarketFinalized")
    assert event == {
        "market_id": bytes([7]) * 32,
        "final_outcome": True,
        "was_disputed": False,
        "timestamp": h.START_TIME + DISPUTE_PERIOD,
    }
    state = market_state(chain, market)
    assert (state["state"], state["final_outcome"], state["finalized_at"]) == (
        "Finalized",
        True,
        h.START_TIME + DISPUTE_PERIOD,
    )
    assert_error(chain, chain.finalize(market), "InvalidStateTransition")
    assert_error(chain, chain.finalize(h.config_pda()), "InvalidMarketId")


@pytest.mark.parametrize(
    ("agree", "disagree", "final"), [(6, 4, False), (5, 5, True), (0, 0, True)]
)
def test_finalize_disputed_market(chain: Any, agree: int, disagree: int, final: bool) -> None:
    market = disputed_market(chain)  # proposed outcome: YES
    assert_error(chain, chain.finalize(market), "InvalidInput")
    assert_error(chain, chain.finalize(market, agree, None), "InvalidInput")
    event = only_event(chain, chain.finalize(market, agree, disagree), "MarketFinalized")
    assert (event["final_outcome"], event["was_disputed"]) == (final, True)
    state = market_state(chain, market)
    assert (state["state"], state["final_outcome"], state["proposed_outcome"]) == (
        "Finalized",
        final,
        True,
    )
    assert (state["dispute_agree"], state["dispute_disagree"]) == (agree, disagree)


def test_finalize_rejects_overflowing_counts_and_bad_options(chain: Any) -> None:
    market = disputed_market(chain)
    assert_error(chain, chain.finalize(market, 2**32 - 1, 1), "OverflowError")
    ix = chain.instruction(
        "finalize_market",
        {"dispute_agree": None, "dispute_disagree": None},
        {
            "global_config": h.config_pda(),
            "market": market,
            "backend_authority": chain.backend.pubkey(),
        },
    )
    bad = Instruction(ix.program_id, ix.data[:8] + b"\x02\x00", ix.accounts)
    assert_error(
        chain, chain.send_instructions([bad], [chain.backend]), "InstructionDidNotDeserialize"
    )
    active, _ = active_market(chain, seed=8)
    assert_error(chain, chain.finalize(active), "InvalidStateTransition")


def test_full_lifecycle_events_decode_in_order(chain: Any) -> None:
    """Every event the indexer consumes, from one market's life, decodes with the real IDL."""
    seen: list[str] = []

    def step(outcome: Any) -> None:
        assert outcome.ok, outcome.logs
        seen.extend(name for name, _ in events(chain, outcome))

    creator, voter, trader = chain.funded(), chain.funded(), chain.funded()
    step(chain.create_market(creator, bytes([5]) * 32))
    market = h.market_pda(bytes([5]) * 32)
    step(chain.vote("proposal", voter, market, True))
    step(chain.aggregate("proposal", market, 1, 0))
    step(chain.admin_action("approve_proposal", market))
    step(chain.admin_action("activate_market", market, creator))
    step(chain.trade("buy", trader, market, True, SOL))
    step(chain.trade("sell", trader, market, True, 1000))
    step(chain.resolve(trader, market, True))
    step(chain.dispute(voter, market))
    step(chain.vote("dispute", trader, market, False))
    step(chain.aggregate("dispute", market, 0, 1))
    step(chain.finalize(market, 0, 1))
    assert seen == [
        "MarketCreated",
        "ProposalVoteSubmitted",
        "ProposalAggregated",
        "ProposalApproved",
        "MarketActivated",
        "SharesBought",
        "SharesSold",
        "MarketResolved",
        "DisputeInitiated",
        "DisputeVoteSubmitted",
        "DisputeAggregated",
        "MarketFinalized",
    ]
    assert market_state(chain, market)["final_outcome"] is True


@pytest.mark.parametrize("threshold", [2.5, 0.75])
def test_accounts_are_rent_exempt_under_other_rent_parameters(
    coder: IdlCoder, threshold: float
) -> None:
    """The program decodes Rent.exemption_threshold (an f64) without an FPU."""
    chain = h.StandinChain(coder)
    chain.svm.set_rent(Rent.from_bytes(struct.pack("<Qdb", 3480, threshold, 50)))
    assert chain.initialize().ok
    creator = chain.funded()
    assert chain.create_market(creator, bytes(32), B, 0).ok
    for address, size in ((h.config_pda(), 198), (h.market_pda(bytes(32)), 483)):
        exact = int((128 + size) * 3480 * threshold)
        assert exact == chain.svm.minimum_balance_for_rent_exemption(size)
        assert exact <= chain.lamports(address) <= exact + 1
