"""The local JSON-RPC endpoint, driven by solana-py's own clients (and raw JSON where needed)."""

from __future__ import annotations

import asyncio
import base64
import json
import runpy
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import base58
import httpx
import pytest
import uvicorn
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TxOpts
from solana.rpc.websocket_api import SolanaWsClient
from solders.account import Account
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import LogsNotification
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Legacy, VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorInstructionError,
)
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from marketd.chain.localnet import rpc_server
from marketd.chain.localnet.rpc_server import RpcEndpoint, serve_local_rpc
from marketd.chain.localnet.svm import FINALITY_DEPTH, LocalChain

pytestmark = pytest.mark.integration  # serves the local chain over JSON-RPC

SOL = 1_000_000_000
MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
RECV_TIMEOUT = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def chain() -> LocalChain:
    return LocalChain(now=FakeClock())


@pytest.fixture
async def endpoint(chain: LocalChain) -> AsyncIterator[RpcEndpoint]:
    async with serve_local_rpc(chain) as served:
        yield served


@pytest.fixture
async def client(endpoint: RpcEndpoint) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(endpoint.http_url, commitment=Confirmed) as connected:
        yield connected


@pytest.fixture
async def funded(client: AsyncClient) -> Keypair:
    payer = Keypair()
    await client.request_airdrop(payer.pubkey(), 10 * SOL)
    return payer


async def rpc(endpoint: RpcEndpoint, method: str, *params: Any) -> dict[str, Any]:
    """A raw JSON-RPC call; returns the whole response envelope."""
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}
    async with httpx.AsyncClient() as http:
        response = await http.post(endpoint.http_url, json=body)
    assert response.status_code == 200
    reply: dict[str, Any] = response.json()
    return reply


async def control(endpoint: RpcEndpoint, action: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{endpoint.http_url}/_control/{action}", json=body)


async def transfer_tx(
    client: AsyncClient, payer: Keypair, destination: Pubkey, lamports: int
) -> VersionedTransaction:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=destination, lamports=lamports)
    )
    return VersionedTransaction(
        Message.new_with_blockhash([ix], payer.pubkey(), blockhash), [payer]
    )


async def test_airdrop_transfer_and_confirmation(client: AsyncClient, funded: Keypair) -> None:
    destination = Pubkey.new_unique()
    assert (await client.get_balance(funded.pubkey())).value == 10 * SOL
    tx = await transfer_tx(client, funded, destination, 2 * SOL)
    signature = (await client.send_transaction(tx)).value
    assert signature == tx.signatures[0]
    statuses = (await client.get_signature_statuses([signature, Signature.new_unique()])).value
    status = statuses[0]
    assert status is not None
    assert status.err is None
    assert status.confirmation_status == TransactionConfirmationStatus.Confirmed
    assert status.slot == (await client.get_slot()).value
    assert statuses[1] is None
    assert (await client.get_balance(destination)).value == 2 * SOL
    confirmed = await client.confirm_transaction(signature, Confirmed)
    assert confirmed.value[0] is not None


async def test_get_transaction_returns_logs_meta_and_encodings(
    client: AsyncClient, funded: Keypair, chain: LocalChain
) -> None:
    destination = Pubkey.new_unique()
    tx = await transfer_tx(client, funded, destination, SOL)
    signature = (await client.send_transaction(tx)).value
    found = (await client.get_transaction(signature, "json")).value
    assert found is not None
    assert found.slot == chain.slot
    assert found.block_time == 1_700_000_000
    meta = found.transaction.meta
    assert meta is not None
    assert meta.log_messages == [
        "Program 11111111111111111111111111111111 invoke [1]",
        "Program 11111111111111111111111111111111 success",
    ]
    assert meta.fee == 5000
    assert meta.pre_balances[0] - meta.post_balances[0] == SOL + 5000
    assert found.transaction.version is None
    as_base64 = (
        await client.get_transaction(signature, "base64", max_supported_transaction_version=0)
    ).value
    assert as_base64 is not None
    assert bytes(as_base64.transaction.transaction) == bytes(tx)
    assert as_base64.transaction.version == Legacy.Legacy
    finalized_view = await client.get_transaction(signature, "json", commitment=Finalized)
    assert finalized_view.value is None
    await control(client_endpoint(client), "advance_slots", slots=FINALITY_DEPTH)
    assert (await client.get_transaction(signature, commitment=Finalized)).value is not None


