"""Drive the faithful twin (zmart_twin.so) in LiteSVM the way the golden vectors describe.

The vectors' actors are bare addresses (sha256 of a label): nobody holds their keys. The
twin's LiteSVM therefore runs without signature verification, and a separate funded key pays
the transaction fees, so the actors' balances move by exactly what the program moves."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solders.clock import Clock
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.build import TWIN, TWIN_FIXED

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "program" / "vectors.json").read_text()
)
KEYS: dict[str, str] = VECTORS["keys"]
PROGRAM_ID = Pubkey.from_string(KEYS["program_id"])
SOL = 1_000_000_000
ACTORS = (
    "admin",
    "backend",
    "protocol_wallet",
    "creator",
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "resolver",
    "outsider",
)
ENUM_INDEX = {
    "Proposed": 0,
    "Approved": 1,
    "Active": 2,
    "Resolving": 3,
    "Disputed": 4,
    "Finalized": 5,
    "Cancelled": 6,
    "Proposal": 0,
    "Dispute": 1,
}


@dataclass
class Result:
    ok: bool
    error: str | None
    custom_code: int | None
    compute_units: int
    logs: list[str]
    events: list[bytes] = field(default_factory=list)


def custom_code(err: Any) -> int | None:
    text = str(err)
    marker = "Custom("
    if marker not in text:
        return None
    start = text.index(marker) + len(marker)
    return int(text[start : text.index(")", start)])


def normalize(value: Any) -> Any:
    """Decoded IDL values in the vectors' encoding (base58, hex, enum index)."""
    if isinstance(value, Pubkey):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str) and value in ENUM_INDEX:
        return ENUM_INDEX[value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


class TwinLedger:
    """A LiteSVM with the twin deployed at zmart_core's id and every actor funded."""

    def __init__(self, coder: IdlCoder, fixed: bool = False, actor_sol: int = 1000) -> None:
        self.coder = coder
        artifact = TWIN_FIXED.artifact if fixed else TWIN.artifact
        # no signature checks (nobody holds the actors' keys) and no transaction history
        # (every transaction carries the same all-zero signatures)
        self.svm = LiteSVM().with_sigverify(False).with_transaction_history(0)
        self.svm.add_program(PROGRAM_ID, artifact.read_bytes())
        self.payer = Keypair()
        self.svm.airdrop(self.payer.pubkey(), 1000 * SOL)
        for actor in ACTORS:
            self.svm.airdrop(Pubkey.from_string(KEYS[actor]), actor_sol * SOL)

    def set_time(self, unix_timestamp: int) -> None:
        clock = self.svm.get_clock()
        self.svm.set_clock(
            Clock(
                clock.slot + 1,
                clock.epoch_start_timestamp,
                clock.epoch,
                clock.leader_schedule_epoch,
                unix_timestamp,
            )
        )

    def lamports(self, address: Pubkey) -> int:
        return int(self.svm.get_balance(address) or 0)

    def data(self, address: Pubkey) -> bytes:
        account = self.svm.get_account(address)
        return b"" if account is None else bytes(account.data)

    def decode(self, account_name: str, address: Pubkey) -> dict[str, Any]:
        decoded = self.coder.decode_account(account_name, self.data(address), allow_trailing=True)
        return {k: normalize(v) for k, v in decoded.items()}

    def instruction(
        self,
        name: str,
        data: bytes,
        accounts: Mapping[str, Pubkey],
        overrides: Mapping[str, tuple[bool, bool]] | None = None,
    ) -> Instruction:
        """Accounts by IDL name (absent fixed addresses taken from the IDL); `overrides` sets
        (signer, writable) of some, to exercise the framework checks."""
        metas = []
        for meta in self.coder.instruction_accounts(name):
            key = accounts.get(meta.name, meta.address)
            if key is None:
                continue  # deliberately short account lists
            signer, writable = (overrides or {}).get(meta.name, (meta.signer, meta.writable))
            metas.append(AccountMeta(key, is_signer=signer, is_writable=writable))
        return Instruction(PROGRAM_ID, data, metas)

    def send(self, instructions: Sequence[Instruction]) -> Result:
        blockhash: Hash = self.svm.latest_blockhash()
        message = Message.new_with_blockhash(list(instructions), self.payer.pubkey(), blockhash)
        signatures = [Signature.default()] * message.header.num_required_signatures
        result = self.svm.send_transaction(Transaction.populate(message, signatures))
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return Result(
                False,
                str(result.err()),
                custom_code(result.err()),
                meta.compute_units_consumed(),
                list(meta.logs()),
            )
        assert isinstance(result, TransactionMetadata)
        logs = list(result.logs())
        events = [
            base64.b64decode(line.removeprefix("Program data: "))
            for line in logs
            if line.startswith("Program data: ")
        ]
        return Result(True, None, None, result.compute_units_consumed(), logs, events)

    def send_named(
        self,
        name: str,
        args: Mapping[str, Any],
        accounts: Mapping[str, Pubkey],
        overrides: Mapping[str, tuple[bool, bool]] | None = None,
    ) -> Result:
        data = self.coder.encode_instruction(name, args)
        return self.send([self.instruction(name, data, accounts, overrides)])


def step_accounts(step: Mapping[str, Any]) -> dict[str, Pubkey]:
    return {name: Pubkey.from_string(key) for name, key in step["accounts"].items()}


def address_of(name: str, step: Mapping[str, Any]) -> Pubkey:
    """A name of lamports_after: the step's account of that name, else a vectors key."""
    if name in step["accounts"]:
        return Pubkey.from_string(step["accounts"][name])
    return Pubkey.from_string(KEYS.get(name) or KEYS[f"{name}_pda"])


def run_step(ledger: TwinLedger, step: Mapping[str, Any]) -> Result:
    ledger.set_time(step["unix_timestamp"])
    data = bytes.fromhex(step["ix_data_hex"])
    return ledger.send([ledger.instruction(step["ix"], data, step_accounts(step))])


def sequence_by_name(name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in VECTORS["sequences"] if s["name"] == name)
    return found
