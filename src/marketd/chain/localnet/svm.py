"""`LocalChain`: LiteSVM plus the parts of a validator that LiteSVM leaves out.

LiteSVM executes transactions but has no notion of blocks, history indexes, commitment or
restarts. A JSON-RPC endpoint needs all of those, so this wrapper adds them:

* a slot/block-height counter (every executed transaction lands in a fresh slot) and a clock that
  follows wall time shifted by an offset that tests may set;
* one blockhash lives for `BLOCKHASH_LIFETIME` blocks and is then expired (LiteSVM accepts only
  its latest blockhash, so rotating exactly on expiry gives Solana's lastValidBlockHeight rule);
* a transaction history (signature -> record) and a per-address signature index;
* commitment: a landed transaction is "confirmed", and "finalized" `FINALITY_DEPTH` slots later;
* the keys of every account a transaction touched, since LiteSVM cannot list its accounts and a
  snapshot must know what to save;
* persistence of accounts and history to a data directory, written atomically after every change;
* test controls: drop the next N sends, expire the blockhash, move slots and time.

Everything here is synchronous and single-threaded; the RPC server calls it from its event loop.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import base58
from solders.account import Account
from solders.clock import Clock
from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0, VersionedMessage
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import (
    FailedTransactionMetadata,
    SimulatedTransactionInfo,
    TransactionMetadata,
)
from solders.transaction_status import TransactionErrorType

FINALITY_DEPTH = 32
"""Slots after which a landed transaction counts as finalized."""
BLOCKHASH_LIFETIME = 150
"""Blocks a blockhash stays valid for, as on Solana."""
LAMPORTS_PER_SIGNATURE = 5000
FAUCET_KEYPAIR = Keypair.from_seed(hashlib.sha256(b"marketd-localnet-faucet").digest())
FAUCET_LAMPORTS = 10**18
SNAPSHOT_NAME = "chain.json"
SNAPSHOT_VERSION = 1

_SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
_NATIVE_LOADER = Pubkey.from_string("NativeLoader1111111111111111111111111111111")
_LOOKUP_TABLE_META_SIZE = 56


class Commitment(StrEnum):
    PROCESSED = "processed"
    CONFIRMED = "confirmed"
    FINALIZED = "finalized"


class InvalidTransactionError(Exception):
    """The transaction could not be sanitized (Solana answers -32602)."""


class SignatureVerificationError(Exception):
    """A signature does not verify (Solana answers -32003, even without preflight)."""


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation (or a failed preflight) reports, with `err` in Solana's JSON form."""

    err: Any
    logs: list[str]
    units_consumed: int
    fee: int
    return_data: dict[str, Any] | None
    inner_instructions: list[dict[str, Any]]
    post_accounts: dict[Pubkey, Account]


class PreflightFailureError(Exception):
    """Preflight simulation failed; the transaction was not executed."""

    def __init__(self, result: SimulationResult) -> None:
        super().__init__(describe_transaction_error(result.err))
        self.result = result


@dataclass(frozen=True)
class TxRecord:
    """One landed transaction (successful or failed), as the history stores it."""

    signature: str
    seq: int
    slot: int
    block_time: int
    err: Any
    logs: list[str]
    fee: int
    compute_units: int
    account_keys: list[str]
    loaded_writable: list[str]
    loaded_readonly: list[str]
    pre_balances: list[int]
    post_balances: list[int]
    inner_instructions: list[dict[str, Any]]
    return_data: dict[str, Any] | None
    raw: bytes

    def transaction(self) -> VersionedTransaction:
        return VersionedTransaction.from_bytes(self.raw)

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["raw"] = base64.b64encode(self.raw).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TxRecord:
        return cls(**{**data, "raw": base64.b64decode(data["raw"])})


@dataclass(frozen=True)
class ChainEvent:
    """A transaction reached a commitment level; listeners (websocket hub) react to it."""

    commitment: Commitment
    record: TxRecord


