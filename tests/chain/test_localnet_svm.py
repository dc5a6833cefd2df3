"""LocalChain: slots, clock, history, commitment, blockhash expiry, controls and persistence."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import struct
from pathlib import Path

import pytest
from solders.account import Account
from solders.hash import Hash
from solders.instruction import AccountMeta, CompiledInstruction, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageHeader, MessageV0, MessageV1
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import (
    CreateAccountParams,
    TransferParams,
    create_account,
    transfer,
)
from solders.transaction import VersionedTransaction

from marketd.chain.localnet.svm import (
    BLOCKHASH_LIFETIME,
    FAUCET_KEYPAIR,
    FINALITY_DEPTH,
    ChainEvent,
    ChainTiming,
    Commitment,
    InvalidTransactionError,
    LocalChain,
    PreflightFailureError,
    SignatureVerificationError,
    _write_atomically,
    derive_blockhash,
    describe_transaction_error,
)

SOL = 1_000_000_000
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
LOOKUP_TABLE_PROGRAM = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def memo_program_elf() -> bytes:
    """A real SBF program to deploy: LiteSVM ships SPL Memo v3 as a loader-v2 ELF account."""
    account = LiteSVM().get_account(MEMO_PROGRAM)
    assert account is not None and account.data[:4] == b"\x7fELF"
    return account.data


def signed(chain: LocalChain, payer: Keypair, *instructions: Instruction) -> VersionedTransaction:
    blockhash, _ = chain.latest_blockhash
    return VersionedTransaction(
        Message.new_with_blockhash(list(instructions), payer.pubkey(), blockhash), [payer]
    )


def transfer_ix(source: Keypair, destination: Pubkey, lamports: int) -> Instruction:
    return transfer(
        TransferParams(from_pubkey=source.pubkey(), to_pubkey=destination, lamports=lamports)
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chain(clock: FakeClock) -> LocalChain:
    return LocalChain(now=clock)


@pytest.fixture
def funded(chain: LocalChain) -> Keypair:
    payer = Keypair()
    chain.airdrop(payer.pubkey(), 10 * SOL)
    return payer


def test_airdrop_is_a_recorded_transaction_in_a_new_slot(chain: LocalChain) -> None:
    recipient = Keypair().pubkey()
    start = chain.slot
    signature = chain.airdrop(recipient, 3 * SOL)
    record = chain.get_record(str(signature))
    assert record is not None
    assert chain.get_balance(recipient) == 3 * SOL
    assert record.slot == start + 1 == chain.slot
    assert record.err is None
    assert str(recipient) in record.account_keys
    index = record.account_keys.index(str(recipient))
    assert record.post_balances[index] - record.pre_balances[index] == 3 * SOL


def test_identical_airdrops_get_distinct_signatures(chain: LocalChain) -> None:
    recipient = Keypair().pubkey()
    first = chain.airdrop(recipient, SOL)
    second = chain.airdrop(recipient, SOL)
    assert first != second
    assert chain.get_balance(recipient) == 2 * SOL


def test_each_transaction_advances_the_slot_and_stamps_the_clock(
    chain: LocalChain, funded: Keypair, clock: FakeClock
) -> None:
    clock.now += 42
    before = chain.slot
    signature = chain.send_transaction(
        signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    )
    record = chain.get_record(str(signature))
    assert record is not None
    assert record.slot == before + 1
    assert record.block_time == int(clock.now)
    assert record.fee == 5000
    assert record.logs[-1] == "Program 11111111111111111111111111111111 success"


def test_set_unix_timestamp_moves_time_and_keeps_following_the_wall_clock(
    chain: LocalChain, funded: Keypair, clock: FakeClock
) -> None:
    chain.set_unix_timestamp(2_000_000_000)
    assert chain.unix_timestamp == 2_000_000_000
    clock.now += 10
    signature = chain.send_transaction(
        signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    )
    record = chain.get_record(str(signature))
    assert record is not None and record.block_time == 2_000_000_010


def test_deterministic_commitment_goes_confirmed_at_once_then_finalized_and_listeners_hear_all(
    chain: LocalChain, funded: Keypair
) -> None:
    events: list[ChainEvent] = []
    remove = chain.add_listener(events.append)
    signature = chain.send_transaction(
        signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    )
    record = chain.get_record(str(signature))
    assert record is not None
    assert chain.commitment_of(record) is Commitment.CONFIRMED
    assert chain.confirmations(record) == 0
    assert [(e.commitment, e.record.signature) for e in events] == [
        (Commitment.PROCESSED, str(signature)),
        (Commitment.CONFIRMED, str(signature)),
    ]
    chain.advance_slots(FINALITY_DEPTH - 1)
    assert chain.confirmations(record) == FINALITY_DEPTH - 1
    assert not chain.is_visible(record, Commitment.FINALIZED)
    chain.advance_slots(1)
    assert chain.commitment_of(record) is Commitment.FINALIZED
    assert chain.confirmations(record) is None
    assert chain.is_visible(record, Commitment.FINALIZED)
    # The funding airdrop (one slot older) finalized first, then this transfer.
    assert [e.commitment for e in events] == [
        Commitment.PROCESSED,
        Commitment.CONFIRMED,
        Commitment.FINALIZED,
        Commitment.FINALIZED,
    ]
    assert events[-1].record.signature == str(signature)
    assert events[-2].record.slot == record.slot - 1
    remove()
    remove()
    chain.airdrop(Pubkey.new_unique(), SOL)
    assert len(events) == 4


def test_slot_at_finalized_lags_by_the_finality_depth(chain: LocalChain) -> None:
    chain.advance_slots(5)
    assert chain.slot_at(Commitment.FINALIZED) == 0
    chain.advance_slots(FINALITY_DEPTH)
    assert chain.slot_at(Commitment.CONFIRMED) == chain.slot == chain.block_height
    assert chain.slot_at(Commitment.FINALIZED) == chain.slot - FINALITY_DEPTH
    with pytest.raises(ValueError, match="backwards"):
        chain.advance_slots(-1)


def test_failed_transaction_lands_with_solana_error_json_and_pays_the_fee(
    chain: LocalChain, funded: Keypair
) -> None:
    before = chain.get_balance(funded.pubkey())
    tx = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), 1000 * SOL))
    signature = chain.send_transaction(tx, skip_preflight=True)
    record = chain.get_record(str(signature))
    assert record is not None
    assert record.err == {"InstructionError": [0, {"Custom": 1}]}
    assert chain.get_balance(funded.pubkey()) == before - 5000
    assert record.pre_balances[0] - record.post_balances[0] == 5000


def test_preflight_failure_reports_the_simulation_and_executes_nothing(
    chain: LocalChain, funded: Keypair
) -> None:
    slot = chain.slot
    tx = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), 1000 * SOL))
    with pytest.raises(PreflightFailureError) as failure:
        chain.send_transaction(tx)
    assert failure.value.result.err == {"InstructionError": [0, {"Custom": 1}]}
    assert str(failure.value) == "Error processing Instruction 0: custom program error: 0x1"
    assert any("insufficient lamports" in line for line in failure.value.result.logs)
    assert chain.slot == slot
    assert chain.get_record(str(tx.signatures[0])) is None


def test_resending_a_landed_transaction_is_idempotent_or_already_processed(
    chain: LocalChain, funded: Keypair
) -> None:
    destination = Pubkey.new_unique()
    tx = signed(chain, funded, transfer_ix(funded, destination, SOL))
    first = chain.send_transaction(tx)
    slot = chain.slot
    assert chain.send_transaction(tx, skip_preflight=True) == first
    assert chain.slot == slot
    assert chain.get_balance(destination) == SOL
    with pytest.raises(PreflightFailureError) as failure:
        chain.send_transaction(tx)
    assert failure.value.result.err == "AlreadyProcessed"
    assert str(failure.value) == "This transaction has already been processed"


def test_signature_and_sanitize_failures_are_rejected_before_anything_runs(
    chain: LocalChain, funded: Keypair
) -> None:
    good = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    forged = VersionedTransaction.populate(good.message, [Signature.new_unique()])
    with pytest.raises(SignatureVerificationError):
        chain.send_transaction(forged, skip_preflight=True)
    blockhash, _ = chain.latest_blockhash
    broken = Message.new_with_compiled_instructions(
        1, 0, 0, [funded.pubkey()], blockhash, [CompiledInstruction(7, b"", b"")]
    )
    with pytest.raises(InvalidTransactionError):
        chain.send_transaction(VersionedTransaction(broken, [funded]))


def test_dropped_sends_return_a_signature_but_never_execute(
    chain: LocalChain, funded: Keypair
) -> None:
    destination = Pubkey.new_unique()
    chain.drop_next_sends(1)
    dropped = signed(chain, funded, transfer_ix(funded, destination, SOL))
    assert chain.send_transaction(dropped) == dropped.signatures[0]
    assert chain.get_record(str(dropped.signatures[0])) is None
    assert chain.get_balance(destination) == 0
    # The very same bytes sent again (an outbox retry) now land.
    chain.send_transaction(dropped)
    assert chain.get_record(str(dropped.signatures[0])) is not None
    assert chain.get_balance(destination) == SOL


def test_blockhash_expires_after_its_last_valid_block_height(
    chain: LocalChain, funded: Keypair
) -> None:
    blockhash, last_valid = chain.latest_blockhash
    tx = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    chain.advance_slots(last_valid - chain.block_height)
    assert chain.is_blockhash_valid(blockhash)
    chain.advance_slots(1)
    assert not chain.is_blockhash_valid(blockhash)
    new_hash, new_last_valid = chain.latest_blockhash
    assert new_hash != blockhash
    assert new_last_valid == chain.block_height + BLOCKHASH_LIFETIME
    with pytest.raises(PreflightFailureError) as failure:
        chain.send_transaction(tx)
    assert failure.value.result.err == "BlockhashNotFound"
    assert describe_transaction_error("BlockhashNotFound") == "Blockhash not found"
    # Without preflight the RPC accepts it, but it never lands.
    assert chain.send_transaction(tx, skip_preflight=True) == tx.signatures[0]
    assert chain.get_record(str(tx.signatures[0])) is None


def test_expire_blockhash_control_invalidates_signed_transactions(
    chain: LocalChain, funded: Keypair
) -> None:
    tx = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    assert chain.fee_for_message(tx.message) == 5000
    chain.expire_blockhash()
    assert chain.fee_for_message(tx.message) is None
    result = chain.simulate_transaction(tx)
    assert result.err == "BlockhashNotFound"


def test_simulation_can_replace_the_blockhash_and_skips_signatures(
    chain: LocalChain, funded: Keypair
) -> None:
    destination = Pubkey.new_unique()
    tx = signed(chain, funded, transfer_ix(funded, destination, SOL))
    chain.expire_blockhash()
    result = chain.simulate_transaction(tx, replace_recent_blockhash=True)
    assert result.err is None
    assert result.post_accounts[destination].lamports == SOL
    assert chain.get_balance(destination) == 0
    v0 = VersionedTransaction(
        MessageV0.try_compile(
            funded.pubkey(), [transfer_ix(funded, destination, SOL)], [], Hash.default()
        ),
        [funded],
    )
    assert chain.simulate_transaction(v0, replace_recent_blockhash=True).err is None
    unsigned = VersionedTransaction.populate(tx.message, [Signature.default()])
    assert chain.simulate_transaction(unsigned, replace_recent_blockhash=True).err is None
    v1 = VersionedTransaction.populate(MessageV1.default(), [])
    with pytest.raises(InvalidTransactionError):
        chain.simulate_transaction(v1, replace_recent_blockhash=True)


def test_simulating_a_landed_transaction_reports_already_processed(
    chain: LocalChain, funded: Keypair
) -> None:
    tx = signed(chain, funded, transfer_ix(funded, Pubkey.new_unique(), SOL))
    chain.send_transaction(tx)
    assert chain.simulate_transaction(tx).err == "AlreadyProcessed"


def test_signatures_for_address_pages_newest_first(chain: LocalChain, funded: Keypair) -> None:
    destination = Pubkey.new_unique()
    sent = [
        str(
            chain.send_transaction(signed(chain, funded, transfer_ix(funded, destination, SOL + n)))
        )
        for n in range(5)
    ]
    address = str(destination)
    page = chain.signatures_for_address(address, limit=2, commitment=Commitment.CONFIRMED)
    assert [r.signature for r in page] == [sent[4], sent[3]]
    page = chain.signatures_for_address(
        address, before=sent[3], limit=2, commitment=Commitment.CONFIRMED
    )
    assert [r.signature for r in page] == [sent[2], sent[1]]
    page = chain.signatures_for_address(
        address, before=sent[4], until=sent[1], commitment=Commitment.CONFIRMED
    )
    assert [r.signature for r in page] == [sent[3], sent[2]]
    assert chain.signatures_for_address(address, commitment=Commitment.FINALIZED) == []
    assert chain.signatures_for_address(address, before=str(Signature.new_unique())) == []
    chain.advance_slots(FINALITY_DEPTH - 2)
    finalized = chain.signatures_for_address(address)
    assert [r.signature for r in finalized] == [sent[2], sent[1], sent[0]]
    assert sorted(r.signature for r in chain.records()) == sorted(
        [*sent, *(r.signature for r in chain.records() if r.signature not in sent)]
    )


def test_program_accounts_lists_accounts_created_by_transactions_and_fixtures(
    chain: LocalChain, funded: Keypair
) -> None:
    program = Pubkey.new_unique()
    created = Keypair()
    rent = chain.minimum_balance_for_rent_exemption(16)
    ix = create_account(
        CreateAccountParams(
            from_pubkey=funded.pubkey(),
            to_pubkey=created.pubkey(),
            lamports=rent,
            space=16,
            owner=program,
        )
    )
    blockhash, _ = chain.latest_blockhash
    tx = VersionedTransaction(
        Message.new_with_blockhash([ix], funded.pubkey(), blockhash), [funded, created]
    )
    chain.send_transaction(tx)
    fixture = Pubkey.new_unique()
    chain.set_account(fixture, Account(rent, b"\x01" * 16, program, False, 0))
    chain.set_account(Pubkey.new_unique(), Account(0, b"", program, False, 0))
    found = dict(chain.program_accounts(program))
    assert set(found) == {created.pubkey(), fixture}
    assert found[created.pubkey()].data == bytes(16)
    assert chain.get_account(Pubkey.new_unique()) is None


def test_address_lookup_tables_are_resolved_into_the_record(
    chain: LocalChain, funded: Keypair
) -> None:
    table = Pubkey.new_unique()
    destination = Pubkey.new_unique()
    meta = struct.pack("<IQQB", 1, 2**64 - 1, 0, 0) + b"\x00" * 33 + b"\x00\x00"
    chain.set_account(
        table, Account(SOL, meta + bytes(destination), LOOKUP_TABLE_PROGRAM, False, 0)
    )
    chain.advance_slots(1)
    blockhash, _ = chain.latest_blockhash
    from solders.address_lookup_table_account import AddressLookupTableAccount

    message = MessageV0.try_compile(
        funded.pubkey(),
        [transfer_ix(funded, destination, SOL)],
        [AddressLookupTableAccount(table, [destination])],
        blockhash,
    )
    signature = chain.send_transaction(VersionedTransaction(message, [funded]))
    record = chain.get_record(str(signature))
    assert record is not None and record.err is None
    assert record.loaded_writable == [str(destination)]
    assert str(destination) in record.account_keys
    assert chain.get_balance(destination) == SOL
    assert chain.signatures_for_address(str(destination), commitment=Commitment.CONFIRMED)


def test_inner_instructions_and_return_data_are_recorded(
    chain: LocalChain, funded: Keypair
) -> None:
    mint = Pubkey.new_unique()
    mint_data = struct.pack("<I32sQBBI32s", 0, bytes(32), 0, 6, 1, 0, bytes(32))
    chain.set_account(mint, Account(SOL, mint_data, TOKEN_PROGRAM, False, 0))
    owner = Pubkey.new_unique()
    ata, _ = Pubkey.find_program_address(
        [bytes(owner), bytes(TOKEN_PROGRAM), bytes(mint)], ATA_PROGRAM
    )
    create_ata = Instruction(
        ATA_PROGRAM,
        b"",
        [
            AccountMeta(funded.pubkey(), True, True),
            AccountMeta(ata, False, True),
            AccountMeta(owner, False, False),
            AccountMeta(mint, False, False),
            AccountMeta(Pubkey.default(), False, False),
            AccountMeta(TOKEN_PROGRAM, False, False),
        ],
    )
    record = chain.get_record(str(chain.send_transaction(signed(chain, funded, create_ata))))
    assert record is not None and record.err is None
    assert record.inner_instructions[0]["index"] == 0
    inner = record.inner_instructions[0]["instructions"]
    assert {item["stackHeight"] for item in inner} == {2}
    assert len(inner) >= 2
    data_size = Instruction(TOKEN_PROGRAM, bytes([21]), [AccountMeta(mint, False, False)])
    simulated = chain.simulate_transaction(signed(chain, funded, data_size))
    assert simulated.return_data == {
        "programId": str(TOKEN_PROGRAM),
        "data": ["pQAAAAAAAAA=", "base64"],
    }
    landed = chain.get_record(str(chain.send_transaction(signed(chain, funded, data_size))))
    assert landed is not None and landed.return_data == simulated.return_data


def _sqlite_max_of(text: str) -> float:
    with contextlib.closing(sqlite3.connect(":memory:")) as connection:
        [value] = connection.execute("SELECT max(CAST(? AS REAL))", (text,)).fetchone()
    return float(value)


def test_a_program_run_leaves_the_floating_point_state_as_it_found_it(
    chain: LocalChain, funded: Keypair
) -> None:
    """The SPL programs, run by LiteSVM in this process, left the x87 stack full: SQLite's
    `long double` max() then gave NaN (NULL), the embedded backend's NULL chart `high`."""
    mint = Pubkey.new_unique()
    mint_data = struct.pack("<I32sQBBI32s", 0, bytes(32), 0, 6, 1, 0, bytes(32))
    chain.set_account(mint, Account(SOL, mint_data, TOKEN_PROGRAM, False, 0))

    def create_ata() -> VersionedTransaction:
        owner = Pubkey.new_unique()
        ata, _ = Pubkey.find_program_address(
            [bytes(owner), bytes(TOKEN_PROGRAM), bytes(mint)], ATA_PROGRAM
        )
        metas = [(funded.pubkey(), True, True), (ata, False, True), (owner, False, False)]
        metas += [(mint, False, False), (Pubkey.default(), False, False)]
        metas += [(TOKEN_PROGRAM, False, False)]
        accounts = [AccountMeta(key, signer, writable) for key, signer, writable in metas]
        return signed(chain, funded, Instruction(ATA_PROGRAM, b"", accounts))

    assert _sqlite_max_of("0.929007731") == 0.929007731
    assert chain.simulate_transaction(create_ata()).err is None
    assert _sqlite_max_of("0.929007731") == 0.929007731
    record = chain.get_record(str(chain.send_transaction(create_ata())))
    assert record is not None and record.err is None
    assert _sqlite_max_of("0.929007731") == 0.929007731