def client_endpoint(client: AsyncClient) -> RpcEndpoint:
    url = str(client._provider.endpoint_uri)
    return RpcEndpoint(url, url.replace("http", "ws", 1))


async def test_raw_transaction_shapes(
    endpoint: RpcEndpoint, client: AsyncClient, funded: Keypair
) -> None:
    destination = Pubkey.new_unique()
    tx = await transfer_tx(client, funded, destination, SOL)
    # sendTransaction defaults to base58, as on Solana; its preflight to finalized state, where
    # the payer funded a slot ago does not exist yet.
    encoded = base58.b58encode(bytes(tx)).decode()
    too_early = await rpc(endpoint, "sendTransaction", encoded)
    assert too_early["error"]["data"]["err"] == "AccountNotFound"
    sent = await rpc(endpoint, "sendTransaction", encoded, {"preflightCommitment": "confirmed"})
    signature = sent["result"]
    assert signature == str(tx.signatures[0])
    reply = await rpc(
        endpoint,
        "getTransaction",
        signature,
        {"encoding": "base58", "commitment": "confirmed"},
    )
    result = reply["result"]
    assert base58.b58decode(result["transaction"][0]) == bytes(tx)
    assert result["meta"]["status"] == {"Ok": None}
    assert result["meta"]["loadedAddresses"] == {"readonly": [], "writable": []}
    assert "version" not in result
    legacy_json = await rpc(endpoint, "getTransaction", signature, {"commitment": "confirmed"})
    message = legacy_json["result"]["transaction"]["message"]
    assert "addressTableLookups" not in message
    assert message["accountKeys"][0] == str(funded.pubkey())
    assert message["instructions"][0]["programIdIndex"] == 2
    missing = await rpc(endpoint, "getTransaction", str(Signature.new_unique()), {})
    assert missing["result"] is None


async def test_versioned_transactions_need_max_supported_version(
    endpoint: RpcEndpoint, client: AsyncClient, funded: Keypair
) -> None:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    ix = transfer(
        TransferParams(from_pubkey=funded.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL)
    )
    tx = VersionedTransaction(MessageV0.try_compile(funded.pubkey(), [ix], [], blockhash), [funded])
    signature = str((await client.send_transaction(tx)).value)
    refused = await rpc(endpoint, "getTransaction", signature, {"commitment": "confirmed"})
    assert refused["error"]["code"] == -32015
    accepted = await rpc(
        endpoint,
        "getTransaction",
        signature,
        {"commitment": "confirmed", "maxSupportedTransactionVersion": 0},
    )
    assert accepted["result"]["version"] == 0
    assert accepted["result"]["transaction"]["message"]["addressTableLookups"] == []
    parsed = await client.get_transaction(
        Signature.from_string(signature), max_supported_transaction_version=0
    )
    assert parsed.value is not None and parsed.value.transaction.version == 0
    processed = await rpc(endpoint, "getTransaction", signature, {"commitment": "processed"})
    assert processed["error"]["code"] == -32602
    wrong = await rpc(
        endpoint,
        "getTransaction",
        signature,
        {"encoding": "yaml", "commitment": "confirmed", "maxSupportedTransactionVersion": 0},
    )
    assert wrong["error"]["code"] == -32602