Listener = Callable[[ChainEvent], None]


@dataclass
class _Blockhash:
    value: Hash
    last_valid_block_height: int
    expirations: int
    """How many times LiteSVM's blockhash was expired; replaying that many restores it."""


@dataclass
class _History:
    records: dict[str, TxRecord] = field(default_factory=dict)
    by_address: dict[str, list[TxRecord]] = field(default_factory=dict)
    unfinalized: deque[TxRecord] = field(default_factory=deque)

    def add(self, record: TxRecord) -> None:
        self.records[record.signature] = record
        for key in dict.fromkeys(record.account_keys):
            self.by_address.setdefault(key, []).append(record)
        self.unfinalized.append(record)


def error_to_json(err: TransactionErrorType) -> Any:
    """Solana's JSON form of a TransactionError, e.g. {"InstructionError":[0,{"Custom":1}]}."""
    return json.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


_ERROR_TEXT = {
    "AccountInUse": "Account in use",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "SignatureFailure": "Transaction did not pass signature verification",
}


def describe_transaction_error(err: Any) -> str:
    """The text Solana puts after "Transaction simulation failed: " for common errors."""
    if isinstance(err, str):
        return _ERROR_TEXT.get(err, err)
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            detail = f"custom program error: {inner['Custom']:#x}"
        else:
            detail = json.dumps(inner)
        return f"Error processing Instruction {index}: {detail}"
    return json.dumps(err)


def _return_data_json(meta: TransactionMetadata) -> dict[str, Any] | None:
    returned = meta.return_data()
    if not returned.data:
        return None
    return {
        "programId": str(returned.program_id),
        "data": [base64.b64encode(returned.data).decode(), "base64"],
    }


def _inner_instructions_json(meta: TransactionMetadata) -> list[dict[str, Any]]:
    groups = []
    for index, inner in enumerate(meta.inner_instructions()):
        if not inner:
            continue
        instructions = []
        for item in inner:
            compiled = item.instruction()
            instructions.append(
                {
                    "programIdIndex": compiled.program_id_index,
                    "accounts": list(compiled.accounts),
                    "data": base58.b58encode(bytes(compiled.data)).decode(),
                    "stackHeight": item.stack_height(),
                }
            )
        groups.append({"index": index, "instructions": instructions})
    return groups


def _account_to_json(account: Account) -> dict[str, Any]:
    return {
        "lamports": account.lamports,
        "data": base64.b64encode(account.data).decode(),
        "owner": str(account.owner),
        "executable": account.executable,
        "rent_epoch": account.rent_epoch,
    }


def _account_from_json(data: dict[str, Any]) -> Account:
    return Account(
        lamports=data["lamports"],
        data=base64.b64decode(data["data"]),
        owner=Pubkey.from_string(data["owner"]),
        executable=data["executable"],
        rent_epoch=data["rent_epoch"],
    )


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


