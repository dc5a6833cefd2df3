"""The twin replays every instruction sequence of the golden vectors: same outcome or error,
same events byte for byte, same decoded accounts, same account bytes, same balances."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from solders.pubkey import Pubkey

from marketd.chain.idl import IdlCoder

from ..helpers.twin import (
    KEYS,
    VECTORS,
    Result,
    TwinLedger,
    address_of,
    run_step,
    sequence_by_name,
)


def check_error(result: Result, expected: dict[str, Any], where: str) -> None:
    assert not result.ok, f"{where}: succeeded, expected {expected}"
    kind = expected["type"]
    if kind in ("program", "anchor", "system_program"):
        assert result.custom_code == expected["code"], f"{where}: {result.error}"
        assert "InstructionError" in (result.error or ""), where
    elif kind == "runtime":
        assert expected["name"] in (result.error or ""), f"{where}: {result.error}"
    else:
        assert kind == "transaction", where
        assert expected["name"] in (result.error or ""), f"{where}: {result.error}"


def check_step(ledger: TwinLedger, step: dict[str, Any], result: Result, market: Pubkey) -> None:
    where = f"step {step['n']} {step['ix']}"
    expect = step["expect"]
    if expect["ok"]:
        assert result.ok, f"{where}: {result.error}\n" + "\n".join(result.logs)
        wanted = [base64.b64decode(event["data_b64"]) for event in expect["events"]]
        assert result.events == wanted, where
    else:
        check_error(result, expect["error"], where)
        assert result.events == [], where
    accounts = step["accounts"]
    if "market" in expect:
        assert ledger.decode("MarketAccount", market) == expect["market"], where
    if "market_data_hex" in expect:
        assert ledger.data(market).hex() == expect["market_data_hex"], where
    if "position" in expect:
        position = Pubkey.from_string(accounts["position"])
        assert ledger.decode("UserPosition", position) == expect["position"], where
    if "vote_record" in expect:
        record = Pubkey.from_string(accounts["vote_record"])
        assert ledger.decode("VoteRecord", record) == expect["vote_record"], where
    if "global_config" in expect:
        config = Pubkey.from_string(KEYS["global_config_pda"])
        assert ledger.decode("GlobalConfig", config) == expect["global_config"], where
    for name, lamports in expect.get("lamports_after", {}).items():
        address = market if name == "market" else address_of(name, step)
        assert ledger.lamports(address) == lamports, f"{where}: {name}"


def focus_markets(steps: list[dict[str, Any]]) -> list[Pubkey]:
    """The market each step's expectations mean: its own market account, else the next
    step's that names one (the vectors report the market a sequence is about to work on),
    else the last one named."""
    named = [step["accounts"].get("market") for step in steps]
    found: list[Pubkey] = []
    last = KEYS["market_pda"]
    for i, key in enumerate(named):
        following = next((k for k in named[i:] if k is not None), None)
        last = key or last
        found.append(Pubkey.from_string(following or last))
    return found


def replay(ledger: TwinLedger, name: str, check: bool) -> dict[str, Any]:
    sequence = sequence_by_name(name)
    if sequence.get("starts_after"):
        replay(ledger, sequence["starts_after"], check=False)
    for step, market in zip(sequence["steps"], focus_markets(sequence["steps"]), strict=True):
        result = run_step(ledger, step)
        if check:
            check_step(ledger, step, result, market)
    return sequence


@pytest.mark.parametrize("name", [s["name"] for s in VECTORS["sequences"]])
def test_sequence(chain_coder: IdlCoder, name: str) -> None:
    ledger = TwinLedger(chain_coder)
    sequence = replay(ledger, name, check=True)
    market = focus_markets(sequence["steps"])[-1]
    assert ledger.data(market).hex() == sequence["final_market_data_hex"]
