"""The backend key and `ChainClient` against the real local chain over JSON-RPC."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import base58
import pytest
from pydantic import SecretStr
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless

from marketd.chain.client import ChainClient, SignatureState
from marketd.chain.errors import (
    BlockhashExpired,
    ConfirmationTimeout,
    ProgramError,
    RpcRejected,
    RpcUnavailable,
    TransactionFailed,
)
from marketd.chain.keys import BackendKey, KeypairError, backend_key, load_keypair, parse_keypair
from marketd.config import Settings
from marketd.shared.market_state import MarketState

SOL = 1_000_000_000

# ----------------------------------------------------------------------------- keys


def test_keypair_from_base58_json_and_file(tmp_path: Path) -> None:
    keypair = Keypair()
    as_base58 = base58.b58encode(bytes(keypair)).decode()
    as_json = json.dumps(list(bytes(keypair)))
    assert parse_keypair(as_base58) == keypair
    assert parse_keypair(f"  {as_json}\n") == keypair
    path = tmp_path / "backend.json"
    path.write_text(as_json)
    assert load_keypair(path).pubkey == keypair.pubkey()
    assert load_keypair(str(path)).pubkey == keypair.pubkey()
    assert load_keypair(SecretStr(as_base58)).signer == keypair
    settings = Settings(backend_keypair=SecretStr(as_json))
    assert backend_key(settings).pubkey == keypair.pubkey()
    settings_with_path = Settings(backend_keypair=SecretStr(str(path)))
    assert backend_key(settings_with_path).pubkey == keypair.pubkey()


@pytest.mark.parametrize(
    "show", [repr, str, "{}".format, lambda key: repr([key])], ids=["repr", "str", "format", "list"]
)
def test_backend_key_never_shows_its_secret(show: Callable[[BackendKey], str]) -> None:
    keypair = Keypair()
    key = BackendKey(keypair)
    shown = show(key)
    assert base58.b58encode(bytes(keypair)).decode() not in shown
    assert str(keypair.pubkey()) in shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("[1, 2, 3]", "64 bytes"),
        ("[1, 2,", "does not parse"),
        ('["a"]', "array of byte values"),
        ("[true]", "array of byte values"),
        ("[300]", "array of byte values"),
        ("0OIl-not-base58", "neither a JSON array nor base58"),
        (base58.b58encode(bytes(32)).decode(), "64 bytes"),
    ],
)
def test_bad_keypairs_are_refused_without_echo(text: str, message: str) -> None:
    with pytest.raises(KeypairError, match=message) as refused:
        load_keypair(SecretStr(text))
    if text:
        assert text not in str(refused.value)
    assert refused.value.__cause__ is None or text not in str(refused.value.__cause__)


def test_mismatched_halves_and_missing_sources(tmp_path: Path) -> None:
    keypair, other = Keypair(), Keypair()
    mismatched = bytes(keypair)[:32] + bytes(other.pubkey())
    with pytest.raises(KeypairError, match="public half"):
        parse_keypair(json.dumps(list(mismatched)))
    with pytest.raises(KeypairError, match="cannot read the keypair file"):
        load_keypair(tmp_path / "missing.json")
    with pytest.raises(KeypairError, match="cannot read the keypair file"):
        load_keypair(str(tmp_path / "missing.json"))
    with pytest.raises(KeypairError, match="BACKEND_KEYPAIR is not set"):
        backend_key(Settings(backend_keypair=None))


# ----------------------------------------------------------------------------- client


async def payment(world: Any) -> Any:
    """A signed, unsent transfer of 0.1 SOL from a fresh funded payer."""
    payer = world.funded(SOL)
    pay = transfer(
        TransferParams(
            from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL // 10
        )
    )
    return await world.client.build([pay], [payer])


async def test_from_settings_and_addresses(chain_world: Any) -> None:
    settings = Settings(solana_rpc_url=chain_world.endpoint.http_url)
    async with ChainClient.from_settings(settings, compute_unit_price=5) as client:
        assert client.program_id == chain_world.client.program_id
        assert client.compute_unit_price == 5
        assert await client.block_height() == await chain_world.client.block_height()
        market_id = "0b7c3b49-8f0a-4c2b-9a0e-4b8e6f1d2c3a"
        assert (
            client.market_address(market_id)
            == Pubkey.find_program_address(
                [b"market", market_id.replace("-", "").encode()], client.program_id
            )[0]
        )
        user = Pubkey.new_unique()
        market = client.market_address(market_id)
        assert (
            client.position_address(market, user)
            == Pubkey.find_program_address(
                [b"position", bytes(market), bytes(user)], client.program_id
            )[0]
        )
    with pytest.raises(ValueError, match="no RPC URL"):
        ChainClient.from_settings(Settings(solana_rpc_url=None))


async def test_reads_decode_market_and_config(chain_world: Any) -> None:
    client = chain_world.client
    assert await client.global_config() is None
    chain_world.initialize()
    config = await client.global_config()
    assert config is not None
    assert config.admin == chain_world.admin.pubkey()
    assert config.backend_authority == chain_world.backend.pubkey
    assert config.protocol_fee_wallet == chain_world.fee_wallet.pubkey()
    assert (config.proposal_approval_threshold, config.dispute_success_threshold) == (7000, 6000)
    creator = chain_world.funded()
    market_id = chain_world.create_market(creator)
    market = await client.market(market_id)
    assert market is not None
    assert market.market_id == market_id
    assert market.state is MarketState.PROPOSED
    assert market.creator == creator.pubkey()
    assert market.data["b_parameter"] == 100 * SOL
    assert await client.market("00000000-0000-0000-0000-000000000000") is None


async def test_build_send_confirm_with_compute_budget(chain_world: Any) -> None:
    client = chain_world.client
    chain_world.initialize()
    market_id = chain_world.market_in("Approved")
    client.compute_unit_price = 1_000
    client.compute_unit_limit = 300_000
    try:
        instruction = client.instruction(
            "activate_market",
            {},
            {
                "authority": chain_world.admin.pubkey(),
                "market": client.market_address(market_id),
                "global_config": client.global_config_address(),
            },
        )
        signed = await client.build([instruction], [chain_world.admin])
        state = await client.send_and_confirm(signed, wait_seconds=5)
    finally:
        client.compute_unit_price, client.compute_unit_limit = 0, None
    assert state.is_confirmed and state.err is None
    assert state.signature == signed.signature
    assert str(signed.transaction.message.recent_blockhash) == signed.blockhash
    record = chain_world.chain.get_record(signed.signature)
    # ComputeBudget limit + price first, then the program's instruction.
    assert len(record.transaction().message.instructions) == 3
    assert (await client.market(market_id)).state is MarketState.ACTIVE
    # Sending the very same bytes again is harmless: AlreadyProcessed means success.
    assert await client.send(signed.raw) == signed.signature
    assert chain_world.events("MarketActivated", market_id) == 1


async def test_missing_account_and_signer_are_refused(chain_world: Any) -> None:
    client = chain_world.client
    with pytest.raises(KeyError, match="'market' not given"):
        client.instruction("activate_market", {}, {"authority": Pubkey.new_unique()})
    with pytest.raises(ValueError, match="fee payer"):
        client.sign([], [], await client.latest_blockhash())


async def test_preflight_program_error_is_named_from_the_idl(chain_world: Any) -> None:
    client = chain_world.client
    chain_world.initialize()
    market_id = chain_world.create_market()
    instruction = client.instruction(
        "activate_market",
        {},
        {
            "authority": chain_world.admin.pubkey(),
            "market": client.market_address(market_id),
            "global_config": client.global_config_address(),
        },
    )
    signed = await client.build([instruction], [chain_world.admin])
    with pytest.raises(TransactionFailed) as failure:
        await client.send(signed.raw)
    error = failure.value
    assert not error.landed and not error.retryable
    assert error.program_error is not None
    assert (error.program_error.code, error.error_name) == (6006, "InvalidStateTransition")
    assert error.logs and error.signature == signed.signature
    assert "InvalidStateTransition (6006)" in str(error)


async def test_landed_failure_is_decoded_from_the_status(chain_world: Any) -> None:
    client = chain_world.client
    chain_world.initialize()
    market_id = chain_world.create_market()
    instruction = client.instruction(
        "activate_market",
        {},
        {
            "authority": chain_world.admin.pubkey(),
            "market": client.market_address(market_id),
            "global_config": client.global_config_address(),
        },
    )
    signed = await client.build([instruction], [chain_world.admin])
    await client.send(signed.raw, skip_preflight=True)
    with pytest.raises(TransactionFailed) as failure:
        await client.confirm(signed, wait_seconds=1)
    assert failure.value.landed
    assert failure.value.error_name == "InvalidStateTransition"
    assert "on chain" in str(failure.value)


async def test_failures_of_other_programs_have_no_program_error(chain_world: Any) -> None:
    client = chain_world.client
    payer = chain_world.funded(SOL)
    too_much = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL * 5)
    )
    signed = await client.build([too_much], [payer])
    with pytest.raises(TransactionFailed) as preflight:
        await client.send(signed.raw)
    assert preflight.value.program_error is None
    assert preflight.value.error_name == "TransactionErrorInstructionError"
    assert "custom program error" not in preflight.value.reason or preflight.value.reason
    await client.send(signed.raw, skip_preflight=True)
    with pytest.raises(TransactionFailed) as landed:
        await client.confirm(signed, wait_seconds=1)
    assert landed.value.program_error is None and not landed.value.retryable


def test_program_error_mapping_from_the_status_alone(chain_world: Any) -> None:
    from solders.transaction_status import (
        InstructionErrorCustom,
        TransactionErrorInstructionError,
    )

    client = chain_world.client
    signer = Keypair()
    ours = client.instruction(
        "activate_market",
        {},
        {
            "authority": signer.pubkey(),
            "market": Pubkey.new_unique(),
            "global_config": Pubkey.new_unique(),
        },
    )
    from solders.hash import Hash

    from marketd.chain.client import RecentBlockhash

    tx = client.sign([ours], [signer], RecentBlockhash(Hash.default(), 10)).transaction
    custom = TransactionErrorInstructionError(0, InstructionErrorCustom(6029))
    named = client.program_error(custom, [], tx)
    assert named == ProgramError(6029, "Unauthorized") or (named.code, named.name) == (
        6029,
        "Unauthorized",
    )
    unknown = client.program_error(
        TransactionErrorInstructionError(0, InstructionErrorCustom(42)), [], tx
    )
    assert (unknown.code, unknown.name) == (42, None)
    assert client.program_error(TransactionErrorFieldless.AccountInUse, [], tx) is None
    failed = TransactionFailed(TransactionErrorFieldless.AccountInUse, landed=False)
    assert failed.retryable and failed.error_name == "AccountInUse"
    unnamed = TransactionFailed(custom, landed=True, program_error=ProgramError(42))
    assert unnamed.error_name == "ProgramError42"
    assert not unnamed.retryable
    retryable = TransactionFailed(
        custom, landed=False, program_error=ProgramError(6027, "DisputePeriodNotEnded")
    )
    assert retryable.retryable


async def test_dropped_send_times_out_then_expires(chain_world: Any) -> None:
    client = chain_world.client
    signed = await payment(chain_world)
    await chain_world.control("drop_next_sends", count=1)
    assert await client.send(signed.raw) == signed.signature
    sleeps: list[float] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    polling = ChainClient(client.rpc, client.coder, client.program_id, sleep=record_sleep)
    polling.poll_interval = 0.0
    with pytest.raises(ConfirmationTimeout):
        await polling.confirm(signed, wait_seconds=0.3)  # polls until the wait is over
    assert sleeps and set(sleeps) == {0.0}
    assert await client.signature_status(signed.signature) is None
    assert not await client.blockhash_expired(signed.raw, signed.last_valid_block_height)
    await chain_world.control("expire_blockhash")
    assert await client.blockhash_expired(signed.raw, None)
    with pytest.raises(BlockhashExpired):
        await client.confirm(signed, wait_seconds=5)
    with pytest.raises(BlockhashExpired, match="blockhash not found"):
        await client.send(signed.raw)


async def test_block_height_past_last_valid_is_expiry(chain_world: Any) -> None:
    client = chain_world.client
    signed = await payment(chain_world)
    height = await client.block_height()
    assert not await client.blockhash_expired(signed.raw, height + 1)
    assert await client.blockhash_expired(signed.raw, height - 1)


async def test_landing_seen_just_after_expiry_is_not_an_expiry(
    chain_world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = chain_world.client
    signed = await payment(chain_world)
    chain_world.chain.send_transaction(VersionedTransaction.from_bytes(signed.raw))
    real = client.signature_statuses
    answers: list[int] = []

    async def first_stale(signatures: list[str]) -> list[SignatureState | None]:
        answers.append(1)
        return [None] if len(answers) == 1 else list(await real(signatures))

    async def expired(_raw: bytes, _height: int | None) -> bool:
        return True

    monkeypatch.setattr(client, "signature_statuses", first_stale)
    monkeypatch.setattr(client, "blockhash_expired", expired)
    state = await client.confirm(signed, wait_seconds=1)
    assert state.is_confirmed and len(answers) == 2


async def test_rpc_errors_are_typed(chain_world: Any) -> None:
    client = chain_world.client
    signed = await payment(chain_world)
    tampered = bytearray(signed.raw)
    tampered[-1] ^= 1
    with pytest.raises(RpcRejected) as bad_signature:
        await client.send(bytes(tampered))
    assert not bad_signature.value.retryable
    with pytest.raises(RpcRejected, match="not a transaction"):
        await client.send(b"junk")
    # A structurally valid transaction the node cannot deserialize as sent: invalid params.
    with pytest.raises(RpcRejected):
        await client.send(signed.raw[:-1] + b"")  # truncated
    dead = ChainClient(AsyncClient("http://127.0.0.1:9"), client.coder, client.program_id)
    async with dead:
        with pytest.raises(RpcUnavailable) as unavailable:
            await dead.block_height()
    assert unavailable.value.retryable


async def test_node_errors_that_are_not_the_requests_fault_are_retryable(
    chain_world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solana.rpc.core import RPCException, RPCNoResultException
    from solders.rpc.errors import InternalErrorMessage

    client = chain_world.client

    async def unhealthy(*_args: Any, **_kwargs: Any) -> Any:
        raise RPCException(InternalErrorMessage("node is behind"))

    monkeypatch.setattr(client.rpc, "get_block_height", unhealthy)
    with pytest.raises(RpcUnavailable, match="node is behind"):
        await client.block_height()

    async def no_result(*_args: Any, **_kwargs: Any) -> Any:
        raise RPCNoResultException("Failed to send transaction")

    monkeypatch.setattr(client.rpc, "get_block_height", no_result)
    with pytest.raises(RpcRejected):
        await client.block_height()
    assert await client.signature_statuses([]) == []


async def test_finalized_and_processed_statuses(chain_world: Any) -> None:
    from solders.transaction_status import TransactionConfirmationStatus

    from marketd.chain.client import _confirmation_name

    client = chain_world.client
    signed = await payment(chain_world)
    await client.send(signed.raw)
    assert (await client.signature_status(signed.signature)).confirmation == "confirmed"
    await chain_world.control("advance_slots", slots=40)
    state = await client.signature_status(signed.signature)
    assert state.confirmation == "finalized" and state.is_confirmed
    assert _confirmation_name(TransactionConfirmationStatus.Processed) == "processed"
    assert _confirmation_name(None) == "processed"
    assert not SignatureState("s", 1, "processed", None).is_confirmed


async def test_request_the_node_refuses_is_rejected(chain_world: Any) -> None:
    signed = await payment(chain_world)
    with pytest.raises(RpcRejected, match="Too many inputs"):
        await chain_world.client.signature_statuses([signed.signature] * 300)