def test_a_restart_from_the_data_dir_sees_the_same_chain(tmp_path: Path, clock: FakeClock) -> None:
    first = LocalChain(tmp_path, now=clock)
    payer = Keypair()
    memo_id = Pubkey.new_unique()
    first.load_program(memo_id, memo_program_elf())
    airdrop = first.airdrop(payer.pubkey(), 5 * SOL)
    fixture = Pubkey.new_unique()
    first.set_account(fixture, Account(SOL, b"state", memo_id, False, 0))
    first.advance_slots(FINALITY_DEPTH + 3)
    memo = Instruction(memo_id, b"hello", [])
    pending = first.send_transaction(signed(first, payer, memo))
    first.expire_blockhash()
    first.set_unix_timestamp(1_800_000_000)
    first.drop_next_sends(2)

    second = LocalChain(tmp_path, now=clock)
    assert second.slot == first.slot
    assert second.latest_blockhash == first.latest_blockhash
    assert second.unix_timestamp == 1_800_000_000
    assert second.get_balance(payer.pubkey()) == first.get_balance(payer.pubkey())
    account = second.get_account(fixture)
    assert account is not None and account.data == b"state"
    old = second.get_record(str(airdrop))
    assert old is not None and second.commitment_of(old) is Commitment.FINALIZED
    record = second.get_record(str(pending))
    assert record is not None and any("hello" in line for line in record.logs)
    assert second.signatures_for_address(str(payer.pubkey()), commitment=Commitment.CONFIRMED)
    # Events for transactions that were unfinalized at the restart still fire.
    events: list[ChainEvent] = []
    second.add_listener(events.append)
    second.advance_slots(FINALITY_DEPTH)
    assert [e.record.signature for e in events] == [str(pending)]
    # The deployed program came back, and the pending drop count too.
    again = signed(second, payer, Instruction(memo_id, b"again", []))
    assert second.send_transaction(again) == again.signatures[0]
    assert second.send_transaction(again) == again.signatures[0]
    assert second.get_record(str(again.signatures[0])) is None
    third = signed(second, payer, Instruction(memo_id, b"third", []))
    landed = second.get_record(str(second.send_transaction(third)))
    assert landed is not None and landed.err is None


