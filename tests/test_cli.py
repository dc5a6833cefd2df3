"""The command line: keygen, migrate and the demo seed (embedded default)."""

from __future__ import annotations

import json
import stat

import pytest
from solders.keypair import Keypair
from sqlalchemy import func, select

from marketd import cli
from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.markets.rules import MarketState
from marketd.models import Discussion, Market, ProposalVote, Trade, User


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


async def test_demo_seed_covers_every_state_and_is_idempotent(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert await cli.seed(settings) == 36
    assert await cli.seed(settings) == 0
    database = Database(create_engine(settings))
    try:
        async with database.session() as session:
            states = set(await session.scalars(select(Market.state).distinct()))
            assert states == {state.value for state in MarketState}
            for model in (User, ProposalVote, Discussion, Trade):
                assert (await session.scalar(select(func.count()).select_from(model))) > 0
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


def test_serve_and_demo_start_uvicorn_with_the_app(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve"]) == 0
    assert cli.main(["demo"]) == 0
    assert [kw["port"] for _, kw in started] == [8123, 8123]
    assert started[0][0].title == "marketd"