async def test_signatures_for_address_paginates(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    destination = Pubkey.new_unique()
    sent = []
    for n in range(4):
        tx = await transfer_tx(client, funded, destination, SOL + n)
        sent.append((await client.send_transaction(tx)).value)
    page = (await client.get_signatures_for_address(destination, limit=3)).value
    assert [item.signature for item in page] == [sent[3], sent[2], sent[1]]
    assert page[0].confirmation_status == TransactionConfirmationStatus.Confirmed
    assert page[0].block_time == 1_700_000_000
    rest = (await client.get_signatures_for_address(destination, before=page[-1].signature)).value
    assert [item.signature for item in rest] == [sent[0]]
    bounded = (
        await client.get_signatures_for_address(destination, before=sent[3], until=sent[0])
    ).value
    assert [item.signature for item in bounded] == [sent[2], sent[1]]
    finalized = await client.get_signatures_for_address(destination, commitment=Finalized)
    assert finalized.value == []
    too_many = await rpc(endpoint, "getSignaturesForAddress", str(destination), {"limit": 1001})
    assert too_many["error"]["code"] == -32602


async def test_program_accounts_filters(
    chain: LocalChain, client: AsyncClient, endpoint: RpcEndpoint
) -> None:
    program = Pubkey.new_unique()
    tagged = Pubkey.new_unique()
    other = Pubkey.new_unique()
    chain.set_account(tagged, Account(SOL, b"MKT1" + bytes(12), program, False, 0))
    chain.set_account(other, Account(SOL, b"XXXX" + bytes(12), program, False, 0))
    chain.set_account(Pubkey.new_unique(), Account(SOL, b"MKT1", program, False, 0))
    everything = (await client.get_program_accounts(program, encoding="base64")).value
    assert len(everything) == 3
    prefix = base58.b58encode(b"MKT1").decode()
    matched = (
        await client.get_program_accounts(
            program, encoding="base64", filters=[MemcmpOpts(offset=0, bytes=prefix), 16]
        )
    ).value
    assert [item.pubkey for item in matched] == [tagged]
    assert matched[0].account.data == b"MKT1" + bytes(12)
    as_base64 = await rpc(
        endpoint,
        "getProgramAccounts",
        str(program),
        {
            "encoding": "base64",
            "withContext": True,
            "filters": [{"memcmp": {"offset": 0, "bytes": "WFhYWA==", "encoding": "base64"}}],
        },
    )
    value = as_base64["result"]["value"]
    assert as_base64["result"]["context"]["slot"] == chain.slot
    assert [item["pubkey"] for item in value] == [str(other)]
    assert value[0]["account"]["space"] == 16
    sliced = await rpc(
        endpoint,
        "getProgramAccounts",
        str(program),
        {
            "encoding": "base58",
            "dataSlice": {"offset": 0, "length": 4},
            "filters": [{"dataSize": 4}],
        },
    )
    assert [item["account"]["data"] for item in sliced["result"]] == [[prefix, "base58"]]


async def test_account_reads(chain: LocalChain, client: AsyncClient, endpoint: RpcEndpoint) -> None:
    owner = Pubkey.new_unique()
    present = Pubkey.new_unique()
    chain.set_account(present, Account(7 * SOL, b"\x01\x02\x03", owner, False, 0))
    info = (await client.get_account_info(present)).value
    assert info is not None and info.data == b"\x01\x02\x03" and info.owner == owner
    assert (await client.get_account_info(Pubkey.new_unique())).value is None
    many = (await client.get_multiple_accounts([present, Pubkey.new_unique()])).value
    assert many[0] is not None and many[0].lamports == 7 * SOL
    assert many[1] is None
    binary = await rpc(endpoint, "getAccountInfo", str(present))
    assert binary["result"]["value"]["data"] == base58.b58encode(b"\x01\x02\x03").decode()
    parsed = await rpc(endpoint, "getAccountInfo", str(present), {"encoding": "jsonParsed"})
    assert parsed["result"]["value"]["data"] == ["AQID", "base64"]
    assert parsed["result"]["value"]["space"] == 3
    rent = (await client.get_minimum_balance_for_rent_exemption(100)).value
    assert rent == chain.minimum_balance_for_rent_exemption(100)


async def test_preflight_failure_has_solanas_error_shape(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    tx = await transfer_tx(client, funded, Pubkey.new_unique(), 1000 * SOL)
    with pytest.raises(RPCException) as failure:
        await client.send_transaction(tx)
    error = failure.value.args[0]
    assert error.message == (
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1"
    )
    assert error.data.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))
    assert error.data.units_consumed == 150
    raw = await rpc(
        endpoint,
        "sendTransaction",
        base64.b64encode(bytes(tx)).decode(),
        {"encoding": "base64", "preflightCommitment": "confirmed"},
    )
    assert raw["error"]["code"] == -32002
    assert raw["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    assert raw["error"]["data"]["accounts"] is None
    assert any("insufficient lamports" in line for line in raw["error"]["data"]["logs"])
    skipped = await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))
    status = (await client.get_signature_statuses([skipped.value])).value[0]
    assert status is not None
    assert status.err == TransactionErrorInstructionError(0, InstructionErrorCustom(1))