def test_a_program_file_path_can_be_loaded(tmp_path: Path) -> None:
    path = tmp_path / "memo.so"
    path.write_bytes(memo_program_elf())
    chain = LocalChain()
    program = Pubkey.new_unique()
    chain.load_program(program, path)
    chain.load_program(program, path)
    payer = Keypair()
    chain.airdrop(payer.pubkey(), SOL)
    record = chain.get_record(
        str(chain.send_transaction(signed(chain, payer, Instruction(program, b"x", []))))
    )
    assert record is not None and record.err is None


def test_unknown_snapshot_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "chain.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        LocalChain(tmp_path)


def test_a_snapshot_with_a_foreign_blockhash_is_refused(tmp_path: Path) -> None:
    LocalChain(tmp_path).expire_blockhash()
    snapshot = json.loads((tmp_path / "chain.json").read_text())
    snapshot["blockhash"]["value"] = str(Hash.new_unique())
    (tmp_path / "chain.json").write_text(json.dumps(snapshot))
    with pytest.raises(ValueError, match="blockhash"):
        LocalChain(tmp_path)


def test_error_descriptions_cover_the_common_shapes() -> None:
    assert describe_transaction_error("InsufficientFundsForFee") == "Insufficient funds for fee"
    assert describe_transaction_error("SomethingNew") == "SomethingNew"
    assert (
        describe_transaction_error({"InstructionError": [2, "InvalidAccountData"]})
        == 'Error processing Instruction 2: "InvalidAccountData"'
    )
    assert (
        describe_transaction_error({"InsufficientFundsForRent": {"account_index": 1}})
        == '{"InsufficientFundsForRent": {"account_index": 1}}'
    )


