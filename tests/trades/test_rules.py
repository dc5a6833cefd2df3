"""Trade transaction checks that the HTTP tests do not reach (pure)."""

from __future__ import annotations

import base64

import pytest
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from marketd.chain.idl import Idl, IdlCoder
from marketd.chain.program import BUNDLED_IDL
from marketd.trades.rules import TradeRejected, TradeType, parse_trade

CODER = IdlCoder(Idl.from_path(BUNDLED_IDL))
PROGRAM = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")


def encoded(signer: Keypair, data: bytes, accounts: int = 6, lookups: bool = False) -> str:
    metas = [AccountMeta(Keypair().pubkey(), False, True) for _ in range(accounts)]
    if accounts > 3:
        metas[3] = AccountMeta(signer.pubkey(), True, True)
    tables = (
        [AddressLookupTableAccount(Keypair().pubkey(), [Keypair().pubkey()])] if lookups else []
    )
    message = MessageV0.try_compile(
        signer.pubkey(), [Instruction(PROGRAM, data, metas)], tables, Hash.new_unique()
    )
    if lookups:
        extra = Instruction(PROGRAM, b"\x00", [AccountMeta(tables[0].addresses[0], False, True)])
        message = MessageV0.try_compile(
            signer.pubkey(), [Instruction(PROGRAM, data, metas), extra], tables, Hash.new_unique()
        )
    return base64.b64encode(bytes(VersionedTransaction(message, [signer]))).decode()


def reason(signer: Keypair, transaction: str) -> str:
    with pytest.raises(TradeRejected) as rejected:
        parse_trade(transaction, TradeType.BUY, CODER, PROGRAM, signer.pubkey())
    return rejected.value.reason


def test_v0_transactions_are_accepted_without_lookup_tables():
    signer = Keypair()
    data = CODER.encode_instruction("buy_shares", {"outcome": False, "target_cost": 9})
    intent = parse_trade(encoded(signer, data), TradeType.BUY, CODER, PROGRAM, signer.pubkey())
    assert (intent.outcome, intent.amount, intent.user) == (False, 9, signer.pubkey())


def test_rejections():
    signer = Keypair()
    good = CODER.encode_instruction("buy_shares", {"outcome": True, "target_cost": 1})
    assert reason(signer, encoded(signer, good, lookups=True)) == "lookup_tables"
    assert reason(signer, encoded(signer, good[:10])) == "bad_arguments"
    assert reason(signer, encoded(signer, good, accounts=4)) == "missing_accounts"
