"""Drive the stand-in program in LiteSVM with instructions encoded from an IDL."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solders.clock import Clock
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata

from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.build import ARTIFACT

PROGRAM_ID = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")
START_TIME = 1_700_000_000
SOL = 1_000_000_000


def config_pda(program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([b"global-config"], program_id)[0]


def market_pda(market_id: bytes, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([b"market", market_id], program_id)[0]


def position_pda(market: Pubkey, user: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([b"position", bytes(market), bytes(user)], program_id)[0]


def vote_pda(
    market: Pubkey, user: Pubkey, vote_type: int, program_id: Pubkey = PROGRAM_ID
) -> Pubkey:
    seeds = [b"vote", bytes(market), bytes(user), bytes([vote_type])]
    return Pubkey.find_program_address(seeds, program_id)[0]


@dataclass
class Outcome:
    """What one transaction did."""

    ok: bool
    logs: list[str]
    compute_units: int
    error: str | None = None
    custom_code: int | None = None
    events: list[bytes] = field(default_factory=list)


def _custom_code(err: Any) -> int | None:
    text = str(err)
    marker = "Custom("
    if marker not in text:
        return None
    start = text.index(marker) + len(marker)
    return int(text[start : text.index(")", start)])


class StandinChain:
    """A LiteSVM with the committed stand-in program, a config admin, backend and fee wallet."""

    def __init__(self, coder: IdlCoder, program: Path = ARTIFACT) -> None:
        self.coder = coder
        self.svm = LiteSVM()
        self.svm.add_program(PROGRAM_ID, program.read_bytes())
        self.admin = self.funded()
        self.backend = self.funded()
        self.fee_wallet = self.funded(1 * SOL)
        self.set_time(START_TIME)

    def funded(self, lamports: int = 100 * SOL) -> Keypair:
        keypair = Keypair()
        self.svm.airdrop(keypair.pubkey(), lamports)
        return keypair

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

    def now(self) -> int:
        return int(self.svm.get_clock().unix_timestamp)

    def instruction(
        self, name: str, args: Mapping[str, Any], accounts: Mapping[str, Pubkey]
    ) -> Instruction:
        metas = []
        for meta in self.coder.instruction_accounts(name):
            key = accounts.get(meta.name, meta.address)
            if key is None:
                raise KeyError(f"{name}: account {meta.name!r} not given")
            metas.append(AccountMeta(key, is_signer=meta.signer, is_writable=meta.writable))
        return Instruction(PROGRAM_ID, self.coder.encode_instruction(name, args), metas)

    def send_instructions(
        self, instructions: Sequence[Instruction], signers: Sequence[Keypair]
    ) -> Outcome:
        message = Message(list(instructions), signers[0].pubkey())
        tx = Transaction(list(signers), message, self.svm.latest_blockhash())
        result = self.svm.send_transaction(tx)
        self.svm.expire_blockhash()
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return Outcome(
                ok=False,
                logs=list(meta.logs()),
                compute_units=meta.compute_units_consumed(),
                error=str(result.err()),
                custom_code=_custom_code(result.err()),
            )
        assert isinstance(result, TransactionMetadata)
        logs = list(result.logs())
        events = [
            base64.b64decode(line.removeprefix("Program data: "))
            for line in logs
            if line.startswith("Program data: ")
        ]
        return Outcome(True, logs, result.compute_units_consumed(), events=events)

    def send(
        self,
        name: str,
        args: Mapping[str, Any],
        accounts: Mapping[str, Pubkey],
        signers: Sequence[Keypair],
    ) -> Outcome:
        return self.send_instructions([self.instruction(name, args, accounts)], signers)

    def account_data(self, address: Pubkey) -> bytes:
        account = self.svm.get_account(address)
        assert account is not None, f"no account at {address}"
        return bytes(account.data)

    def lamports(self, address: Pubkey) -> int:
        return int(self.svm.get_balance(address) or 0)

    def decode(self, account_name: str, address: Pubkey) -> dict[str, Any]:
        return self.coder.decode_account(
            account_name, self.account_data(address), allow_trailing=True
        )

    # -- the usual steps, each returning the outcome

    def initialize(self) -> Outcome:
        return self.send(
            "initialize_global_config",
            {"backend_authority": self.backend.pubkey()},
            {
                "admin": self.admin.pubkey(),
                "global_config": config_pda(),
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
            [self.admin],
        )

    def create_market(
        self, creator: Keypair, market_id: bytes, b: int = 100 * SOL, liquidity: int = 10 * SOL
    ) -> Outcome:
        return self.send(
            "create_market",
            {
                "market_id": market_id,
                "b_parameter": b,
                "initial_liquidity": liquidity,
                "ipfs_question_hash": b"Q" * 46,
            },
            {
                "creator": creator.pubkey(),
                "market": market_pda(market_id),
                "global_config": config_pda(),
            },
            [creator],
        )

    def vote(self, kind: str, user: Keypair, market: Pubkey, vote: bool) -> Outcome:
        vote_type = 0 if kind == "proposal" else 1
        return self.send(
            f"submit_{kind}_vote",
            {"vote": vote},
            {
                "market": market,
                "vote_record": vote_pda(market, user.pubkey(), vote_type),
                "user": user.pubkey(),
            },
            [user],
        )

    def aggregate(
        self, kind: str, market: Pubkey, yes: int, no: int, signer: Keypair | None = None
    ) -> Outcome:
        signer = signer or self.backend
        names = (
            ("final_likes", "final_dislikes")
            if kind == "proposal"
            else (
                "final_agrees",
                "final_disagrees",
            )
        )
        return self.send(
            f"aggregate_{kind}_votes",
            {names[0]: yes, names[1]: no},
            {
                "market": market,
                "global_config": config_pda(),
                "backend_authority": signer.pubkey(),
            },
            [signer],
        )

    def admin_action(self, name: str, market: Pubkey, signer: Keypair | None = None) -> Outcome:
        signer = signer or self.admin
        role = "authority" if name == "activate_market" else "admin"
        return self.send(
            name,
            {},
            {role: signer.pubkey(), "market": market, "global_config": config_pda()},
            [signer],
        )

    def trade(
        self,
        side: str,
        user: Keypair,
        market: Pubkey,
        outcome: bool,
        amount: int,
        limit: int = 0,
        fee_wallet: Pubkey | None = None,
    ) -> Outcome:
        args: dict[str, Any] = {"outcome": outcome}
        if side == "buy":
            args["target_cost"] = amount
        else:
            args["shares_to_sell"] = amount
            args["min_proceeds"] = limit
        return self.send(
            f"{side}_shares",
            args,
            {
                "global_config": config_pda(),
                "market": market,
                "position": position_pda(market, user.pubkey()),
                "user": user.pubkey(),
                "protocol_fee_wallet": fee_wallet or self.fee_wallet.pubkey(),
            },
            [user],
        )

    def resolve(self, resolver: Keypair, market: Pubkey, outcome: bool) -> Outcome:
        return self.send(
            "resolve_market",
            {"proposed_outcome": outcome, "ipfs_evidence_hash": b"E" * 46},
            {"global_config": config_pda(), "market": market, "resolver": resolver.pubkey()},
            [resolver],
        )

    def dispute(self, initiator: Keypair, market: Pubkey) -> Outcome:
        return self.send(
            "initiate_dispute",
            {},
            {"global_config": config_pda(), "market": market, "initiator": initiator.pubkey()},
            [initiator],
        )

    def finalize(
        self,
        market: Pubkey,
        agree: int | None = None,
        disagree: int | None = None,
        signer: Keypair | None = None,
    ) -> Outcome:
        signer = signer or self.backend
        return self.send(
            "finalize_market",
            {"dispute_agree": agree, "dispute_disagree": disagree},
            {
                "global_config": config_pda(),
                "market": market,
                "backend_authority": signer.pubkey(),
            },
            [signer],
        )