def test_message_header_is_used_for_fees(chain: LocalChain) -> None:
    blockhash, _ = chain.latest_blockhash
    two_signers = Message.new_with_compiled_instructions(
        2, 0, 1, [Pubkey.new_unique(), Pubkey.new_unique(), Pubkey.default()], blockhash, []
    )
    assert chain.fee_for_message(two_signers) == 10_000
    assert MessageHeader(2, 0, 1) == two_signers.header


def test_a_failed_snapshot_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "child").write_text("x")
    with pytest.raises(OSError):
        _write_atomically(target, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]


def test_a_blockhash_lands_up_to_its_last_valid_block_height_and_not_after(
    tmp_path: Path,
) -> None:
    """In the deterministic timing a transaction lands in the next block: one sent at
    height last_valid - 1 lands in the blockhash's last valid block, one sent later expires."""
    chain = LocalChain(tmp_path)
    payer = Keypair()
    chain.airdrop(payer.pubkey(), 10**9)
    blockhash, last_valid = chain.latest_blockhash

    def send() -> VersionedTransaction:
        transfer_ix = transfer(
            TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=10**7)
        )
        message = Message.new_with_blockhash([transfer_ix], payer.pubkey(), blockhash)
        tx = VersionedTransaction(message, [payer])
        chain.send_transaction(tx, skip_preflight=True)
        return tx

    chain.advance_slots(last_valid - 1 - chain.block_height)
    landed = send()
    record = chain.get_record(str(landed.signatures[0]))
    assert record is not None and record.err is None and record.slot == last_valid
    late = send()
    assert chain.get_record(str(late.signatures[0])) is None
    assert chain.latest_blockhash[0] != blockhash  # a new one every slot
    reloaded = LocalChain(tmp_path)
    assert reloaded.latest_blockhash == chain.latest_blockhash


