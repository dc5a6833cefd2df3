"""The local chain in a cluster's timing: slots, clock, blockhash lifetime, commitment levels of
reads, transactions and subscriptions, preflight-pass/on-chain-fail, PubSub on port + 1.

Most tests drive the slots themselves (`tick` / the advance_slots control) so nothing waits on
time; the real-time ticker is tested with bounded waits on conditions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM
from solders.system_program import TransferParams, transfer
from solders.sysvar import CLOCK
from solders.transaction import VersionedTransaction
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from marketd.chain.client import ChainClient
from marketd.chain.errors import TransactionFailed
from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.rpc_server import (
    RpcEndpoint,
    bind_port_pair,
    serve_local_rpc,
)
from marketd.chain.localnet.svm import (
    BLOCKHASH_LIFETIME,
    FINALITY_DEPTH,
    ChainTiming,
    Commitment,
    LocalChain,
    derive_blockhash,
)
from marketd.chain.localnet.ticker import SlotTicker
from marketd.chain.stream import websocket_url

from ..helpers.chain import PROGRAM_ID

pytestmark = pytest.mark.integration  # serves the local chain over JSON-RPC

SOL = 1_000_000_000
CONFIRMATION = 2
TIMEOUT = 10


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chain(clock: FakeClock) -> LocalChain:
    """Cluster timing, slots driven by the test."""
    return LocalChain(now=clock, timing=ChainTiming.cluster(CONFIRMATION))


@pytest.fixture
async def endpoint(chain: LocalChain) -> AsyncIterator[RpcEndpoint]:
    async with serve_local_rpc(chain) as served:
        yield served


@pytest.fixture
def payer(chain: LocalChain) -> Keypair:
    keypair = Keypair()
    chain.airdrop(keypair.pubkey(), 10 * SOL)
    chain.tick(FINALITY_DEPTH)
    return keypair


def transfer_tx(
    chain: LocalChain,
    payer: Keypair,
    destination: Pubkey,
    lamports: int,
    blockhash: Hash | None = None,
) -> VersionedTransaction:
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=destination, lamports=lamports)
    )
    message = Message.new_with_blockhash(
        [ix], payer.pubkey(), blockhash or chain.latest_blockhash[0]
    )
    return VersionedTransaction(message, [payer])


async def rpc(endpoint: RpcEndpoint, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with httpx.AsyncClient() as http:
        reply = (await http.post(endpoint.http_url, json=body)).json()
    return reply


async def result(endpoint: RpcEndpoint, method: str, *params: Any) -> Any:
    reply = await rpc(endpoint, method, *params)
    assert "result" in reply, reply
    return reply["result"]


async def control(endpoint: RpcEndpoint, action: str, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{endpoint.http_url}/_control/{action}", json=body)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def clock_sysvar(chain: LocalChain) -> tuple[int, int]:
    """(slot, unix_timestamp) as programs read them from the Clock sysvar."""
    account = chain.get_account(CLOCK)
    assert account is not None
    slot, _, _, _, timestamp = struct.unpack_from("<QqQQq", account.data)
    return slot, timestamp


# --------------------------------------------------------------------- time and blockhashes
def test_slots_move_the_clock_and_rotate_the_blockhash(chain: LocalChain, clock: FakeClock) -> None:
    start_slot = chain.slot
    first, first_valid = chain.latest_blockhash
    assert first_valid == chain.block_height + BLOCKHASH_LIFETIME
    clock.now += 0.4
    chain.tick()
    clock.now += 0.8
    chain.tick(2)
    assert chain.slot == start_slot + 3
    assert clock_sysvar(chain) == (chain.slot, int(clock.now))
    second, second_valid = chain.latest_blockhash
    assert second != first and second_valid == first_valid + 3
    assert second == derive_blockhash(chain.slot, 0)
    assert chain.is_blockhash_valid(first) and chain.is_blockhash_valid(second)


def test_a_blockhash_is_valid_for_150_blocks_then_refused(
    chain: LocalChain, payer: Keypair
) -> None:
    blockhash, last_valid = chain.latest_blockhash
    chain.tick(last_valid - chain.block_height)
    on_time = transfer_tx(chain, payer, Pubkey.new_unique(), SOL, blockhash)
    chain.send_transaction(on_time)
    landed = chain.get_record(str(on_time.signatures[0]))
    assert landed is not None and landed.slot == last_valid
    chain.tick()
    assert not chain.is_blockhash_valid(blockhash)
    late = transfer_tx(chain, payer, Pubkey.new_unique(), 2 * SOL, blockhash)
    refused = chain.simulate_transaction(late)
    assert refused.err == "BlockhashNotFound"
    assert chain.send_transaction(late, skip_preflight=True) == late.signatures[0]
    assert chain.get_record(str(late.signatures[0])) is None


def test_transactions_share_the_working_slot(chain: LocalChain, payer: Keypair) -> None:
    slot = chain.slot
    first = chain.send_transaction(transfer_tx(chain, payer, Pubkey.new_unique(), SOL))
    second = chain.send_transaction(transfer_tx(chain, payer, Pubkey.new_unique(), SOL))
    records = [chain.get_record(str(signature)) for signature in (first, second)]
    assert [r.slot for r in records if r is not None] == [slot, slot]
    assert chain.slot == slot


async def test_resending_landed_bytes_is_already_processed_then_blockhash_not_found(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair
) -> None:
    tx = transfer_tx(chain, payer, Pubkey.new_unique(), SOL)
    encoded = base64.b64encode(bytes(tx)).decode()
    config = {"encoding": "base64", "preflightCommitment": "processed"}
    assert await result(endpoint, "sendTransaction", encoded, config) == str(tx.signatures[0])
    again = await rpc(endpoint, "sendTransaction", encoded, config)
    assert again["error"]["code"] == -32002 and again["error"]["data"]["err"] == "AlreadyProcessed"
    await control(endpoint, "advance_slots", slots=BLOCKHASH_LIFETIME + 1)
    expired = await rpc(endpoint, "sendTransaction", encoded, config)
    assert expired["error"]["data"]["err"] == "BlockhashNotFound"
    skipped = await result(endpoint, "sendTransaction", encoded, {**config, "skipPreflight": True})
    assert skipped == str(tx.signatures[0])
    assert sum(1 for r in chain.records() if r.signature == skipped) == 1


# --------------------------------------------------------------------- commitment
async def test_reads_honour_the_commitment_asked_for(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair
) -> None:
    destination = Pubkey.new_unique()
    before = chain.get_balance(payer.pubkey())
    signature = str(chain.send_transaction(transfer_tx(chain, payer, destination, SOL)))
    levels = ("processed", "confirmed", "finalized")

    async def balances() -> list[int]:
        return [
            (await result(endpoint, "getBalance", str(payer.pubkey()), {"commitment": c}))["value"]
            for c in levels
        ]

    async def destination_seen() -> list[bool]:
        seen = []
        for level in levels:
            info = await result(
                endpoint,
                "getMultipleAccounts",
                [str(destination)],
                {"commitment": level, "encoding": "base64"},
            )
            listed = await result(
                endpoint,
                "getProgramAccounts",
                str(SYSTEM_PROGRAM),
                {"commitment": level, "encoding": "base64", "filters": [{"dataSize": 0}]},
            )
            in_list = any(item["pubkey"] == str(destination) for item in listed)
            assert (info["value"][0] is not None) == in_list
            seen.append(in_list)
        return seen

    async def transaction_at(level: str) -> Any:
        return await result(endpoint, "getTransaction", signature, {"commitment": level})

    async def statuses() -> tuple[str, int | None]:
        value = (await result(endpoint, "getSignatureStatuses", [signature]))["value"][0]
        return value["confirmationStatus"], value["confirmations"]

    paid = before - SOL - 5000
    assert await balances() == [paid, before, before]
    assert await destination_seen() == [True, False, False]
    assert (await transaction_at("confirmed"), await transaction_at("finalized")) == (None, None)
    assert await statuses() == ("processed", 0)
    history = await rpc(
        endpoint, "getSignaturesForAddress", str(destination), {"commitment": "processed"}
    )
    assert history["error"]["code"] == -32602
    assert (
        await result(
            endpoint, "getSignaturesForAddress", str(destination), {"commitment": "confirmed"}
        )
        == []
    )

    await control(endpoint, "advance_slots", slots=CONFIRMATION)
    assert await balances() == [paid, paid, before]
    assert await destination_seen() == [True, True, False]
    assert (await transaction_at("confirmed"))["slot"] == chain.slot - CONFIRMATION
    assert await transaction_at("finalized") is None
    assert await statuses() == ("confirmed", CONFIRMATION)
    listed = await result(
        endpoint, "getSignaturesForAddress", str(destination), {"commitment": "confirmed"}
    )
    assert [item["signature"] for item in listed] == [signature]

    await control(endpoint, "advance_slots", slots=FINALITY_DEPTH - CONFIRMATION)
    assert await balances() == [paid, paid, paid]
    assert await destination_seen() == [True, True, True]
    assert (await transaction_at("finalized"))["slot"] == chain.slot - FINALITY_DEPTH
    assert await statuses() == ("finalized", None)


async def test_slots_and_blockhashes_per_commitment(
    chain: LocalChain, endpoint: RpcEndpoint
) -> None:
    await control(endpoint, "advance_slots", slots=FINALITY_DEPTH + 10)
    slot = chain.slot
    for level, lag in (
        ("processed", 0),
        ("confirmed", CONFIRMATION),
        ("finalized", FINALITY_DEPTH),
    ):
        assert await result(endpoint, "getSlot", {"commitment": level}) == slot - lag
        latest = await result(endpoint, "getLatestBlockhash", {"commitment": level})
        assert latest["context"]["slot"] == slot - lag
        assert latest["value"] == {
            "blockhash": str(derive_blockhash(slot - lag, 0)),
            "lastValidBlockHeight": slot - lag + BLOCKHASH_LIFETIME,
        }
    state = await control(endpoint, "state")
    assert (state["slot"], state["confirmedSlot"], state["finalizedSlot"]) == (
        slot,
        slot - CONFIRMATION,
        slot - FINALITY_DEPTH,
    )
    assert state["ticking"] is False


async def ws_request(ws: ClientConnection, request_id: int, method: str, *params: Any) -> None:
    await ws.send(
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
    )


async def received(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_subscriptions_notify_at_their_commitment(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair
) -> None:
    destination = Pubkey.new_unique()
    tx = transfer_tx(chain, payer, destination, SOL)
    signature = str(tx.signatures[0])
    async with ws_connect(endpoint.ws_url) as ws:
        ids = {}
        for request_id, level in enumerate(("processed", "confirmed", "finalized"), start=1):
            await ws_request(
                ws,
                request_id,
                "logsSubscribe",
                {"mentions": [str(destination)]},
                {"commitment": level},
            )
            ids[(await received(ws))["result"]] = f"logs {level}"
            await ws_request(
                ws, 10 + request_id, "signatureSubscribe", signature, {"commitment": level}
            )
            ids[(await received(ws))["result"]] = f"signature {level}"
        chain.send_transaction(tx)
        # A request answered now: any notification already due is queued before its reply.
        await ws_request(ws, 99, "logsUnsubscribe", 12345)
        order = []
        for _ in range(3):
            message = await received(ws)
            order.append(ids.get(message.get("params", {}).get("subscription"), message.get("id")))
        assert order == ["logs processed", "signature processed", 99]
        chain.tick(CONFIRMATION)
        await ws_request(ws, 100, "logsUnsubscribe", 12345)
        for _ in range(3):
            message = await received(ws)
            order.append(ids.get(message.get("params", {}).get("subscription"), message.get("id")))
        assert order[3:] == ["logs confirmed", "signature confirmed", 100]
        chain.tick(FINALITY_DEPTH - CONFIRMATION)
        notes = [await received(ws) for _ in range(2)]
        assert [ids[n["params"]["subscription"]] for n in notes] == [
            "logs finalized",
            "signature finalized",
        ]
        assert notes[1]["params"]["result"] == {
            "context": {"slot": chain.slot - FINALITY_DEPTH},
            "value": {"err": None},
        }
        # A signature subscription ends with its notification; one for a transaction that is
        # already at the commitment notifies at once, right after its reply.
        await ws_request(ws, 200, "signatureSubscribe", signature, {"commitment": "confirmed"})
        reply = await received(ws)
        note = await received(ws)
        assert note["method"] == "signatureNotification"
        assert note["params"]["subscription"] == reply["result"]
        await ws_request(ws, 201, "signatureUnsubscribe", reply["result"])
        assert (await received(ws))["error"]["code"] == -32602


# --------------------------------------------------------------------- preflight vs on chain
async def test_a_transaction_can_pass_preflight_and_fail_on_chain(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair, chain_coder: IdlCoder
) -> None:
    """Another transaction lands between the preflight and the execution (front_run control):
    the payer's lamports are gone by the time the transfer runs."""
    spend_first = transfer_tx(chain, payer, Pubkey.new_unique(), 9 * SOL)
    await control(
        endpoint, "front_run_next_send", transaction=base64.b64encode(bytes(spend_first)).decode()
    )
    async with ChainClient(
        AsyncClient(endpoint.http_url, commitment=Confirmed),
        chain_coder,
        PROGRAM_ID,
        poll_interval=0.01,
    ) as client:
        signed = client.sign(
            [
                transfer(
                    TransferParams(
                        from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=5 * SOL
                    )
                )
            ],
            [payer],
            await client.latest_blockhash(),
        )
        assert await client.send(signed.raw) == signed.signature  # preflight passed
        chain.tick(CONFIRMATION)
        with pytest.raises(TransactionFailed) as failed:
            await client.confirm(signed, wait_seconds=TIMEOUT)
    assert failed.value.landed
    front = chain.get_record(str(spend_first.signatures[0]))
    late = chain.get_record(signed.signature)
    assert front is not None and front.err is None
    assert late is not None and late.err == {"InstructionError": [0, {"Custom": 1}]}
    assert front.seq < late.seq
    bad = await rpc(endpoint, "sendTransaction", "x", {"encoding": "base64"})
    assert bad["error"]["code"] == -32602
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            f"{endpoint.http_url}/_control/front_run_next_send",
            json={"transaction": base64.b64encode(b"junk").decode()},
        )
    assert refused.status_code == 400


