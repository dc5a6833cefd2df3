"""The command line: keygen, migrate and the demo seed (embedded default)."""

from __future__ import annotations

import json
import signal
import stat

import httpx
import pytest
from solders.keypair import Keypair
from sqlalchemy import func, select

from marketd import cli
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.core.redis import redacted
from marketd.models import Discussion, IndexedEventRow, Market, ProposalVote, Trade, User
from marketd.shared.market_state import MarketState

from .helpers.logs import plain_test_logging


@pytest.fixture(autouse=True)
def _fresh_logging():
    """`cli.main` configures structlog to print to the sys.stderr of the moment, which under
    capsys is a stream closed after the test; later log lines must not go there."""
    yield
    plain_test_logging()


def test_keygen_writes_a_private_solana_keyfile(tmp_path, capsys):
    path = tmp_path / "keys" / "backend.json"
    assert cli.main(["keygen", str(path)]) == 0
    keypair = Keypair.from_bytes(bytes(json.loads(path.read_text())))
    assert capsys.readouterr().out.strip() == str(keypair.pubkey())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli.main(["keygen", str(path)]) == 1  # never overwrites a key


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([])


@pytest.mark.integration  # runs the local chain runtime
async def test_demo_seed_covers_every_state_and_is_idempotent(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    async with LocalChainRuntime(settings, port=0) as runtime:
        assert await cli.seed(settings, runtime) == 36
        assert await cli.seed(settings, runtime) == 0
    database = Database(create_engine(settings))
    try:
        async with database.session() as session:
            states = set(await session.scalars(select(Market.state).distinct()))
            assert states == {state.value for state in MarketState}
            for model in (User, ProposalVote, Discussion, Trade):
                assert (await session.scalar(select(func.count()).select_from(model))) > 0
            # The chain's part is the indexer's: each trade and vote is an indexed event's row.
            indexed = set(await session.scalars(select(IndexedEventRow.signature)))
            for model in (Trade, ProposalVote):
                assert set(await session.scalars(select(model.tx_signature))) <= indexed
            active = (await session.scalars(select(Market).where(Market.state == "ACTIVE"))).all()
            assert all(m.current_price_yes + m.current_price_no == 1 for m in active)
            assert all(0 < m.current_price_yes < 1 for m in active)
    finally:
        await database.dispose()


def test_migrate_command_creates_the_schema(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["migrate"]) == 0
    assert (tmp_path / "marketd.db").exists()


def test_serve_starts_uvicorn_with_the_app(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve"]) == 0
    [(app, options)] = started
    assert options["port"] == 8123 and app.title == "marketd"


@pytest.mark.parametrize("command", ["serve", "worker", "run"])
def test_an_unreachable_redis_is_named_without_its_password(tmp_path, monkeypatch, capsys, command):
    started = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: started.append(app))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", "redis://cache:s3cret-pw@127.0.0.1:1/0")
    assert cli.main([command]) == 1
    err = capsys.readouterr().err
    assert f"marketd {command}: cannot reach Redis at redis://cache:***@127.0.0.1:1/0" in err
    assert "(REDIS_URL)" in err and "s3cret-pw" not in err
    assert started == []


def test_a_reachable_redis_lets_serve_start(tmp_path, monkeypatch, redis_url):
    started = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: started.append(app))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert cli.main(["serve"]) == 0
    assert len(started) == 1


def test_redacted_urls_keep_everything_but_the_password():
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redacted("rediss://:pw@cache.example:6380/1") == "rediss://:***@cache.example:6380/1"
    assert redacted("redis://user:pw@cache.example/2?ssl=1") == (
        "redis://user:***@cache.example/2?ssl=1"
    )


@pytest.mark.integration  # runs the local chain runtime
def test_demo_serves_the_app_on_the_seeded_local_chain(tmp_path, monkeypatch):
    served = []

    async def fake_serve(settings, *, run_jobs=False):
        assert run_jobs  # the demo also runs the workers (aggregator, indexer, …)
        # While the app would be serving, the simulated chain answers at the URL it was given.
        async with httpx.AsyncClient() as http:
            reply = await http.post(
                settings.solana_rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "getHealth", "params": []},
            )
        served.append((settings, reply.json()["result"]))

    monkeypatch.setattr(cli, "serve_async", fake_serve)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SOLANA_RPC_URL", raising=False)
    monkeypatch.delenv("VOTE_ELIGIBILITY", raising=False)
    monkeypatch.delenv("DISPUTE_VOTE_ELIGIBILITY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--chain-port", "0"]) == 0
    assert cli.main(["demo", "--chain-port", "0"]) == 0  # restart: reuses chain and database
    [(settings, health), (again, _)] = served
    assert health == "ok"
    assert settings.solana_rpc_url.startswith("http://127.0.0.1:")
    assert settings.solana_ws_url.startswith("ws://127.0.0.1:")
    assert settings.backend_keypair == again.backend_keypair is not None
    assert (tmp_path / "chain" / "chain.json").is_file()
    # The demo's wallets are minutes old: any signed-in wallet may vote (and the log says so).
    assert settings.vote_eligibility == settings.dispute_vote_eligibility == "any"


def test_demo_keeps_a_configured_vote_eligibility(monkeypatch):
    monkeypatch.setenv("VOTE_ELIGIBILITY", "min_balance_sol=1")
    monkeypatch.delenv("DISPUTE_VOTE_ELIGIBILITY", raising=False)
    settings = cli.demo_vote_eligibility(Settings(_env_file=None))
    assert settings.vote_eligibility == "min_balance_sol=1"  # the operator's choice stands
    assert settings.dispute_vote_eligibility == "any"
    explicit = Settings(_env_file=None, dispute_vote_eligibility="position")
    assert cli.demo_vote_eligibility(explicit).dispute_vote_eligibility == "position"


def test_demo_refuses_a_configured_chain(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOLANA_RPC_URL", "https://api.devnet.solana.com")
    assert cli.main(["demo"]) == 2
    assert "SOLANA_RPC_URL" in capsys.readouterr().err
    assert not (tmp_path / "chain").exists()


async def test_serve_async_runs_uvicorn_in_the_running_loop(tmp_path, monkeypatch):
    configs = []

    async def fake_serve(server):
        configs.append(server.config)

    monkeypatch.setattr(cli.uvicorn.Server, "serve", fake_serve)
    await cli.serve_async(Settings(_env_file=None, data_dir=tmp_path, port=8124))  # type: ignore[call-arg]
    [config] = configs
    assert config.port == 8124 and config.app.title == "marketd"


@pytest.mark.integration  # runs the local chain runtime
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_with_exit_0_and_a_log_line_on_sigterm_as_on_sigint(
    tmp_path, monkeypatch, capsys, signal_number
):
    """uvicorn re-raises the stop signal after its graceful shutdown; the default SIGTERM
    action would kill the process inside the local chain's context (exit 143, unsaved)."""
    unwound = []

    async def fake_serve(settings, *, run_jobs=False):
        try:
            signal.raise_signal(signal_number)  # what uvicorn does once it has shut down
        finally:
            unwound.append(settings.solana_rpc_url)

    monkeypatch.setattr(cli, "serve_async", fake_serve)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SOLANA_RPC_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["demo", "--chain-port", "0"]) == 0
    assert len(unwound) == 1 and (tmp_path / "chain" / "chain.json").is_file()
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
    logged = capsys.readouterr().err  # logs go to stderr
    assert "demo stopped" in logged and signal.Signals(signal_number).name in logged
