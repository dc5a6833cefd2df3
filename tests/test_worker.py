"""The worker side: which jobs run, in `marketd worker`, `marketd run` and the API lifespan."""

from __future__ import annotations

import asyncio

import pytest

from marketd import cli
from marketd.app import create_app
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.config import Settings
from marketd.core.container import Container
from marketd.worker import build_jobs, chain_services

pytestmark = pytest.mark.integration  # runs worker jobs on a local chain


def embedded(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]


async def test_without_a_chain_no_chain_jobs_run(tmp_path):
    container = Container.build(embedded(tmp_path))
    try:
        async with chain_services(container) as chain:
            assert chain is None
            assert [job.name for job in build_jobs(container, chain)] == ["snapshot-scheduler"]
    finally:
        await container.close()


async def test_chain_jobs_run_against_the_configured_chain(tmp_path):
    async with LocalChainRuntime(embedded(tmp_path), port=0) as runtime:
        container = Container.build(runtime.settings_for_clients())
        try:
            async with chain_services(container) as chain:
                assert chain is not None
                assert str(chain.backend.pubkey) == str(runtime.backend.pubkey())
                names = [job.name for job in build_jobs(container, chain)]
                assert names[:3] == ["snapshot-scheduler", "outbox", "trade-relay"]
                assert "indexer" in names and "market-transitions" in names
                assert any(name.startswith("votes") for name in names), names
                assert set(chain.runner.handlers) >= {"approve_market", "resolve_dispute"}
                config = await chain.client.global_config()
                assert config is not None and config.admin == runtime.backend.pubkey()
        finally:
            await container.close()


async def test_worker_command_runs_jobs_until_stopped(tmp_path):
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    async with LocalChainRuntime(embedded(tmp_path), port=0) as runtime:
        settings = runtime.settings_for_clients().model_copy(update={"metrics_port": metrics_port})
        await cli.migrate(settings)
        stop = asyncio.Event()
        task = asyncio.create_task(cli.worker(settings, stop))
        await asyncio.sleep(0)  # let it start its jobs
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert "marketd_chain_outbox_rows" in scraped.text
        stop.set()
        await asyncio.wait_for(task, 20)
        assert task.exception() is None


async def test_api_lifespan_hosts_the_jobs_with_run_jobs(tmp_path):
    async with LocalChainRuntime(embedded(tmp_path), port=0) as runtime:
        settings = runtime.settings_for_clients()
        await cli.migrate(settings)
        app = create_app(settings, run_jobs=True)
        async with app.router.lifespan_context(app):
            assert app.state.container.settings.solana_rpc_url == settings.solana_rpc_url


async def test_run_command_starts_the_local_chain_when_none_is_configured(tmp_path, monkeypatch):
    served: list[Settings] = []

    async def fake_serve(settings: Settings, *, run_jobs: bool = False) -> None:
        assert run_jobs
        served.append(settings)

    monkeypatch.setattr(cli, "serve_async", fake_serve)
    await cli.run(embedded(tmp_path), chain_port=0)
    assert served[0].solana_rpc_url is not None and served[0].solana_rpc_url.startswith("http")
    await cli.run(served[0])  # configured chain: served as is
    assert served[1].solana_rpc_url == served[0].solana_rpc_url


async def test_signals_stop_the_worker():
    import os
    import signal

    stop = cli._stop_on_signals()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


def test_main_dispatches_worker_and_run(monkeypatch, tmp_path):
    calls: list[str] = []

    async def fake_worker(settings: Settings) -> None:
        calls.append("worker")

    async def fake_run(settings: Settings, chain_port: int | None = None) -> None:
        calls.append(f"run:{chain_port}")

    monkeypatch.setattr(cli, "worker", fake_worker)
    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert cli.main(["worker"]) == 0
    assert cli.main(["run", "--chain-port", "0"]) == 0
    assert calls == ["worker", "run:0"]


async def test_snapshot_scheduler_job_runs_until_stopped(tmp_path):
    from marketd.worker import run_snapshot_scheduler

    container = Container.build(embedded(tmp_path))
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(run_snapshot_scheduler(container, stop))
        await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert [job.name for job in build_jobs(container, None)] == ["snapshot-scheduler"]
    finally:
        await container.close()


def test_snapshot_and_prune_commands(tmp_path, monkeypatch, capsys):
    from datetime import date

    import marketd.snapshots.retention as retention
    import marketd.snapshots.snapshotter as snapshotter
    from marketd.snapshots.service import SnapshotRun

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IPFS_API_URL", raising=False)
    monkeypatch.setenv("IPFS_GATEWAYS", "")
    assert cli.main(["migrate"]) == 0
    assert cli.main(["snapshot", "--date", "2026-01-01"]) == 0
    assert "2026-01-01: 0 new, 0 pinned, 0 failed" in capsys.readouterr().out
    assert cli.main(["snapshot", "--market", "nope", "--date", "2026-01-01"]) == 2
    assert cli.main(["prune"]) == 0
    assert "unpinned" in capsys.readouterr().out

    async def busy(*args, **kwargs):
        return None

    async def failing(*args, **kwargs):
        return SnapshotRun(day=date(2026, 1, 2), failed={"m/2026-01-02": "peer down"})

    monkeypatch.setattr(snapshotter, "run_snapshot", busy)
    monkeypatch.setattr(retention, "run_prune", busy)
    # Another run holds the lock: said plainly, and not a success (a script must not take it
    # for a finished snapshot).
    assert cli.main(["snapshot"]) == cli.EXIT_TRY_LATER
    assert "another run holds the snapshot lock" in capsys.readouterr().err
    assert cli.main(["prune"]) == 0
    assert "another instance" in capsys.readouterr().err
    monkeypatch.setattr(snapshotter, "run_snapshot", failing)
    assert cli.main(["snapshot"]) == 1
    assert "peer down" in capsys.readouterr().err


def test_serve_with_several_workers_uses_the_app_factory(monkeypatch, tmp_path):
    started: list[tuple[object, dict[str, object]]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKERS", "3")
    assert cli.main(["serve"]) == 0
    [(app, options)] = started
    assert app == "marketd.app:create_served_app"
    assert options["factory"] is True and options["workers"] == 3
    assert options["ws_per_message_deflate"] is False
    assert options["ws_max_size"] == 64 * 1024
    assert options["timeout_graceful_shutdown"] == cli.GRACEFUL_SHUTDOWN_SECONDS
