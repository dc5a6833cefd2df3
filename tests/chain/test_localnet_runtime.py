"""LocalChainRuntime: the embedded simulated chain of a marketd process."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from structlog.testing import capture_logs

from marketd.chain.addresses import global_config_address, new_market_id
from marketd.chain.localnet import embedded_chain as runtime_module
from marketd.chain.localnet.embedded_chain import (
    BACKEND_KEY_FILE,
    LocalChainRuntime,
    PersistentLocalChain,
    backend_keypair,
    parse_keypair,
)
from marketd.chain.localnet.seed import (
    WALLET_FUNDING,
    LocalProgram,
    LocalTransactionError,
    PartiallySeededError,
    demo_plan,
    demo_wallets,
    ensure_global_config,
    seed_chain,
)
from marketd.chain.localnet.svm import SNAPSHOT_NAME
from marketd.config import Settings

pytestmark = pytest.mark.integration  # runs the local chain runtime

SOL = 1_000_000_000


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **overrides)


async def rpc(url: str, method: str, *params: object) -> object:
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )
    return reply.json()["result"]


async def test_first_start_creates_the_key_and_global_config_and_serves_rpc(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with capture_logs() as logs:
        async with LocalChainRuntime(settings, port=0) as runtime:
            key_file = tmp_path / BACKEND_KEY_FILE
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            backend = runtime.backend
            assert Keypair.from_bytes(bytes(json.loads(key_file.read_text()))) == backend
            config = runtime.program().read(
                "GlobalConfig", global_config_address(runtime.program_id)
            )
            assert config is not None
            assert (config["admin"], config["backend_authority"]) == (backend.pubkey(),) * 2
            assert runtime.endpoint.http_url.startswith("http://127.0.0.1:")

            async with AsyncClient(runtime.endpoint.http_url, commitment=Confirmed) as client:
                program = await client.get_account_info(runtime.program_id)
                assert program.value is not None and program.value.executable
                balance = await client.get_balance(backend.pubkey())
                assert balance.value > 0

            for_clients = runtime.settings_for_clients()
            assert for_clients.solana_rpc_url == runtime.endpoint.http_url
            assert for_clients.solana_ws_url == runtime.endpoint.ws_url
            assert for_clients.backend_keypair is not None
            assert parse_keypair(for_clients.backend_keypair.get_secret_value()) == backend
    simulated = [entry for entry in logs if "SIMULATED" in entry["event"]]
    assert len(simulated) == 1 and simulated[0]["log_level"] == "warning"
    assert (tmp_path / "chain" / SNAPSHOT_NAME).is_file()


async def test_restart_reuses_the_chain_key_config_and_accounts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    market_id = new_market_id()
    async with LocalChainRuntime(settings, port=0) as first:
        program = first.program()
        creator = Keypair()
        first.chain.airdrop(creator.pubkey(), 100 * SOL)
        program.create_market(creator, market_id)
        backend = first.backend
        config = first.chain.get_account(program.config)
        market = first.chain.get_account(program.market(market_id))
        records = len(list(first.chain.records()))
    async with LocalChainRuntime(settings, port=0) as second:
        program = second.program()
        assert second.backend == backend
        assert second.chain.get_account(program.config) == config
        assert second.chain.get_account(program.market(market_id)) == market
        assert len(list(second.chain.records())) == records  # nothing was re-initialised
        async with AsyncClient(second.endpoint.http_url, commitment=Confirmed) as client:
            info = await client.get_account_info(program.market(market_id))
            assert info.value is not None and bytes(info.value.data) == market.data  # type: ignore[union-attr]


@pytest.mark.parametrize("form", ["base58", "json", "file"])
async def test_a_configured_backend_key_becomes_admin(tmp_path: Path, form: str) -> None:
    key = Keypair()
    value = {"base58": str(key), "json": json.dumps(list(bytes(key)))}.get(form)
    if value is None:
        path = tmp_path / "key.json"
        path.write_text(json.dumps(list(bytes(key))))
        value = str(path)
    settings = settings_for(tmp_path, backend_keypair=SecretStr(value))
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert runtime.backend == key
        config = runtime.program().read("GlobalConfig", runtime.program().config)
        assert config is not None and config["admin"] == key.pubkey()
        assert runtime.settings_for_clients().backend_keypair == settings.backend_keypair
    assert not (tmp_path / BACKEND_KEY_FILE).exists()


async def test_another_backend_key_on_an_existing_chain_is_refused(tmp_path: Path) -> None:
    async with LocalChainRuntime(settings_for(tmp_path), port=0):
        pass
    other = settings_for(tmp_path, backend_keypair=SecretStr(str(Keypair())))
    with pytest.raises(RuntimeError, match="belongs to admin"):
        await LocalChainRuntime(other, port=0).start()


def test_a_configured_chain_never_starts_a_local_one(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, solana_rpc_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="SOLANA_RPC_URL"):
        LocalChainRuntime(settings)


async def test_lifecycle_errors(tmp_path: Path) -> None:
    runtime = LocalChainRuntime(settings_for(tmp_path), port=0)
    for attribute in ("chain", "endpoint", "backend"):
        with pytest.raises(RuntimeError, match="not running"):
            getattr(runtime, attribute)
    await runtime.stop()  # stopping what never started is harmless
    await runtime.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            await runtime.start()
    finally:
        await runtime.stop()
    with pytest.raises(RuntimeError, match="not running"):
        runtime.chain  # noqa: B018


async def test_default_port_falls_back_to_a_free_one_when_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind((runtime_module.HOST, runtime_module.DEFAULT_PORT))
            holder.listen()
        except OSError:
            pass  # someone else already holds it: just as taken
        async with LocalChainRuntime(settings_for(tmp_path)) as runtime:
            url = runtime.endpoint.http_url
            assert not url.endswith(f":{runtime_module.DEFAULT_PORT}")
            assert await rpc(url, "getHealth") == "ok"


async def test_an_explicit_port_that_is_taken_fails_loudly(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind((runtime_module.HOST, 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(OSError):
            await LocalChainRuntime(settings_for(tmp_path), port=taken).start()


def free_port_pair() -> int:
    """A port P with P + 1 free as well: the runtime serves PubSub on RPC port + 1 (as Agave)
    and moves to another pair when either is taken."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind((runtime_module.HOST, 0))
            port = int(first.getsockname()[1])
            try:
                second.bind((runtime_module.HOST, port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no free pair of ports")


async def test_default_port_is_used_when_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = free_port_pair()
    monkeypatch.setattr(runtime_module, "DEFAULT_PORT", free)
    async with LocalChainRuntime(settings_for(tmp_path)) as runtime:
        assert runtime.endpoint.http_url == f"http://127.0.0.1:{free}"


def test_batches_write_one_snapshot_and_a_failed_batch_none(tmp_path: Path) -> None:
    chain = PersistentLocalChain(tmp_path)
    snapshot = tmp_path / SNAPSHOT_NAME
    written = snapshot.read_bytes()
    wallet = Keypair()
    with chain.batch():
        with chain.batch():
            chain.airdrop(wallet.pubkey(), SOL)
        assert snapshot.read_bytes() == written  # nested: still deferred
        chain.airdrop(wallet.pubkey(), SOL)
        assert snapshot.read_bytes() == written
    assert PersistentLocalChain(tmp_path).get_balance(wallet.pubkey()) == 2 * SOL
    written = snapshot.read_bytes()
    with pytest.raises(ZeroDivisionError), chain.batch():
        chain.airdrop(wallet.pubkey(), SOL)
        1 / 0  # noqa: B018
    assert snapshot.read_bytes() == written
    assert PersistentLocalChain(tmp_path).get_balance(wallet.pubkey()) == 2 * SOL
    with chain.batch(), pytest.raises(ZeroDivisionError), chain.batch():
        1 / 0  # noqa: B018 - an inner batch failing alone keeps the outer one going
    with chain.batch():
        pass  # nothing changed: nothing written
    assert snapshot.read_bytes() == written


def test_backend_key_file_is_reused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = backend_keypair(settings)
    assert backend_keypair(settings) == first


async def test_seed_refuses_a_partially_seeded_chain_and_skips_a_seeded_one(tmp_path: Path) -> None:
    plan = demo_plan()[:3]
    async with LocalChainRuntime(settings_for(tmp_path), port=0) as runtime:
        program = runtime.program()
        assert seed_chain(program, runtime.backend, 1_800_000_000, plan[:1]) is True
        slot = runtime.chain.slot
        assert seed_chain(program, runtime.backend, 1_800_000_000, plan[:1]) is False
        assert runtime.chain.slot == slot
        with pytest.raises(PartiallySeededError, match="1 of 3"):
            seed_chain(program, runtime.backend, 1_800_000_000, plan)
        balances = [runtime.chain.get_balance(w.pubkey()) for w in demo_wallets()]
        assert seed_chain(program, runtime.backend, 1_800_000_000, plan[1:]) is True
        spent = [
            before - runtime.chain.get_balance(w.pubkey())
            for before, w in zip(balances, demo_wallets(), strict=True)
        ]
        assert all(0 <= cost < WALLET_FUNDING for cost in spent)  # funded once, not again
        config = ensure_global_config(program, runtime.backend)
        assert config["admin"] == runtime.backend.pubkey()


async def test_local_program_resends_identical_transactions_and_names_missing_accounts(
    tmp_path: Path,
) -> None:
    async with LocalChainRuntime(settings_for(tmp_path), port=0) as runtime:
        program = runtime.program()
        with pytest.raises(KeyError, match="creator"):
            program.instruction("create_market", {}, {})
        creator = Keypair()
        runtime.chain.airdrop(creator.pubkey(), 100 * SOL)
        market_id = new_market_id()
        market = program.market(market_id)
        program.create_market(creator, market_id)
        # Recording the same aggregate twice is allowed; the identical second transaction must
        # land on its own rather than be dropped as a duplicate of the first.
        accounts = {
            "market": market,
            "global_config": program.config,
            "backend_authority": runtime.backend.pubkey(),
        }
        args = {"final_likes": 3, "final_dislikes": 1}
        landed = [
            program.call("aggregate_proposal_votes", args, accounts, [runtime.backend])
            for _ in range(2)
        ]
        assert landed[0].signature != landed[1].signature
        assert all(record.err is None for record in landed)

        runtime.chain.drop_next_sends(1)
        with pytest.raises(LocalTransactionError, match="did not land"):
            program.call("aggregate_proposal_votes", args, accounts, [runtime.backend])

        with pytest.raises(LocalTransactionError, match="'Custom': 0") as refused:
            ensure_global_config_again(program, runtime.backend)
        assert refused.value.signature is not None


def ensure_global_config_again(program: LocalProgram, backend: Keypair) -> None:
    program.call(
        "initialize_global_config",
        {"backend_authority": backend.pubkey()},
        {
            "admin": backend.pubkey(),
            "global_config": program.config,
            "protocol_fee_wallet": backend.pubkey(),
        },
        [backend],
    )


async def test_the_runtime_ticks_in_real_time_and_its_setup_is_final(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, localnet_slot_ms=20, localnet_history_slots=64)
    async with LocalChainRuntime(settings, port=0, controls=True) as runtime:
        timing = runtime.chain.timing
        assert (timing.slot_per_transaction, timing.confirmation_slots, timing.history_slots) == (
            False,
            2,
            64,
        )
        url = runtime.endpoint.http_url
        # What the runtime wrote is final from the start, like a genesis.
        config = await rpc(
            url,
            "getAccountInfo",
            str(global_config_address(runtime.program_id)),
            {"commitment": "finalized", "encoding": "base64"},
        )
        assert isinstance(config, dict) and config["value"] is not None
        async with httpx.AsyncClient() as http:
            state = (await http.get(f"{url}/_control/state")).json()
            assert state["ticking"] is True
            # An idle chain's clock is never frozen: the slots move by themselves.
            async with asyncio.timeout(10):
                slot = state["slot"]
                while slot <= state["slot"] + 3:
                    await asyncio.sleep(0.02)
                    slot = (await http.get(f"{url}/_control/state")).json()["slot"]


async def test_marketd_run_serves_no_controls_and_slot_ms_0_is_deterministic(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, localnet_slot_ms=0)
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert runtime.chain.timing.slot_per_transaction
        assert runtime.slot_seconds is None
        async with httpx.AsyncClient() as http:
            url = runtime.endpoint.http_url
            assert (await http.get(f"{url}/_control/state")).status_code == 404