async def test_signature_failure_and_garbage_are_rejected(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    tx = await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
    forged = VersionedTransaction.populate(tx.message, [Signature.new_unique()])
    reply = await rpc(
        endpoint,
        "sendTransaction",
        base64.b64encode(bytes(forged)).decode(),
        {"encoding": "base64", "skipPreflight": True},
    )
    assert reply["error"]["code"] == -32003
    garbage = await rpc(endpoint, "sendTransaction", "AAAA", {"encoding": "base64"})
    assert garbage["error"]["code"] == -32602
    assert "failed to deserialize" in garbage["error"]["message"]
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    from solders.instruction import CompiledInstruction

    broken = Message.new_with_compiled_instructions(
        1, 0, 0, [funded.pubkey()], blockhash, [CompiledInstruction(9, b"", b"")]
    )
    bad = VersionedTransaction(broken, [funded])
    unsanitized = await rpc(
        endpoint, "sendTransaction", base64.b64encode(bytes(bad)).decode(), {"encoding": "base64"}
    )
    assert unsanitized["error"]["code"] == -32602
    assert unsanitized["error"]["message"].startswith("invalid transaction")


async def test_drop_next_sends_returns_a_signature_that_never_lands(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    response = await control(endpoint, "drop_next_sends", count=1)
    assert response.status_code == 200
    tx = await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
    signature = (await client.send_transaction(tx)).value
    assert signature == tx.signatures[0]
    assert (await client.get_signature_statuses([signature])).value == [None]
    assert (await client.send_transaction(tx)).value == signature
    assert (await client.get_signature_statuses([signature])).value[0] is not None


async def test_expired_blockhash_fails_with_blockhash_not_found(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    tx = await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
    old = (await client.get_latest_blockhash()).value
    valid = await rpc(endpoint, "isBlockhashValid", str(old.blockhash))
    assert valid["result"]["value"] is True
    state = (await control(endpoint, "expire_blockhash")).json()
    assert state["blockhash"] != str(old.blockhash)
    expired = await rpc(endpoint, "isBlockhashValid", str(old.blockhash))
    assert expired["result"]["value"] is False
    with pytest.raises(RPCException) as failure:
        await client.send_transaction(tx)
    assert failure.value.args[0].message == "Transaction simulation failed: Blockhash not found"
    assert (await client.get_fee_for_message(cast(Any, tx.message))).value is None
    fresh = await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
    assert (await client.get_fee_for_message(cast(Any, fresh.message))).value == 5000


async def test_block_height_lags_at_finalized_and_clock_control(
    client: AsyncClient, endpoint: RpcEndpoint, chain: LocalChain
) -> None:
    state = (await control(endpoint, "advance_slots", slots=40)).json()
    assert state["slot"] == chain.slot == 40
    assert (await client.get_block_height()).value == 40
    assert (await client.get_block_height(Finalized)).value == 40 - FINALITY_DEPTH
    assert (await client.get_slot(Finalized)).value == 40 - FINALITY_DEPTH
    moved = (await control(endpoint, "set_clock", unix_timestamp=1_900_000_000)).json()
    assert moved["unixTimestamp"] == 1_900_000_000 == chain.unix_timestamp
    async with httpx.AsyncClient() as http:
        current = (await http.get(f"{endpoint.http_url}/_control/state")).json()
        assert current["slot"] == 40
        assert (await http.get(f"{endpoint.http_url}/health")).text == "ok"


async def test_simulate_transaction_options(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    destination = Pubkey.new_unique()
    tx = await transfer_tx(client, funded, destination, SOL)
    simulated = (await client.simulate_transaction(tx)).value
    assert simulated.err is None
    assert simulated.units_consumed == 150
    await control(endpoint, "expire_blockhash")
    encoded = base64.b64encode(bytes(tx)).decode()
    replaced = await rpc(
        endpoint,
        "simulateTransaction",
        encoded,
        {
            "encoding": "base64",
            "commitment": "confirmed",
            "replaceRecentBlockhash": True,
            "innerInstructions": True,
            "accounts": {"addresses": [str(destination), str(Pubkey.new_unique())]},
        },
    )
    value = replaced["result"]["value"]
    assert value["err"] is None
    assert value["replacementBlockhash"]["blockhash"] == str(
        (await client.get_latest_blockhash()).value.blockhash
    )
    assert value["accounts"][0]["lamports"] == SOL
    assert value["accounts"][1] is None
    assert value["innerInstructions"] == []
    conflicting = await rpc(
        endpoint,
        "simulateTransaction",
        encoded,
        {"encoding": "base64", "replaceRecentBlockhash": True, "sigVerify": True},
    )
    assert conflicting["error"]["code"] == -32602
    from solders.message import MessageV1

    v1 = VersionedTransaction.populate(MessageV1.default(), [])
    unsupported = await rpc(
        endpoint,
        "simulateTransaction",
        base64.b64encode(bytes(v1)).decode(),
        {"encoding": "base64", "replaceRecentBlockhash": True},
    )
    assert unsupported["error"]["code"] == -32602


async def test_version_health_and_unknown_methods(
    client: AsyncClient, endpoint: RpcEndpoint
) -> None:
    assert (await client.get_version()).value.solana_core == rpc_server.SOLANA_CORE_VERSION
    assert (await rpc(endpoint, "getHealth"))["result"] == "ok"
    unknown = await rpc(endpoint, "getBlockProduction")
    assert unknown["error"] == {"code": -32601, "message": "Method not found"}
    assert unknown["id"] == 7


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("getAccountInfo", []),
        ("getAccountInfo", ["not-a-key"]),
        ("getAccountInfo", [str(MEMO_PROGRAM), "config"]),
        ("getAccountInfo", [str(MEMO_PROGRAM), {"encoding": "base64+zstd"}]),
        ("getAccountInfo", [str(MEMO_PROGRAM), {"dataSlice": {"offset": -1, "length": 1}}]),
        ("getMultipleAccounts", ["key"]),
        ("getMultipleAccounts", [[str(MEMO_PROGRAM)] * 101]),
        ("getProgramAccounts", [str(MEMO_PROGRAM), {"filters": [{}] * 5}]),
        ("getProgramAccounts", [str(MEMO_PROGRAM), {"filters": [{"owner": 1}]}]),
        ("getProgramAccounts", [str(MEMO_PROGRAM), {"filters": [{"memcmp": 1}]}]),
        (
            "getProgramAccounts",
            [str(MEMO_PROGRAM), {"filters": [{"memcmp": {"offset": 0, "bytes": 5}}]}],
        ),
        (
            "getProgramAccounts",
            [str(MEMO_PROGRAM), {"filters": [{"memcmp": {"offset": 0, "bytes": "0OIl"}}]}],
        ),
        (
            "getProgramAccounts",
            [
                str(MEMO_PROGRAM),
                {"filters": [{"memcmp": {"offset": 0, "bytes": "a", "encoding": "hex"}}]},
            ],
        ),
        ("getSlot", [{"commitment": "max"}]),
        ("getSignatureStatuses", ["sig"]),
        ("getSignatureStatuses", [[str(Signature.default())] * 257]),
        ("getSignatureStatuses", [["bad-signature"]]),
        ("getSignaturesForAddress", [str(MEMO_PROGRAM), {"limit": True}]),
        ("getMinimumBalanceForRentExemption", [-1]),
        ("isBlockhashValid", ["nope"]),
        ("getFeeForMessage", ["AAAA"]),
        ("sendTransaction", ["!!!", {"encoding": "base64"}]),
        ("sendTransaction", [5]),
        ("requestAirdrop", [str(MEMO_PROGRAM), -5]),
    ],
)
async def test_invalid_params_are_reported_as_32602(
    endpoint: RpcEndpoint, method: str, params: list[Any]
) -> None:
    reply = await rpc(endpoint, method, *params)
    assert reply["error"]["code"] == -32602, reply


async def test_request_envelopes_parse_errors_and_batches(endpoint: RpcEndpoint) -> None:
    async with httpx.AsyncClient() as http:
        broken = (await http.post(endpoint.http_url, content=b"{nope")).json()
        assert broken == {
            "jsonrpc": "2.0",
            "error": {"code": -32700, "message": "Parse error"},
            "id": None,
        }
        empty = (await http.post(endpoint.http_url, json=[])).json()
        assert empty["error"]["code"] == -32600
        batch = (
            await http.post(
                endpoint.http_url,
                json=[
                    {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
                    {"jsonrpc": "2.0", "id": 2, "method": "getHealth", "params": {}},
                    "junk",
                ],
            )
        ).json()
        assert batch[0] == {"jsonrpc": "2.0", "result": 0, "id": 1}
        assert batch[1]["error"]["code"] == -32602 and batch[1]["id"] == 2
        assert batch[2]["error"]["code"] == -32600


async def test_control_api_rejects_bad_requests(endpoint: RpcEndpoint) -> None:
    assert (await control(endpoint, "teleport")).status_code == 404
    assert (await control(endpoint, "advance_slots", slots=-3)).status_code == 400
    assert (await control(endpoint, "set_clock", unix_timestamp="soon")).status_code == 400
    async with httpx.AsyncClient() as http:
        url = f"{endpoint.http_url}/_control/advance_slots"
        assert (await http.post(url, content=b"{")).status_code == 400
        assert (await http.post(url, json=[1])).status_code == 400
        assert (await http.post(url)).json()["slot"] == 1


async def test_logs_subscribe_notifies_at_each_commitment(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    async with SolanaWsClient(endpoint.ws_url) as ws:
        confirmed = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(funded.pubkey()), commitment=Confirmed
        )
        finalized = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(funded.pubkey())
        )
        unrelated = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(Pubkey.new_unique()), commitment=Confirmed
        )
        tx = await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
        signature = (await client.send_transaction(tx)).value
        first = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert isinstance(first, LogsNotification)
        assert first.subscription == confirmed.subscription_id
        assert first.result.value.signature == signature
        assert first.result.value.err is None
        assert first.result.value.logs[-1] == "Program 11111111111111111111111111111111 success"
        await control(endpoint, "advance_slots", slots=FINALITY_DEPTH)
        # The funding airdrop also mentions the payer and finalizes first.
        seen = [await asyncio.wait_for(ws.recv(), RECV_TIMEOUT) for _ in range(2)]
        assert {note.subscription for note in seen} == {finalized.subscription_id}
        assert seen[-1].result.value.signature == signature  # type: ignore[union-attr]
        await ws.unsubscribe(confirmed)
        await ws.unsubscribe(unrelated)
        everything = await ws.logs_subscribe(commitment=Confirmed)
        second = await client.send_transaction(
            await transfer_tx(client, funded, Pubkey.new_unique(), SOL)
        )
        note = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert note.subscription == everything.subscription_id
        assert note.result.value.signature == second.value  # type: ignore[union-attr]


async def test_close_subscriptions_control_closes_the_socket(
    client: AsyncClient, funded: Keypair, endpoint: RpcEndpoint
) -> None:
    async with SolanaWsClient(endpoint.ws_url) as ws:
        await ws.logs_subscribe(commitment=Confirmed)
        closed = (await control(endpoint, "close_subscriptions")).json()
        assert closed["closed"] == 1
        assert closed["subscriptions"] == 0
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    # A new connection works again afterwards.
    async with SolanaWsClient(endpoint.ws_url) as ws:
        await ws.logs_subscribe(commitment=Confirmed)
        assert (await control(endpoint, "state")).json()["subscriptions"] == 1
        await client.request_airdrop(funded.pubkey(), SOL)
        note = await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        assert isinstance(note, LogsNotification)


async def test_websocket_protocol_errors(endpoint: RpcEndpoint) -> None:
    async with ws_connect(endpoint.ws_url) as ws:

        async def ask(text: str | bytes) -> Any:
            await ws.send(text)
            return json.loads(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))

        assert (await ask("{oops"))["error"]["code"] == -32700
        assert (await ask("[]"))["error"]["code"] == -32600
        assert (await ask(b'{"id":1,"method":"slotSubscribe"}'))["error"]["code"] == -32601
        assert (await ask('{"id":2,"method":"logsSubscribe","params":{}}'))["error"][
            "code"
        ] == -32602
        two = json.dumps(
            {
                "id": 3,
                "method": "logsSubscribe",
                "params": [{"mentions": [str(MEMO_PROGRAM), str(MEMO_PROGRAM)]}],
            }
        )
        reply = await ask(two)
        assert reply["error"]["message"] == "Invalid Request: Only 1 address supported"
        assert (await ask('{"id":4,"method":"logsSubscribe","params":["votes"]}'))["error"][
            "code"
        ] == -32602
        assert (await ask('{"id":5,"method":"logsUnsubscribe","params":[99]}'))["error"][
            "code"
        ] == -32602
        subscribed = await ask('{"id":6,"method":"logsSubscribe","params":["allWithVotes"]}')
        assert isinstance(subscribed["result"], int) and subscribed["id"] == 6