async def test_preflight_runs_against_the_state_at_the_preflight_commitment(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair
) -> None:
    """The payer spent its lamports a slot ago: preflight at confirmed still sees them, so the
    transaction passes it and fails on chain; at processed it is refused up front."""
    chain.send_transaction(transfer_tx(chain, payer, Pubkey.new_unique(), 9 * SOL))
    chain.tick()
    late = transfer_tx(chain, payer, Pubkey.new_unique(), 5 * SOL)
    encoded = base64.b64encode(bytes(late)).decode()
    at = {"encoding": "base64"}
    processed = await rpc(
        endpoint, "simulateTransaction", encoded, {**at, "commitment": "processed"}
    )
    assert processed["result"]["value"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    confirmed = await rpc(
        endpoint, "simulateTransaction", encoded, {**at, "commitment": "confirmed"}
    )
    assert confirmed["result"]["value"]["err"] is None
    refused = await rpc(
        endpoint, "sendTransaction", encoded, {**at, "preflightCommitment": "processed"}
    )
    assert refused["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
    sent = await result(
        endpoint, "sendTransaction", encoded, {**at, "preflightCommitment": "confirmed"}
    )
    landed = chain.get_record(sent)
    assert landed is not None and landed.err == {"InstructionError": [0, {"Custom": 1}]}
    # The simulation left the current state as it was.
    assert chain.get_balance(payer.pubkey()) < SOL
    fresh = Keypair()
    chain.airdrop(fresh.pubkey(), SOL)
    spend = transfer_tx(chain, fresh, Pubkey.new_unique(), SOL // 2)
    assert (
        chain.simulate_transaction(spend, commitment=Commitment.CONFIRMED).err == "AccountNotFound"
    )
    assert chain.get_balance(fresh.pubkey()) == SOL


# --------------------------------------------------------------------- PubSub ports
async def test_pubsub_is_served_on_rpc_port_plus_one_and_on_the_rpc_port(
    chain: LocalChain, endpoint: RpcEndpoint, payer: Keypair
) -> None:
    rpc_port = int(endpoint.http_url.rsplit(":", 1)[1])
    assert endpoint.ws_url == f"ws://127.0.0.1:{rpc_port + 1}" == websocket_url(endpoint.http_url)
    same_port = endpoint.http_url.replace("http", "ws", 1)
    destination = Pubkey.new_unique()
    async with ws_connect(endpoint.ws_url) as agave_port, ws_connect(same_port) as rpc_port_ws:
        for ws in (agave_port, rpc_port_ws):
            await ws_request(
                ws,
                1,
                "logsSubscribe",
                {"mentions": [str(destination)]},
                {"commitment": "processed"},
            )
            assert isinstance((await received(ws))["result"], int)
        signature = str(chain.send_transaction(transfer_tx(chain, payer, destination, SOL)))
        for ws in (agave_port, rpc_port_ws):
            note = await received(ws)
            assert note["params"]["result"]["value"]["signature"] == signature
    async with httpx.AsyncClient() as http:
        # Port + 1 is PubSub only, as on Agave.
        assert (
            await http.post(endpoint.ws_url.replace("ws", "http", 1), json={})
        ).status_code == 404


def test_a_port_pair_is_found_or_refused() -> None:
    rpc_sock, pubsub_sock = bind_port_pair("127.0.0.1", 0)
    rpc_sock.listen()
    pubsub_sock.listen()
    try:
        assert pubsub_sock.getsockname()[1] == rpc_sock.getsockname()[1] + 1
        with pytest.raises(OSError):
            bind_port_pair("127.0.0.1", rpc_sock.getsockname()[1])
        with pytest.raises(OSError):
            bind_port_pair("127.0.0.1", pubsub_sock.getsockname()[1] - 1)
    finally:
        rpc_sock.close()
        pubsub_sock.close()


# --------------------------------------------------------------------- the real-time ticker
class StepClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ticker_produces_due_slots_and_skips_paused_time(chain: LocalChain) -> None:
    clock = StepClock()
    ticker = SlotTicker(chain, 0.4, clock=clock)
    start = chain.slot
    assert ticker.step() == 0
    clock.now += 1.0  # two and a half slots: two are due
    assert ticker.step() == 2 and chain.slot == start + 2
    ticker.pause()
    clock.now += 4.0
    assert ticker.step() == 0 and chain.slot == start + 2
    clock.now += 4.0
    ticker.resume()  # the paused time is skipped, not caught up
    assert chain.slot == start + 2
    clock.now += 0.4
    assert ticker.step() == 1 and chain.slot == start + 3
    with pytest.raises(ValueError):
        SlotTicker(chain, 0)


async def test_real_time_slots_advance_while_idle_and_confirm_transactions(
    chain_coder: IdlCoder,
) -> None:
    chain = LocalChain(timing=ChainTiming.cluster(CONFIRMATION))
    payer = Keypair()
    chain.airdrop(payer.pubkey(), 10 * SOL)
    failures = 0

    def failing_listener(event: Any) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("a listener failing must not stop the slots")

    remove = chain.add_listener(failing_listener)
    async with serve_local_rpc(chain, slot_seconds=0.02) as endpoint:
        start = chain.slot
        async with asyncio.timeout(TIMEOUT):
            slot = start
            while slot < start + 5:  # no transaction: the slots move by themselves
                await asyncio.sleep(0.01)
                slot = await result(endpoint, "getSlot", {"commitment": "processed"})
        assert clock_sysvar(chain)[0] == chain.slot
        remove()
        async with ChainClient(
            AsyncClient(endpoint.http_url, commitment=Confirmed),
            chain_coder,
            PROGRAM_ID,
            poll_interval=0.01,
        ) as client:
            signed = client.sign(
                [
                    transfer(
                        TransferParams(
                            from_pubkey=payer.pubkey(), to_pubkey=Pubkey.new_unique(), lamports=SOL
                        )
                    )
                ],
                [payer],
                await client.latest_blockhash(),
            )
            state = await client.send_and_confirm(signed, wait_seconds=TIMEOUT)
            assert state.confirmation in ("confirmed", "finalized")
        paused = await control(endpoint, "pause_slots")
        assert paused["ticking"] is False
        assert (await control(endpoint, "resume_slots"))["ticking"] is True
    assert failures > 0


async def test_pausing_needs_a_ticker(endpoint: RpcEndpoint) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{endpoint.http_url}/_control/pause_slots")
    assert response.status_code == 409


async def test_controls_are_off_unless_asked(chain: LocalChain) -> None:
    async with serve_local_rpc(chain, controls=False) as endpoint, httpx.AsyncClient() as http:
        assert (await http.post(f"{endpoint.http_url}/_control/state")).status_code == 404
        assert (await http.get(f"{endpoint.http_url}/health")).text == "ok"


def test_timing_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="confirmation_slots"):
        ChainTiming.cluster(FINALITY_DEPTH + 1)
    with pytest.raises(ValueError, match="history_slots"):
        ChainTiming(history_slots=FINALITY_DEPTH - 1)
    assert Commitment.FINALIZED.rank > Commitment.CONFIRMED.rank > Commitment.PROCESSED.rank


def test_a_port_pair_search_skips_a_port_whose_neighbour_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from marketd.chain.localnet import rpc_server

    real = rpc_server._listening_socket
    refused: list[int] = []
    taken: set[int] = set()

    def neighbour_taken(host: str, port: int) -> Any:
        if port in taken or (port != 0 and not refused):
            refused.append(port)
            raise OSError("taken")
        return real(host, port)

    monkeypatch.setattr(rpc_server, "_listening_socket", neighbour_taken)
    rpc_sock, pubsub_sock = bind_port_pair("127.0.0.1", 0)
    port = rpc_sock.getsockname()[1]
    rpc_sock.close()
    pubsub_sock.close()
    assert len(refused) == 1  # the first pair's neighbour was taken; the next pair was free
    # A port given explicitly is not searched: its neighbour taken means refused.
    taken.add(port + 1)
    with pytest.raises(OSError, match="taken"):
        bind_port_pair("127.0.0.1", port)
    assert refused[-1] == port + 1


def test_a_transaction_whose_fee_payer_does_not_exist_never_lands(chain: LocalChain) -> None:
    nobody = Keypair()
    tx = transfer_tx(chain, nobody, Pubkey.new_unique(), SOL)
    assert chain.simulate_transaction(tx).err == "AccountNotFound"
    assert chain.send_transaction(tx, skip_preflight=True) == tx.signatures[0]
    assert chain.get_record(str(tx.signatures[0])) is None
