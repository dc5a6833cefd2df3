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


def key(name: str) -> Pubkey:
    return Pubkey.from_string(KEYS[name])


def config_pda() -> Pubkey:
    return Pubkey.find_program_address([b"global-config"], PROGRAM_ID)[0]


def market_pda(market_id: bytes) -> Pubkey:
    return Pubkey.find_program_address([b"market", market_id], PROGRAM_ID)[0]


def position_pda(market: Pubkey, user: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"position", bytes(market), bytes(user)], PROGRAM_ID)[0]


def vote_pda(market: Pubkey, user: Pubkey, vote_type: int) -> Pubkey:
    seeds = [b"vote", bytes(market), bytes(user), bytes([vote_type])]
    return Pubkey.find_program_address(seeds, PROGRAM_ID)[0]


MARKET_ID = bytes(range(1, 33))
START = 1_700_000_000


class Scenario:
    """Named steps on a TwinLedger with the vectors' actors; each returns the Result.

    `accounts` replaces IDL accounts by name, `overrides` flips (signer, writable) flags,
    so every framework and program check can be made to fail on purpose."""

    def __init__(self, coder: IdlCoder, fixed: bool = False) -> None:
        self.ledger = TwinLedger(coder, fixed=fixed)
        self.now = START
        self.market_id = MARKET_ID
        self.market = market_pda(MARKET_ID)

    def tick(self, seconds: int = 10) -> None:
        self.now += seconds
        self.ledger.set_time(self.now)

    def send(
        self,
        name: str,
        args: Mapping[str, Any],
        accounts: Mapping[str, Pubkey],
        overrides: Mapping[str, tuple[bool, bool]] | None = None,
        tick: int = 10,
    ) -> Result:
        self.tick(tick)
        return self.ledger.send_named(name, args, accounts, overrides)

    def initialize(self, fee_wallet: Pubkey | None = None, **kw: Any) -> Result:
        accounts = {
            "admin": key("admin"),
            "global_config": config_pda(),
            "protocol_fee_wallet": fee_wallet or key("protocol_wallet"),
        }
        accounts.update(kw.pop("accounts", {}))
        args = {"backend_authority": key("backend")}
        return self.send("initialize_global_config", args, accounts, **kw)

    def create(
        self,
        b: int = 100 * SOL,
        liquidity: int = SOL,
        creator: str = "creator",
        market_id: bytes | None = None,
        **kw: Any,
    ) -> Result:
        market_id = market_id or self.market_id
        args = {
            "market_id": market_id,
            "b_parameter": b,
            "initial_liquidity": liquidity,
            "ipfs_question_hash": b"Q" * 46,
        }
        accounts = {
            "creator": key(creator),
            "market": market_pda(market_id),
            "global_config": config_pda(),
        }
        accounts.update(kw.pop("accounts", {}))
        return self.send("create_market", args, accounts, **kw)

    def vote(self, kind: str, user: str, vote: bool = True, **kw: Any) -> Result:
        vote_type = 0 if kind == "proposal" else 1
        accounts = {
            "market": self.market,
            "vote_record": vote_pda(self.market, key(user), vote_type),
            "user": key(user),
        }
        accounts.update(kw.pop("accounts", {}))
        return self.send(f"submit_{kind}_vote", {"vote": vote}, accounts, **kw)

    def aggregate(self, kind: str, yes: int, no: int, signer: str = "backend", **kw: Any) -> Result:
        names = (
            ("final_likes", "final_dislikes")
            if kind == "proposal"
            else ("final_agrees", "final_disagrees")
        )
        accounts = {
            "market": self.market,
            "global_config": config_pda(),
            "backend_authority": key(signer),
        }
        accounts.update(kw.pop("accounts", {}))
        return self.send(f"aggregate_{kind}_votes", {names[0]: yes, names[1]: no}, accounts, **kw)

    def admin_action(self, name: str, signer: str = "admin", **kw: Any) -> Result:
        role = "authority" if name == "activate_market" else "admin"
        accounts = {role: key(signer), "market": self.market, "global_config": config_pda()}
        accounts.update(kw.pop("accounts", {}))
        return self.send(name, {}, accounts, **kw)

    def open_market(self, b: int = 100 * SOL, liquidity: int = SOL) -> None:
        """initialize → create → aggregate 7/3 → approve → activate, all asserted."""
        for result in (
            self.initialize(),
            self.create(b=b, liquidity=liquidity),
            self.aggregate("proposal", 7, 3),
            self.admin_action("approve_proposal"),
            self.admin_action("activate_market", signer="creator"),
        ):
            assert result.ok, result.logs

    def trade_accounts(self, user: str) -> dict[str, Pubkey]:
        return {
            "global_config": config_pda(),
            "market": self.market,
            "position": position_pda(self.market, key(user)),
            "user": key(user),
            "protocol_fee_wallet": key("protocol_wallet"),
        }

    def buy(self, user: str, outcome: bool, target_cost: int, **kw: Any) -> Result:
        accounts = self.trade_accounts(user)
        accounts.update(kw.pop("accounts", {}))
        args = {"outcome": outcome, "target_cost": target_cost}
        return self.send("buy_shares", args, accounts, **kw)

    def sell(self, user: str, outcome: bool, shares: int, minimum: int = 0, **kw: Any) -> Result:
        accounts = self.trade_accounts(user)
        accounts.update(kw.pop("accounts", {}))
        args = {"outcome": outcome, "shares_to_sell": shares, "min_proceeds": minimum}
        return self.send("sell_shares", args, accounts, **kw)

    def resolve(self, outcome: bool = True, resolver: str = "resolver", **kw: Any) -> Result:
        accounts = {"global_config": config_pda(), "market": self.market, "resolver": key(resolver)}
        accounts.update(kw.pop("accounts", {}))
        args = {"proposed_outcome": outcome, "ipfs_evidence_hash": b"E" * 46}
        return self.send("resolve_market", args, accounts, **kw)

    def dispute(self, initiator: str = "outsider", **kw: Any) -> Result:
        accounts = {
            "global_config": config_pda(),
            "market": self.market,
            "initiator": key(initiator),
        }
        accounts.update(kw.pop("accounts", {}))
        return self.send("initiate_dispute", {}, accounts, **kw)

    def finalize(
        self,
        agree: int | None = None,
        disagree: int | None = None,
        signer: str = "backend",
        **kw: Any,
    ) -> Result:
        accounts = {
            "global_config": config_pda(),
            "market": self.market,
            "backend_authority": key(signer),
        }
        accounts.update(kw.pop("accounts", {}))
        args = {"dispute_agree": agree, "dispute_disagree": disagree}
        return self.send("finalize_market", args, accounts, **kw)

    def claim(self, user: str, resolver: str = "resolver", **kw: Any) -> Result:
        accounts = self.trade_accounts(user)
        del accounts["protocol_fee_wallet"]
        accounts["resolver"] = key(resolver)
        accounts.update(kw.pop("accounts", {}))
        return self.send("claim_winnings", {}, accounts, **kw)

    def withdraw(self, creator: str = "creator", **kw: Any) -> Result:
        accounts = {"market": self.market, "creator": key(creator)}
        accounts.update(kw.pop("accounts", {}))
        return self.send("withdraw_liquidity", {}, accounts, **kw)

    def update_config(self, signer: str = "admin", **values: Any) -> Result:
        kw = {k: values.pop(k) for k in ("accounts", "overrides", "tick") if k in values}
        args: dict[str, Any] = {
            "protocol_fee_bps": 300,
            "resolver_reward_bps": 200,
            "liquidity_provider_fee_bps": 500,
            "proposal_approval_threshold": 7000,
            "dispute_success_threshold": 6000,
            "min_resolution_delay": None,
            "dispute_period": None,
        }
        args.update(values)
        accounts = {"admin": key(signer), "global_config": config_pda()}
        accounts.update(kw.pop("accounts", {}))
        return self.send("update_global_config", args, accounts, **kw)

    def pause(self, signer: str = "admin", **kw: Any) -> Result:
        accounts = {"admin": key(signer), "global_config": config_pda()}
        accounts.update(kw.pop("accounts", {}))
        return self.send("emergency_pause", {}, accounts, **kw)