class LocalChain:
    """A single-node Solana stand-in over LiteSVM; see the module docstring for what it adds."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._svm = LiteSVM()
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._now = now
        self._slot = 0
        self._timestamp_offset = 0
        self._seq = 0
        self._airdrops = 0
        self._drop_next_sends = 0
        self._programs: list[str] = []
        self._known_keys: set[str] = set()
        self._history = _History()
        self._listeners: list[Listener] = []
        self._blockhash = _Blockhash(self._svm.latest_blockhash(), BLOCKHASH_LIFETIME, 0)
        snapshot = self._snapshot_path()
        if snapshot is not None and snapshot.is_file():
            self._restore(json.loads(snapshot.read_text()))
        else:
            self._set_clock()
            self.set_account(
                FAUCET_KEYPAIR.pubkey(), Account(FAUCET_LAMPORTS, b"", Pubkey.default())
            )

    # ----------------------------------------------------------------- clock and slots
    @property
    def slot(self) -> int:
        return self._slot

    @property
    def block_height(self) -> int:
        """Every slot produces a block here, so block height equals the slot."""
        return self._slot

    def slot_at(self, commitment: Commitment) -> int:
        """The newest slot visible at `commitment` (finalized lags by FINALITY_DEPTH)."""
        if commitment is Commitment.FINALIZED:
            return max(0, self._slot - FINALITY_DEPTH)
        return self._slot

    @property
    def unix_timestamp(self) -> int:
        return int(self._now()) + self._timestamp_offset

    def set_unix_timestamp(self, timestamp: int) -> None:
        """Move the clock to `timestamp`; it keeps following wall time from there."""
        self._timestamp_offset = timestamp - int(self._now())
        self._set_clock()
        self.save()

    def advance_slots(self, count: int) -> None:
        if count < 0:
            raise ValueError("cannot move the slot backwards")
        self._move_to_slot(self._slot + count)
        self.save()

    def _set_clock(self) -> None:
        self._svm.set_clock(Clock(self._slot, 0, 0, 0, self.unix_timestamp))

    def _move_to_slot(self, slot: int, *, rotate: bool = True) -> None:
        self._slot = slot
        self._set_clock()
        if rotate:
            self._rotate_if_expired()
        history = self._history
        while history.unfinalized and history.unfinalized[0].slot + FINALITY_DEPTH <= slot:
            self._emit(ChainEvent(Commitment.FINALIZED, history.unfinalized.popleft()))

    # ----------------------------------------------------------------- blockhash
    @property
    def latest_blockhash(self) -> tuple[Hash, int]:
        """The current blockhash and the last block height at which it is valid."""
        return self._blockhash.value, self._blockhash.last_valid_block_height

    def _rotate_if_expired(self) -> bool:
        if self.block_height > self._blockhash.last_valid_block_height:
            self._rotate_blockhash()
            return True
        return False

    def expire_blockhash(self) -> None:
        self._rotate_blockhash()
        self.save()

    def _rotate_blockhash(self) -> None:
        self._svm.expire_blockhash()
        self._blockhash = _Blockhash(
            self._svm.latest_blockhash(),
            self.block_height + BLOCKHASH_LIFETIME,
            self._blockhash.expirations + 1,
        )

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        return blockhash == self._blockhash.value

    # ----------------------------------------------------------------- accounts
    def load_program(self, program_id: Pubkey, program: bytes | Path) -> None:
        """Deploy an SBF program; with a data dir its bytes are kept there for restarts."""
        so_bytes = program.read_bytes() if isinstance(program, Path) else program
        self._svm.add_program(program_id, so_bytes)
        key = str(program_id)
        if key not in self._programs:
            self._programs.append(key)
        if self._data_dir is not None:
            _write_atomically(self._program_path(key), so_bytes)
        self.save()

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Fixture helper: write an account directly (tracked and persisted like any other)."""
        self._svm.set_account(pubkey, account)
        self._known_keys.add(str(pubkey))
        self.save()

    def get_account(self, pubkey: Pubkey) -> Account | None:
        account = self._svm.get_account(pubkey)
        if account is None or account.lamports == 0:
            return None
        return account

    def get_balance(self, pubkey: Pubkey) -> int:
        return self._svm.get_balance(pubkey) or 0

    def program_accounts(self, owner: Pubkey) -> list[tuple[Pubkey, Account]]:
        """Every account owned by `owner`, sorted by address for stable answers."""
        found = self._svm.get_program_accounts(owner)
        return sorted(
            ((key, account) for key, account in found if account.lamports > 0),
            key=lambda item: bytes(item[0]),
        )

    def minimum_balance_for_rent_exemption(self, data_len: int) -> int:
        return self._svm.minimum_balance_for_rent_exemption(data_len)

    def loaded_addresses(self, message: VersionedMessage) -> tuple[list[str], list[str]]:
        """Resolve a v0 message's address-table lookups to (writable, readonly) addresses."""
        writable: list[str] = []
        readonly: list[str] = []
        if not isinstance(message, MessageV0):
            return writable, readonly
        for lookup in message.address_table_lookups:
            table = self._svm.get_account(lookup.account_key)
            data = table.data if table is not None else b""
            addresses = data[_LOOKUP_TABLE_META_SIZE:]

            def at(index: int, addresses: bytes = addresses) -> str:
                return str(Pubkey.from_bytes(addresses[index * 32 : index * 32 + 32]))

            writable.extend(at(i) for i in lookup.writable_indexes)
            readonly.extend(at(i) for i in lookup.readonly_indexes)
        return writable, readonly

    # ----------------------------------------------------------------- fees
    def fee_for_message(self, message: VersionedMessage) -> int | None:
        """The base fee, or None once the message's blockhash has expired (as Solana does)."""
        if not self.is_blockhash_valid(message.recent_blockhash):
            return None
        return LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures

    # ----------------------------------------------------------------- transactions
    def drop_next_sends(self, count: int) -> None:
        """The next `count` sends are answered with their signature but never executed."""
        self._drop_next_sends = count
        self.save()

    def simulate_transaction(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = False,
        replace_recent_blockhash: bool = False,
    ) -> SimulationResult:
        """Run `tx` against current state without committing anything."""
        if replace_recent_blockhash:
            tx = VersionedTransaction.populate(
                _with_blockhash(tx.message, self._blockhash.value), tx.signatures
            )
            sig_verify = False
        elif str(tx.signatures[0]) in self._history.records:
            return SimulationResult("AlreadyProcessed", [], 0, 0, None, [], {})
        self._svm.with_sigverify(sig_verify)
        try:
            outcome = self._svm.simulate_transaction(tx)
        finally:
            self._svm.with_sigverify(True)
        if isinstance(outcome, SimulatedTransactionInfo):
            meta, err, post = outcome.meta(), None, dict(outcome.post_accounts())
        else:
            meta, err, post = outcome.meta(), error_to_json(outcome.err()), {}
        return SimulationResult(
            err=err,
            logs=meta.logs(),
            units_consumed=meta.compute_units_consumed(),
            fee=meta.fee(),
            return_data=_return_data_json(meta),
            inner_instructions=_inner_instructions_json(meta),
            post_accounts=post,
        )

    def send_transaction(
        self, tx: VersionedTransaction, *, skip_preflight: bool = False
    ) -> Signature:
        """Execute `tx` in a new slot, unless dropped; returns its signature either way.

        Like a validator, a transaction that cannot land (expired blockhash, unknown fee payer)
        is accepted without preflight and simply never appears in the history.
        """
        try:
            tx.sanitize()
        except Exception as exc:
            raise InvalidTransactionError(str(exc)) from exc
        if not all(tx.verify_with_results()):
            raise SignatureVerificationError("Transaction signature verification failure")
        signature = tx.signatures[0]
        if self._drop_next_sends > 0:
            self._drop_next_sends -= 1
            self.save()
            return signature
        if not skip_preflight:
            preflight = self.simulate_transaction(tx, sig_verify=True)
            if preflight.err is not None:
                raise PreflightFailureError(preflight)
        if str(signature) not in self._history.records:
            self._execute(tx)
        return signature

    def airdrop(self, recipient: Pubkey, lamports: int) -> Signature:
        """Transfer from a faucet key, as a real transaction that shows up in the history."""
        self._airdrops += 1
        # A distinct compute limit per airdrop keeps repeated identical airdrops distinct.
        instructions = [
            set_compute_unit_limit(200_000 + self._airdrops % 1_000_000),
            transfer(
                TransferParams(
                    from_pubkey=FAUCET_KEYPAIR.pubkey(), to_pubkey=recipient, lamports=lamports
                )
            ),
        ]
        message = Message.new_with_blockhash(
            instructions, FAUCET_KEYPAIR.pubkey(), self._blockhash.value
        )
        return self.send_transaction(VersionedTransaction(message, [FAUCET_KEYPAIR]))

    def _execute(self, tx: VersionedTransaction) -> None:
        # The blockhash is rotated after the transaction runs, not before: LiteSVM accepts
        # only its latest blockhash, so rotating first would silently drop a transaction
        # signed in the blockhash's last valid block (it lands one block late instead).
        self._move_to_slot(self._slot + 1, rotate=False)
        try:
            self._run(tx)
        finally:
            if self._rotate_if_expired():
                self.save()

    def _run(self, tx: VersionedTransaction) -> None:
        writable, readonly = self.loaded_addresses(tx.message)
        keys = [str(key) for key in tx.message.account_keys] + writable + readonly
        pubkeys = [Pubkey.from_string(key) for key in keys]
        pre_balances = [self.get_balance(key) for key in pubkeys]
        outcome = self._svm.send_transaction(tx)
        signature = tx.signatures[0]
        if self._svm.get_transaction(signature) is None:
            self.save()
            return
        if isinstance(outcome, FailedTransactionMetadata):
            meta, err = outcome.meta(), error_to_json(outcome.err())
        else:
            meta, err = outcome, None
        self._seq += 1
        record = TxRecord(
            signature=str(signature),
            seq=self._seq,
            slot=self._slot,
            block_time=self.unix_timestamp,
            err=err,
            logs=meta.logs(),
            fee=meta.fee(),
            compute_units=meta.compute_units_consumed(),
            account_keys=keys,
            loaded_writable=writable,
            loaded_readonly=readonly,
            pre_balances=pre_balances,
            post_balances=[self.get_balance(key) for key in pubkeys],
            inner_instructions=_inner_instructions_json(meta),
            return_data=_return_data_json(meta),
            raw=bytes(tx),
        )
        self._history.add(record)
        self._known_keys.update(keys)
        self.save()
        self._emit(ChainEvent(Commitment.CONFIRMED, record))

    # ----------------------------------------------------------------- history
    def get_record(self, signature: str) -> TxRecord | None:
        return self._history.records.get(signature)

    def commitment_of(self, record: TxRecord) -> Commitment:
        if record.slot + FINALITY_DEPTH <= self._slot:
            return Commitment.FINALIZED
        return Commitment.CONFIRMED

    def confirmations(self, record: TxRecord) -> int | None:
        """Blocks built on top of the record's slot; None once finalized (Solana's convention)."""
        if self.commitment_of(record) is Commitment.FINALIZED:
            return None
        return self._slot - record.slot

    def is_visible(self, record: TxRecord, commitment: Commitment) -> bool:
        return commitment is not Commitment.FINALIZED or (
            self.commitment_of(record) is Commitment.FINALIZED
        )

    def signatures_for_address(
        self,
        address: str,
        *,
        before: str | None = None,
        until: str | None = None,
        limit: int = 1000,
        commitment: Commitment = Commitment.FINALIZED,
    ) -> list[TxRecord]:
        """Newest first; `before` and `until` are exclusive bounds, like Solana's.

        An unknown `before` gives an empty page and an unknown `until` no bound, as on Solana.
        """
        before_seq = self._seq_of(before)
        if before is not None and before_seq is None:
            return []
        until_seq = self._seq_of(until)
        found: list[TxRecord] = []
        for record in reversed(self._history.by_address.get(address, [])):
            if len(found) >= limit or (until_seq is not None and record.seq <= until_seq):
                break
            if before_seq is not None and record.seq >= before_seq:
                continue
            if self.is_visible(record, commitment):
                found.append(record)
        return found

    def _seq_of(self, signature: str | None) -> int | None:
        if signature is None:
            return None
        record = self._history.records.get(signature)
        return record.seq if record is not None else None

    def records(self) -> Iterator[TxRecord]:
        return iter(self._history.records.values())

    # ----------------------------------------------------------------- listeners
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every commitment change; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _emit(self, event: ChainEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # ----------------------------------------------------------------- persistence
    def _snapshot_path(self) -> Path | None:
        return self._data_dir / SNAPSHOT_NAME if self._data_dir is not None else None

    def _program_path(self, program_id: str) -> Path:
        assert self._data_dir is not None
        return self._data_dir / "programs" / f"{program_id}.so"

    def save(self) -> None:
        """Write the snapshot (no-op without a data dir); called after every change."""
        path = self._snapshot_path()
        if path is None:
            return
        accounts = {}
        for key in sorted(self._known_keys):
            account = self._svm.get_account(Pubkey.from_string(key))
            if account is None or not _is_user_state(account) or key in self._programs:
                continue
            accounts[key] = _account_to_json(account)
        snapshot = {
            "version": SNAPSHOT_VERSION,
            "slot": self._slot,
            "timestamp_offset": self._timestamp_offset,
            "seq": self._seq,
            "airdrops": self._airdrops,
            "drop_next_sends": self._drop_next_sends,
            "blockhash": {
                "value": str(self._blockhash.value),
                "last_valid_block_height": self._blockhash.last_valid_block_height,
                "expirations": self._blockhash.expirations,
            },
            "programs": self._programs,
            "known_keys": sorted(self._known_keys),
            "accounts": accounts,
            "transactions": [
                record.to_json()
                for record in sorted(self._history.records.values(), key=lambda r: r.seq)
            ],
        }
        _write_atomically(path, json.dumps(snapshot, separators=(",", ":")).encode())

    def _restore(self, snapshot: dict[str, Any]) -> None:
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported local chain snapshot version {snapshot.get('version')}")
        for key in snapshot["programs"]:
            self._svm.add_program(Pubkey.from_string(key), self._program_path(key).read_bytes())
            self._programs.append(key)
        for key, data in snapshot["accounts"].items():
            self._svm.set_account(Pubkey.from_string(key), _account_from_json(data))
        self._known_keys = set(snapshot["known_keys"])
        saved = snapshot["blockhash"]
        for _ in range(saved["expirations"]):
            self._svm.expire_blockhash()
        if str(self._svm.latest_blockhash()) != saved["value"]:
            raise ValueError("LiteSVM blockhash sequence changed; snapshot cannot be restored")
        self._blockhash = _Blockhash(
            self._svm.latest_blockhash(), saved["last_valid_block_height"], saved["expirations"]
        )
        self._slot = snapshot["slot"]
        self._timestamp_offset = snapshot["timestamp_offset"]
        self._seq = snapshot["seq"]
        self._airdrops = snapshot["airdrops"]
        self._drop_next_sends = snapshot["drop_next_sends"]
        for data in snapshot["transactions"]:
            record = TxRecord.from_json(data)
            self._history.add(record)
        while (
            self._history.unfinalized
            and self._history.unfinalized[0].slot + FINALITY_DEPTH <= self._slot
        ):
            self._history.unfinalized.popleft()
        self._set_clock()


def _is_user_state(account: Account) -> bool:
    """Accounts worth saving: not programs, builtins or sysvars (those come back by themselves)."""
    return not account.executable and account.owner not in (_SYSVAR_OWNER, _NATIVE_LOADER)


def _with_blockhash(message: VersionedMessage, blockhash: Hash) -> VersionedMessage:
    if isinstance(message, MessageV0):
        return MessageV0(
            message.header,
            message.account_keys,
            blockhash,
            message.instructions,
            message.address_table_lookups,
        )
    if not isinstance(message, Message):
        raise InvalidTransactionError("unsupported transaction version")
    header = message.header
    return Message.new_with_compiled_instructions(
        header.num_required_signatures,
        header.num_readonly_signed_accounts,
        header.num_readonly_unsigned_accounts,
        message.account_keys,
        blockhash,
        message.instructions,
    )