async def test_restart_from_the_same_data_dir_keeps_accounts_and_history(tmp_path: Path) -> None:
    clock = FakeClock()
    payer = Keypair()
    destination = Pubkey.new_unique()
    async with (
        serve_local_rpc(LocalChain(tmp_path, now=clock)) as first,
        AsyncClient(first.http_url, commitment=Confirmed) as client,
    ):
        await client.request_airdrop(payer.pubkey(), 5 * SOL)
        tx = await transfer_tx(client, payer, destination, SOL)
        signature = (await client.send_transaction(tx)).value
    async with (
        serve_local_rpc(LocalChain(tmp_path, now=clock)) as second,
        AsyncClient(second.http_url, commitment=Confirmed) as client,
    ):
        assert (await client.get_balance(destination)).value == SOL
        found = (await client.get_transaction(signature)).value
        assert found is not None and found.slot == 2
        assert (await client.get_slot()).value == 2
        history = (await client.get_signatures_for_address(payer.pubkey())).value
        assert history[0].signature == signature


async def test_server_startup_failure_is_raised(
    chain: LocalChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_startup(self: uvicorn.Server, sockets: object = None) -> None:
        raise OSError("cannot serve")

    monkeypatch.setattr(uvicorn.Server, "startup", failing_startup)
    with pytest.raises(OSError, match="cannot serve"):
        async with serve_local_rpc(chain):
            pass


def test_standalone_main_builds_the_chain_and_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[LocalChain, str, int, bool, float | None]] = []

    async def serve_forever(
        chain: LocalChain, host: str, port: int, controls: bool, slot_seconds: float | None
    ) -> None:
        served.append((chain, host, port, controls, slot_seconds))

    monkeypatch.setattr(rpc_server, "_serve_forever", serve_forever)
    elf = LiteSVM().get_account(MEMO_PROGRAM)
    assert elf is not None
    program_path = tmp_path / "memo.so"
    program_path.write_bytes(elf.data)
    program_id = Pubkey.new_unique()
    rpc_server.main(
        [
            "--data-dir",
            str(tmp_path / "chain"),
            "--port",
            "18999",
            "--program",
            f"{program_id}={program_path}",
        ]
    )
    ((chain, host, port, controls, slot_seconds),) = served
    assert (host, port, controls, slot_seconds) == ("127.0.0.1", 18999, False, 0.4)
    assert not chain.timing.slot_per_transaction and chain.timing.confirmation_slots == 2
    account = chain.get_account(program_id)
    assert account is not None and account.executable
    assert (tmp_path / "chain" / "chain.json").is_file()
    payer = Keypair()
    chain.airdrop(payer.pubkey(), SOL)
    blockhash, _ = chain.latest_blockhash
    memo = Message.new_with_blockhash(
        [Instruction(program_id, b"hi", [])], payer.pubkey(), blockhash
    )
    record = chain.get_record(str(chain.send_transaction(VersionedTransaction(memo, [payer]))))
    assert record is not None and record.err is None
    assert Hash.default() != blockhash


