"""`LocalChain`: LiteSVM plus the parts of a validator that LiteSVM leaves out.

LiteSVM executes transactions but has no notion of blocks, history indexes, commitment or
restarts. A JSON-RPC endpoint needs all of those, so this wrapper adds them, modelled on what a
cluster does (see `ChainTiming` for the two ways it moves in time):

* slots and a clock: a slot is a block (block height equals the slot); the Clock sysvar is set
  at every slot from wall time shifted by an offset that tests may set;
* blockhashes: a new one every slot, each valid for `BLOCKHASH_LIFETIME` blocks (Solana's
  lastValidBlockHeight rule); LiteSVM's own blockhash check is off and this one applies;
* commitment: a landed transaction is "processed" at once, "confirmed" `confirmation_slots`
  slots later and "finalized" `FINALITY_DEPTH` slots after it landed; account reads at a
  commitment see the state of that commitment's slot (older versions are kept in an undo log
  until finalized);
* a status cache: the bytes of a landed transaction are AlreadyProcessed while its blockhash is
  valid, BlockhashNotFound after;
* a transaction history (signature -> record) and a per-address signature index, pruned to the
  last `history_slots` slots when that is set (minimumLedgerSlot says where it starts);
* the keys of every account a transaction touched, since LiteSVM cannot list its accounts and a
  snapshot must know what to save;
* persistence of accounts and history to a data directory, written atomically after every change;
* test controls: drop the next N sends, run a transaction between the next send's preflight and
  its execution, expire blockhashes, move slots and time.

Everything here is synchronous and single-threaded; the RPC server calls it from its event loop
(and its real-time ticker, `ticker.SlotTicker`, calls `tick`).
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
from dataclasses import dataclass, field, replace
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

from marketd.chain.localnet import fpu

FINALITY_DEPTH = 32
"""Slots after which a landed transaction counts as finalized."""
CLUSTER_CONFIRMATION_SLOTS = 2
"""Slots from landing to "confirmed" in cluster timing: with 400 ms slots a transaction is
confirmed 400-800 ms after it lands (it lands somewhere inside its slot)."""
BLOCKHASH_LIFETIME = 150
"""Blocks a blockhash stays valid for, as on Solana."""
LAMPORTS_PER_SIGNATURE = 5000
FAUCET_KEYPAIR = Keypair.from_seed(hashlib.sha256(b"marketd-localnet-faucet").digest())
FAUCET_LAMPORTS = 10**18
SNAPSHOT_NAME = "chain.json"
SNAPSHOT_VERSION = 2
_READABLE_SNAPSHOTS = (1, 2)
_BLOCKHASH_SEED = b"marketd-localnet-blockhash"

_SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
_NATIVE_LOADER = Pubkey.from_string("NativeLoader1111111111111111111111111111111")
_LOOKUP_TABLE_META_SIZE = 56
_NO_ACCOUNT = Account(0, b"", Pubkey.default())
"""What LiteSVM holds for an account that does not exist."""


class Commitment(StrEnum):
    PROCESSED = "processed"
    CONFIRMED = "confirmed"
    FINALIZED = "finalized"

    @property
    def rank(self) -> int:
        return _COMMITMENT_ORDER.index(self)


_COMMITMENT_ORDER = (Commitment.PROCESSED, Commitment.CONFIRMED, Commitment.FINALIZED)


@dataclass(frozen=True)
class ChainTiming:
    """How the chain moves in time.

    The default is the deterministic mode tests are written against: every transaction lands
    in a slot of its own, a landed transaction is confirmed at once, and slots otherwise move
    only when told (`advance_slots`). `cluster()` is a cluster's behaviour: transactions land in
    the current slot (many may share one), are confirmed `confirmation_slots` slots later, and
    slots move when `tick` is called, by the real-time `SlotTicker` (every ~400 ms) or by a test
    that drives the slots itself.

    `history_slots`: how many slots of transaction history the node keeps (None: all); older
    signatures and transactions are simply absent, as on a node with a bounded ledger.
    """

    slot_per_transaction: bool = True
    confirmation_slots: int = 0
    history_slots: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.confirmation_slots <= FINALITY_DEPTH:
            raise ValueError(f"confirmation_slots must be within 0..{FINALITY_DEPTH}")
        if self.history_slots is not None and self.history_slots < FINALITY_DEPTH:
            # Pruning an unfinalized transaction would look like a fork dropping it.
            raise ValueError(f"history_slots must be at least {FINALITY_DEPTH}")

    @classmethod
    def cluster(
        cls,
        confirmation_slots: int = CLUSTER_CONFIRMATION_SLOTS,
        history_slots: int | None = None,
    ) -> ChainTiming:
        return cls(False, confirmation_slots, history_slots)


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
    """A transaction reached a commitment level (each level once, in order); listeners (the
    websocket hub) react to it."""

    commitment: Commitment
    record: TxRecord


Listener = Callable[[ChainEvent], None]


@dataclass(frozen=True)
class _Blockhash:
    value: Hash
    slot: int
    last_valid_block_height: int


def derive_blockhash(slot: int, generation: int) -> Hash:
    """The blockhash of `slot`: deterministic, so a restarted chain issues the same ones.

    `generation` counts `expire_blockhash` calls: a test that expired the blockhashes gets
    fresh ones for the same slot.
    """
    seed = _BLOCKHASH_SEED + slot.to_bytes(8, "little") + generation.to_bytes(8, "little")
    return Hash(hashlib.sha256(seed).digest())


@dataclass
class _History:
    records: dict[str, TxRecord] = field(default_factory=dict)
    by_address: dict[str, deque[TxRecord]] = field(default_factory=dict)
    unconfirmed: deque[TxRecord] = field(default_factory=deque)
    unfinalized: deque[TxRecord] = field(default_factory=deque)

    def add(self, record: TxRecord) -> None:
        self.records[record.signature] = record
        for key in dict.fromkeys(record.account_keys):
            self.by_address.setdefault(key, deque()).append(record)

    def prune_before(self, slot: int) -> int:
        """Forget transactions of slots older than `slot`; returns how many."""
        gone = []
        for record in self.records.values():
            if record.slot >= slot:
                break
            gone.append(record)
        for record in gone:
            del self.records[record.signature]
            for key in dict.fromkeys(record.account_keys):
                listed = self.by_address[key]
                listed.popleft()  # records are pruned oldest first, so it is at the front
                if not listed:
                    del self.by_address[key]
        return len(gone)


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
        timing: ChainTiming | None = None,
    ) -> None:
        self._svm = LiteSVM().with_blockhash_check(False)
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._now = now
        self.timing = timing or ChainTiming()
        self._slot = 0
        self._slot_time = 0
        self._timestamp_offset = 0
        self._seq = 0
        self._airdrops = 0
        self._drop_next_sends = 0
        self._front_run: list[VersionedTransaction] = []
        self._programs: list[str] = []
        self._known_keys: set[str] = set()
        self._history = _History()
        self._first_available_slot = 0
        self._status_cache: dict[str, int] = {}
        """Signatures of landed transactions -> their blockhash's last valid block height."""
        self._versions: dict[str, list[tuple[int, Account | None]]] = {}
        """Per account: (slot, the account before that slot's first change), oldest first,
        for reads at a commitment older than the working slot."""
        self._version_order: deque[tuple[int, str]] = deque()
        self._listeners: list[Listener] = []
        self._generation = 0
        self._blockhashes: dict[Hash, _Blockhash] = {}
        self._blockhash = self._issue_blockhash()
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
        """The working slot: the one transactions land in ("processed")."""
        return self._slot

    @property
    def block_height(self) -> int:
        """Every slot produces a block here, so block height equals the slot."""
        return self._slot

    def _lag(self, commitment: Commitment) -> int:
        if commitment is Commitment.FINALIZED:
            return FINALITY_DEPTH
        if commitment is Commitment.CONFIRMED:
            return self.timing.confirmation_slots
        return 0

    def _visible_slot(self, commitment: Commitment) -> int:
        """The newest slot whose effects are visible at `commitment` (may be negative early on:
        then nothing any transaction did is)."""
        return self._slot - self._lag(commitment)

    def slot_at(self, commitment: Commitment) -> int:
        """The newest slot at `commitment` (confirmed and finalized lag the working slot)."""
        return max(0, self._visible_slot(commitment))

    @property
    def first_available_slot(self) -> int:
        """The oldest slot whose transactions the node still has (minimumLedgerSlot)."""
        return self._first_available_slot

    @property
    def unix_timestamp(self) -> int:
        return int(self._now()) + self._timestamp_offset

    def set_unix_timestamp(self, timestamp: int) -> None:
        """Move the clock to `timestamp`; it keeps following wall time from there."""
        self._timestamp_offset = timestamp - int(self._now())
        self._set_clock()
        self.save()

    def advance_slots(self, count: int) -> None:
        """Produce `count` slots at once (a test control; `tick` without the snapshot write)."""
        self.tick(count)
        self.save()

    def tick(self, count: int = 1) -> None:
        """Produce `count` slots: the clock follows wall time, a new blockhash is issued per
        slot, transactions reach confirmed and finalized, history beyond its depth is pruned.

        The real-time ticker calls this every slot; it does not write the snapshot (the next
        change or a stop does), since a slot alone changes nothing a restart must keep.
        """
        if count < 0:
            raise ValueError("cannot move the slot backwards")
        if count:
            self._move_to_slot(self._slot + count)

    @contextlib.contextmanager
    def slot_per_transaction(self) -> Iterator[None]:
        """Within the block every transaction lands in a slot of its own, whatever the timing
        (how the demo's seed lays out weeks of history in one go)."""
        saved = self.timing
        self.timing = replace(saved, slot_per_transaction=True)
        try:
            yield
        finally:
            self.timing = saved

    def _set_clock(self) -> None:
        self._slot_time = self.unix_timestamp
        self._svm.set_clock(Clock(self._slot, 0, 0, 0, self._slot_time))

    def _move_to_slot(self, slot: int) -> None:
        # Every slot has its blockhash (only the ones still valid at `slot` matter).
        for produced in range(max(self._slot + 1, slot - BLOCKHASH_LIFETIME), slot + 1):
            self._slot = produced
            self._blockhash = self._issue_blockhash()
        self._set_clock()
        self._prune_blockhashes()
        self._settle()
        if self.timing.history_slots is not None:
            cutoff = slot - self.timing.history_slots
            if cutoff > self._first_available_slot:
                self._history.prune_before(cutoff)
                self._first_available_slot = cutoff

    def _settle(self) -> None:
        """Emit the commitment changes the working slot has reached; drop undo entries no
        commitment can read any more."""
        history = self._history
        confirmed = self._visible_slot(Commitment.CONFIRMED)
        while history.unconfirmed and history.unconfirmed[0].slot <= confirmed:
            record = history.unconfirmed.popleft()
            history.unfinalized.append(record)
            self._emit(ChainEvent(Commitment.CONFIRMED, record))
        finalized = self._visible_slot(Commitment.FINALIZED)
        while history.unfinalized and history.unfinalized[0].slot <= finalized:
            self._emit(ChainEvent(Commitment.FINALIZED, history.unfinalized.popleft()))
        order = self._version_order
        while order and order[0][0] <= finalized:
            _, key = order.popleft()
            versions = self._versions[key]
            versions.pop(0)
            if not versions:
                del self._versions[key]

    # ----------------------------------------------------------------- blockhash
    @property
    def latest_blockhash(self) -> tuple[Hash, int]:
        """The current blockhash and the last block height at which it is valid."""
        return self._blockhash.value, self._blockhash.last_valid_block_height

    def blockhash_at(self, commitment: Commitment) -> tuple[Hash, int]:
        """The blockhash of the newest block at `commitment` (getLatestBlockhash's answer)."""
        visible = self._visible_slot(commitment)
        found = self._blockhash
        for entry in self._blockhashes.values():
            if entry.slot <= visible:
                found = entry  # entries are in slot order; the last one that fits wins
        return found.value, found.last_valid_block_height

    def _issue_blockhash(self) -> _Blockhash:
        entry = _Blockhash(
            derive_blockhash(self._slot, self._generation),
            self._slot,
            self._slot + BLOCKHASH_LIFETIME,
        )
        self._blockhashes[entry.value] = entry
        return entry

    def _prune_blockhashes(self) -> None:
        height = self.block_height
        for value in [
            v for v, e in self._blockhashes.items() if e.last_valid_block_height < height
        ]:
            del self._blockhashes[value]
        for signature in [s for s, last in self._status_cache.items() if last < height]:
            del self._status_cache[signature]

    def expire_blockhash(self) -> None:
        """Test control: every blockhash issued so far stops being valid; a fresh one is."""
        self._generation += 1
        self._blockhashes.clear()
        self._status_cache.clear()
        self._blockhash = self._issue_blockhash()
        self.save()

    def is_blockhash_valid(self, blockhash: Hash, *, height: int | None = None) -> bool:
        """Whether a transaction with `blockhash` may land in the block at `height` (default:
        the working block)."""
        entry = self._blockhashes.get(blockhash)
        height = self.block_height if height is None else height
        return entry is not None and height <= entry.last_valid_block_height

    @property
    def _landing_height(self) -> int:
        """The block a transaction sent now lands in."""
        return self.block_height + (1 if self.timing.slot_per_transaction else 0)

    # ----------------------------------------------------------------- accounts
    def load_program(self, program_id: Pubkey, program: bytes | Path) -> None:
        """Deploy an SBF program; with a data dir its bytes are kept there for restarts."""
        so_bytes = program.read_bytes() if isinstance(program, Path) else program
        try:
            self._svm.add_program(program_id, so_bytes)
        finally:
            fpu.restore_x87()
        key = str(program_id)
        if key not in self._programs:
            self._programs.append(key)
        if self._data_dir is not None:
            _write_atomically(self._program_path(key), so_bytes)
        self.save()

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Fixture helper: write an account directly (tracked and persisted like any other).

        It is genesis-like: visible at every commitment at once."""
        self._svm.set_account(pubkey, account)
        self._known_keys.add(str(pubkey))
        self.save()

    def _account_at(self, key: str, commitment: Commitment) -> Account | None:
        versions = self._versions.get(key)
        if versions is not None and commitment is not Commitment.PROCESSED:
            visible = self._visible_slot(commitment)
            for slot, before in versions:
                if slot > visible:
                    return before
        return self._svm.get_account(Pubkey.from_string(key))

    def get_account(
        self, pubkey: Pubkey, commitment: Commitment = Commitment.PROCESSED
    ) -> Account | None:
        account = self._account_at(str(pubkey), commitment)
        if account is None or account.lamports == 0:
            return None
        return account

    def get_balance(self, pubkey: Pubkey, commitment: Commitment = Commitment.PROCESSED) -> int:
        account = self._account_at(str(pubkey), commitment)
        return 0 if account is None else account.lamports

    def program_accounts(
        self, owner: Pubkey, commitment: Commitment = Commitment.PROCESSED
    ) -> list[tuple[Pubkey, Account]]:
        """Every account owned by `owner` at `commitment`, sorted by address."""
        found = dict(self._svm.get_program_accounts(owner))
        if commitment is not Commitment.PROCESSED:
            for key in self._versions:
                pubkey = Pubkey.from_string(key)
                account = self._account_at(key, commitment)
                if account is not None and account.owner == owner:
                    found[pubkey] = account
                else:
                    found.pop(pubkey, None)
        return sorted(
            ((key, account) for key, account in found.items() if account.lamports > 0),
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

    def front_run_next_send(self, tx: VersionedTransaction) -> None:
        """Test control: `tx` lands right after the next send passed its preflight and before
        that send executes, as another user's transaction may on a cluster (so a transaction
        can pass preflight and then fail on chain)."""
        self._front_run.append(tx)

    def _age_error(self, tx: VersionedTransaction) -> str | None:
        """What a bank's age and status-cache checks say of `tx` (None: it may run)."""
        if not self.is_blockhash_valid(tx.message.recent_blockhash, height=self._landing_height):
            return "BlockhashNotFound"
        if str(tx.signatures[0]) in self._status_cache:
            return "AlreadyProcessed"
        return None

    def simulate_transaction(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = False,
        replace_recent_blockhash: bool = False,
        commitment: Commitment = Commitment.PROCESSED,
    ) -> SimulationResult:
        """Run `tx` against the state at `commitment` without committing anything.

        Like a validator's preflight, which runs against the bank of the preflight commitment:
        a transaction that passes at confirmed can still fail on the newer processed state."""
        if replace_recent_blockhash:
            tx = VersionedTransaction.populate(
                _with_blockhash(tx.message, self._blockhash.value), tx.signatures
            )
            sig_verify = False
        else:
            refused = self._age_error(tx)
            if refused is not None:
                return SimulationResult(refused, [], 0, 0, None, [], {})
        self._svm.with_sigverify(sig_verify)
        try:
            with self._state_at(commitment, tx.message):
                outcome = self._svm.simulate_transaction(tx)
        finally:
            self._svm.with_sigverify(True)
            fpu.restore_x87()
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

    @contextlib.contextmanager
    def _state_at(self, commitment: Commitment, message: VersionedMessage) -> Iterator[None]:
        """Within the block, the message's accounts hold their state at `commitment`."""
        keys = [str(key) for key in message.account_keys]
        keys += [key for group in self.loaded_addresses(message) for key in group]
        current: dict[str, Account | None] = {}
        if commitment is not Commitment.PROCESSED:
            for key in dict.fromkeys(keys):
                if key not in self._versions:
                    continue
                older = self._account_at(key, commitment)
                now = self._svm.get_account(Pubkey.from_string(key))
                if older != now:
                    current[key] = now
                    self._svm.set_account(Pubkey.from_string(key), older or _NO_ACCOUNT)
        try:
            yield
        finally:
            for key, account in current.items():
                self._svm.set_account(Pubkey.from_string(key), account or _NO_ACCOUNT)

    def send_transaction(
        self,
        tx: VersionedTransaction,
        *,
        skip_preflight: bool = False,
        preflight_commitment: Commitment = Commitment.PROCESSED,
    ) -> Signature:
        """Execute `tx` (in the working slot, or a new one per transaction in the deterministic
        timing) unless dropped; returns its signature either way.

        Like a validator, a transaction that cannot land (expired blockhash, already processed,
        unknown fee payer) is accepted without preflight and simply never appears in the history.
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
            preflight = self.simulate_transaction(
                tx, sig_verify=True, commitment=preflight_commitment
            )
            if preflight.err is not None:
                raise PreflightFailureError(preflight)
        front_run, self._front_run = self._front_run, []
        for other in front_run:
            self._land(other)
        self._land(tx)
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

    def _land(self, tx: VersionedTransaction) -> None:
        if self._age_error(tx) is not None:
            return  # a bank drops it: no block, no history
        if self.timing.slot_per_transaction:
            self._move_to_slot(self._slot + 1)
        self._run(tx)

    def _run(self, tx: VersionedTransaction) -> None:
        writable, readonly = self.loaded_addresses(tx.message)
        keys = [str(key) for key in tx.message.account_keys] + writable + readonly
        before = {key: self._svm.get_account(Pubkey.from_string(key)) for key in keys}
        pre_balances = [_lamports(before[key]) for key in keys]
        try:
            outcome = self._svm.send_transaction(tx)
        finally:
            fpu.restore_x87()
        signature = tx.signatures[0]
        if self._svm.get_transaction(signature) is None:
            self.save()
            return
        if isinstance(outcome, FailedTransactionMetadata):
            meta, err = outcome.meta(), error_to_json(outcome.err())
        else:
            meta, err = outcome, None
        after = {key: self._svm.get_account(Pubkey.from_string(key)) for key in keys}
        for key, account in after.items():
            if account != before[key]:
                self._remember_version(key, before[key])
        self._seq += 1
        record = TxRecord(
            signature=str(signature),
            seq=self._seq,
            slot=self._slot,
            block_time=self._slot_time,
            err=err,
            logs=meta.logs(),
            fee=meta.fee(),
            compute_units=meta.compute_units_consumed(),
            account_keys=keys,
            loaded_writable=writable,
            loaded_readonly=readonly,
            pre_balances=pre_balances,
            post_balances=[_lamports(after[key]) for key in keys],
            inner_instructions=_inner_instructions_json(meta),
            return_data=_return_data_json(meta),
            raw=bytes(tx),
        )
        self._status_cache[record.signature] = self._blockhashes[
            tx.message.recent_blockhash
        ].last_valid_block_height
        self._history.add(record)
        self._history.unconfirmed.append(record)
        self._known_keys.update(keys)
        self.save()
        self._emit(ChainEvent(Commitment.PROCESSED, record))
        self._settle()

    def _remember_version(self, key: str, before: Account | None) -> None:
        versions = self._versions.setdefault(key, [])
        if versions and versions[-1][0] == self._slot:
            return  # the slot's first change already kept the state before the slot
        versions.append((self._slot, before))
        self._version_order.append((self._slot, key))

    # ----------------------------------------------------------------- history
    def get_record(self, signature: str) -> TxRecord | None:
        return self._history.records.get(signature)

    def commitment_of(self, record: TxRecord) -> Commitment:
        if record.slot <= self._visible_slot(Commitment.FINALIZED):
            return Commitment.FINALIZED
        if record.slot <= self._visible_slot(Commitment.CONFIRMED):
            return Commitment.CONFIRMED
        return Commitment.PROCESSED

    def confirmations(self, record: TxRecord) -> int | None:
        """Blocks built on top of the record's slot; None once finalized (Solana's convention)."""
        if self.commitment_of(record) is Commitment.FINALIZED:
            return None
        return self._slot - record.slot

    def is_visible(self, record: TxRecord, commitment: Commitment) -> bool:
        return self.commitment_of(record).rank >= commitment.rank

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

        An unknown `before` gives an empty page and an unknown `until` no bound, as on Solana
        (so a bound pruned from the history lists everything the node still has).
        """
        before_seq = self._seq_of(before)
        if before is not None and before_seq is None:
            return []
        until_seq = self._seq_of(until)
        found: list[TxRecord] = []
        for record in reversed(self._history.by_address.get(address, ())):
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
            "first_available_slot": self._first_available_slot,
            "blockhash": {
                "value": str(self._blockhash.value),
                "generation": self._generation,
                "valid": [
                    [str(entry.value), entry.slot, entry.last_valid_block_height]
                    for entry in self._blockhashes.values()
                ],
            },
            "versions": [
                [slot, key, None if before is None else _account_to_json(before)]
                for key, versions in self._versions.items()
                for slot, before in versions
            ],
            "programs": self._programs,
            "known_keys": sorted(self._known_keys),
            "accounts": accounts,
            "transactions": [record.to_json() for record in self._history.records.values()],
        }
        _write_atomically(path, json.dumps(snapshot, separators=(",", ":")).encode())

    def _restore(self, snapshot: dict[str, Any]) -> None:
        version = snapshot.get("version")
        if version not in _READABLE_SNAPSHOTS:
            raise ValueError(f"unsupported local chain snapshot version {version}")
        for key in snapshot["programs"]:
            self._svm.add_program(Pubkey.from_string(key), self._program_path(key).read_bytes())
            self._programs.append(key)
        for key, data in snapshot["accounts"].items():
            self._svm.set_account(Pubkey.from_string(key), _account_from_json(data))
        self._known_keys = set(snapshot["known_keys"])
        self._slot = snapshot["slot"]
        self._timestamp_offset = snapshot["timestamp_offset"]
        self._seq = snapshot["seq"]
        self._airdrops = snapshot["airdrops"]
        self._drop_next_sends = snapshot["drop_next_sends"]
        self._first_available_slot = snapshot.get("first_available_slot", 0)
        self._blockhashes.clear()
        if version == 1:
            # Version 1 kept LiteSVM's own blockhash sequence; it restarts with a fresh one.
            self._generation = 0
            self._blockhash = self._issue_blockhash()
        else:
            self._restore_blockhashes(snapshot["blockhash"])
        for slot, key, data in sorted(snapshot.get("versions", []), key=lambda item: item[0]):
            before = None if data is None else _account_from_json(data)
            self._versions.setdefault(key, []).append((slot, before))
            self._version_order.append((slot, key))
        for data in sorted(snapshot["transactions"], key=lambda item: item["seq"]):
            record = TxRecord.from_json(data)
            self._history.add(record)
            blockhash = self._blockhashes.get(record.transaction().message.recent_blockhash)
            if blockhash is not None:
                self._status_cache[record.signature] = blockhash.last_valid_block_height
            if self.commitment_of(record) is not Commitment.FINALIZED:
                self._history.unconfirmed.append(record)
        # Transactions that were confirmed before the stop are announced as confirmed again:
        # listeners are new, and only transactions not yet finalized can still change.
        self._set_clock()
        self._settle()

    def _restore_blockhashes(self, saved: dict[str, Any]) -> None:
        self._generation = saved["generation"]
        for value, slot, last_valid in saved["valid"]:
            entry = _Blockhash(Hash.from_string(value), slot, last_valid)
            if entry.value != derive_blockhash(slot, self._generation):
                raise ValueError("the snapshot's blockhash sequence is not this chain's")
            self._blockhashes[entry.value] = entry
        current = Hash.from_string(saved["value"])
        if current not in self._blockhashes:
            raise ValueError("the snapshot's current blockhash is not among its valid ones")
        self._blockhash = self._blockhashes[current]


def _lamports(account: Account | None) -> int:
    return 0 if account is None else account.lamports


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