def test_a_snapshot_whose_blockhashes_are_not_derived_here_is_refused(tmp_path: Path) -> None:
    LocalChain(tmp_path).advance_slots(3)
    snapshot = json.loads((tmp_path / "chain.json").read_text())
    snapshot["blockhash"]["valid"][0][0] = str(Hash.new_unique())
    (tmp_path / "chain.json").write_text(json.dumps(snapshot))
    with pytest.raises(ValueError, match="blockhash sequence"):
        LocalChain(tmp_path)


def test_a_version_1_snapshot_is_restored_with_fresh_blockhashes(tmp_path: Path) -> None:
    first = LocalChain(tmp_path)
    recipient = Keypair().pubkey()
    signature = first.airdrop(recipient, SOL)
    snapshot = json.loads((tmp_path / "chain.json").read_text())
    snapshot["version"] = 1
    snapshot["blockhash"] = {"value": "x", "last_valid_block_height": 150, "expirations": 0}
    del snapshot["versions"], snapshot["first_available_slot"]
    (tmp_path / "chain.json").write_text(json.dumps(snapshot))
    restored = LocalChain(tmp_path)
    assert restored.get_balance(recipient) == SOL
    assert restored.get_record(str(signature)) is not None
    assert restored.latest_blockhash == (derive_blockhash(restored.slot, 0), restored.slot + 150)