async def test_return_data_appears_in_transaction_meta(
    chain: LocalChain, endpoint: RpcEndpoint, client: AsyncClient, funded: Keypair
) -> None:
    token_program = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
    mint = Pubkey.new_unique()
    mint_data = struct.pack("<I32sQBBI32s", 0, bytes(32), 0, 6, 1, 0, bytes(32))
    chain.set_account(mint, Account(SOL, mint_data, token_program, False, 0))
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    data_size = Instruction(token_program, bytes([21]), [AccountMeta(mint, False, False)])
    tx = VersionedTransaction(
        Message.new_with_blockhash([data_size], funded.pubkey(), blockhash), [funded]
    )
    signature = (await client.send_transaction(tx)).value
    reply = await rpc(endpoint, "getTransaction", str(signature), {"commitment": "confirmed"})
    assert reply["result"]["meta"]["returnData"] == {
        "programId": str(token_program),
        "data": ["pQAAAAAAAAA=", "base64"],
    }
    parsed = (await client.get_transaction(signature, commitment=Confirmed)).value
    assert parsed is not None and parsed.transaction.meta is not None
    return_data = parsed.transaction.meta.return_data
    assert return_data is not None and return_data.program_id == token_program


def test_module_runs_standalone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran: list[str] = []

    def run(coroutine: Any) -> None:
        ran.append(coroutine.cr_code.co_name)
        coroutine.close()

    monkeypatch.setattr(asyncio, "run", run)
    monkeypatch.setattr(
        sys,
        "argv",
        ["rpc_server", "--data-dir", str(tmp_path), "--port", "0", "--slot-ms", "0"],
    )
    # Run it the way `python -m` does: as a fresh __main__ module.
    monkeypatch.delitem(sys.modules, "marketd.chain.localnet.rpc_server")
    runpy.run_module("marketd.chain.localnet.rpc_server", run_name="__main__")
    assert ran == ["_serve_forever"]


async def test_serve_forever_serves_until_cancelled(
    chain: LocalChain, capsys: pytest.CaptureFixture[str]
) -> None:
    serving = asyncio.create_task(rpc_server._serve_forever(chain, "127.0.0.1", 0, False, None))
    printed = ""
    async with asyncio.timeout(RECV_TIMEOUT):
        while "PubSub" not in printed:
            await asyncio.sleep(0.01)
            printed += capsys.readouterr().out
    http_url = printed.split("JSON-RPC ")[1].split(",")[0]
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{http_url}/health")).text == "ok"
        assert (await http.post(f"{http_url}/_control/state")).status_code == 404  # off
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