def test_reads_at_a_commitment_survive_a_restart(tmp_path: Path) -> None:
    timing = ChainTiming.cluster()
    chain = LocalChain(tmp_path, timing=timing)
    recipient = Keypair().pubkey()
    chain.airdrop(recipient, SOL)
    chain.advance_slots(1)
    restarted = LocalChain(tmp_path, timing=timing)
    assert restarted.get_balance(recipient, Commitment.PROCESSED) == SOL
    assert restarted.get_balance(recipient, Commitment.CONFIRMED) == 0  # lands 2 slots later
    assert restarted.get_account(recipient, Commitment.FINALIZED) is None
    confirmed = dict(restarted.program_accounts(Pubkey.default(), Commitment.CONFIRMED))
    processed = dict(restarted.program_accounts(Pubkey.default()))
    assert set(processed) - set(confirmed) == {recipient}
    faucet = FAUCET_KEYPAIR.pubkey()
    assert confirmed[faucet].lamports == processed[faucet].lamports + SOL + 5000
    restarted.advance_slots(1)
    assert restarted.get_balance(recipient, Commitment.CONFIRMED) == SOL


def test_slot_per_transaction_can_be_asked_for_in_a_cluster_timing() -> None:
    chain = LocalChain(timing=ChainTiming.cluster())
    start = chain.slot
    with chain.slot_per_transaction():
        chain.airdrop(Keypair().pubkey(), SOL)
        chain.airdrop(Keypair().pubkey(), SOL)
    chain.airdrop(Keypair().pubkey(), SOL)
    assert [record.slot for record in chain.records()] == [start + 1, start + 2, start + 2]
    with pytest.raises(ValueError):
        chain.tick(-1)
