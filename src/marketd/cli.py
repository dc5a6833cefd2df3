"""`marketd` command line: serve | worker | run | migrate | snapshot | prune | demo | keygen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from solders.keypair import Keypair

from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.core.gc_tuning import tune_garbage_collector
from marketd.core.logging import configure_logging
from marketd.core.metrics_server import start_metrics_server
from marketd.core.migrate import upgrade

if TYPE_CHECKING:
    from marketd.chain.localnet.embedded_chain import LocalChainRuntime

GRACEFUL_SHUTDOWN_SECONDS = 20
EXIT_TRY_LATER = 75  # sysexits' EX_TEMPFAIL: nothing was wrong, but nothing was done either
"""How long `serve` lets requests in flight finish after SIGTERM before cancelling them."""


async def migrate(settings: Settings) -> None:
    database = Database(create_engine(settings))
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()


async def seed(settings: Settings, runtime: LocalChainRuntime) -> int:
    """Seed the demo on the running local chain, and the database from the chain (once)."""
    from marketd.demo import seed_demo

    await migrate(settings)
    return await seed_demo(runtime)


def serve(settings: Settings) -> None:
    """The API; with WORKERS > 1, that many processes share the port (each builds its app
    from the environment through the `marketd.app:create_served_app` factory)."""
    if settings.workers > 1:
        uvicorn.run(
            "marketd.app:create_served_app",
            factory=True,
            workers=settings.workers,
            **_uvicorn_options(settings),
        )
        return
    from marketd.app import create_served_app

    uvicorn.run(create_served_app(settings), **_uvicorn_options(settings))


async def serve_async(settings: Settings, *, run_jobs: bool = False) -> None:
    """Serve the API inside a running event loop (beside the local chain's endpoint)."""
    from marketd.app import create_served_app

    app = create_served_app(settings, run_jobs=run_jobs)
    await uvicorn.Server(uvicorn.Config(app, **_uvicorn_options(settings))).serve()


async def worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The background jobs alone, until SIGINT/SIGTERM (or `stop`)."""
    from marketd.core.container import Container
    from marketd.core.jobs import JobHost
    from marketd.worker import build_jobs, chain_services

    stop = stop or _stop_on_signals()
    container = Container.build(settings)
    tune_garbage_collector()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(container.close)
        if settings.metrics_port is not None:
            # The worker's jobs (outbox, indexer, aggregator, locks) on its own metrics port.
            metrics = start_metrics_server(settings.metrics_host, settings.metrics_port)
            stack.callback(metrics.close)
        chain = await stack.enter_async_context(chain_services(container))
        host = JobHost(build_jobs(container, chain))
        host.start()
        await stop.wait()
        log = structlog.get_logger("marketd.cli")
        await log.ainfo("worker stopping: jobs finish their step and release their locks")
        await host.stop()
        await log.ainfo("worker stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    return stop


async def run(settings: Settings, chain_port: int | None = None) -> None:
    """Everything in one process: API, websockets and jobs; the simulated chain when no
    SOLANA_RPC_URL is configured."""
    await migrate(settings)
    if settings.solana_rpc_url is not None:
        await serve_async(settings, run_jobs=True)
        return
    from marketd.chain.localnet.embedded_chain import LocalChainRuntime

    async with LocalChainRuntime(settings, port=chain_port) as runtime:
        await serve_async(runtime.settings_for_clients(), run_jobs=True)


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        # websockets' Sans-I/O protocol: the "websockets" one runs on the library's legacy
        # API, deprecated since websockets 14.
        "ws": "websockets-sansio",
        # Each event is serialised once for all subscribers; per-connection compression
        # would redo that work for every socket.
        "ws_per_message_deflate": False,
        # A frame over the limit closes the connection (1009) before it is buffered whole;
        # uvicorn's default accepts 16 MB frames.
        "ws_max_size": settings.realtime.max_message_bytes,
        # On SIGTERM uvicorn stops accepting, sends websockets a close frame (1012) and waits
        # for requests in flight; bounded so the lifespan shutdown still runs within the
        # stop timeout of the service manager (systemd unit: 30 s).
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


DEMO_ELIGIBILITY = "any"


def demo_vote_eligibility(settings: Settings) -> Settings:
    """The demo's wallets are minutes old on a fresh chain: unless VOTE_ELIGIBILITY /
    DISPUTE_VOTE_ELIGIBILITY are set, any signed-in wallet may vote (the production defaults
    would refuse every one of them)."""
    updates = {
        name: DEMO_ELIGIBILITY
        for name in ("vote_eligibility", "dispute_vote_eligibility")
        if name not in settings.model_fields_set
    }
    return settings.model_copy(update=updates) if updates else settings


async def demo(settings: Settings, chain_port: int | None = None) -> None:
    """The embedded default on the simulated chain, seeded, then serving until stopped."""
    from marketd.chain.localnet.embedded_chain import LocalChainRuntime

    log = structlog.get_logger("marketd.cli")
    settings = demo_vote_eligibility(settings)
    async with LocalChainRuntime(settings, port=chain_port, controls=True) as runtime:
        created = await seed(settings, runtime)
        log.info(
            "demo ready",
            markets_created=created,
            chain_rpc=runtime.endpoint.http_url,
            url=f"http://{settings.host}:{settings.port}/docs",
            vote_eligibility=settings.vote_eligibility,
            dispute_vote_eligibility=settings.dispute_vote_eligibility,
            votes=(
                "any signed-in wallet may vote off-chain (demo)"
                if settings.vote_eligibility == DEMO_ELIGIBILITY
                else "off-chain votes need VOTE_ELIGIBILITY's strategies"
            ),
        )
        await serve_async(runtime.settings_for_clients(), run_jobs=True)


async def snapshot(settings: Settings, market_id: str | None, day: date | None) -> int:
    """One snapshot run now (what the daily job does); exit status 1 when any market failed."""
    from marketd.core.container import Container
    from marketd.core.errors import Problem
    from marketd.snapshots.snapshotter import run_snapshot

    container = Container.build(settings)
    try:
        result = await run_snapshot(container, market_id, day)
    except Problem as exc:
        print(exc.detail, file=sys.stderr)
        return 2
    finally:
        await container.close()
    if result is None:
        print(
            "another run holds the snapshot lock (a worker's run, or one that died less than "
            "SNAPSHOT_LOCK_TTL_SECONDS ago); nothing done: try again when it is free",
            file=sys.stderr,
        )
        return EXIT_TRY_LATER
    pinned, failed = len(result.pinned), len(result.failed)
    print(f"{result.day}: {result.created} new, {pinned} pinned, {failed} failed")
    for key, error in result.failed.items():
        print(f"  {key}: {error}", file=sys.stderr)
    return 1 if result.failed else 0


async def prune(settings: Settings) -> int:
    """Unpin snapshots past their retention (what the daily job does)."""
    from marketd.core.container import Container
    from marketd.snapshots.retention import run_prune

    container = Container.build(settings)
    try:
        result = await run_prune(container)
    finally:
        await container.close()
    if result is None:
        print("another instance is pruning; nothing done", file=sys.stderr)
        return 0
    pruned, failed = len(result.result.pruned), len(result.result.failed)
    print(f"before {result.result.cutoff}: {pruned} unpinned, {failed} failed")
    return 1 if result.result.failed else 0


def keygen(path: Path) -> str:
    """Write a new keypair as a JSON byte array (the Solana CLI format), mode 0600."""
    keypair = Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)
    path.write_text(json.dumps(list(bytes(keypair))))
    return str(keypair.pubkey())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the API server")
    commands.add_parser("worker", help="run the background jobs (aggregator, indexer, …)")
    run_parser = commands.add_parser("run", help="API and jobs in one process")
    commands.add_parser("migrate", help="apply database migrations")
    snapshot_parser = commands.add_parser("snapshot", help="snapshot discussions to IPFS now")
    snapshot_parser.add_argument("--market", default=None, help="one market id (default: all)")
    snapshot_parser.add_argument(
        "--date", type=date.fromisoformat, default=None, help="UTC day (default: yesterday)"
    )
    commands.add_parser("prune", help="unpin snapshots older than the retention")
    demo_parser = commands.add_parser(
        "demo", help="embedded default on a simulated chain with seeded demo data, then serve"
    )
    for chain_parser in (demo_parser, run_parser):
        chain_parser.add_argument(
            "--chain-port",
            type=int,
            default=None,
            help="local chain JSON-RPC port (default 8899, or a free port if taken; 0 = free)",
        )
        chain_parser.add_argument(
            "--fixed-program",
            action="store_true",
            help="the intended behaviour where zmart_core fails at runtime "
            "(sell_shares pays out; LOCAL_CHAIN_FIXED_PROGRAM)",
        )
    keygen_parser = commands.add_parser("keygen", help="create a backend keypair file")
    keygen_parser.add_argument("path", type=Path)
    return parser


def _redis_answers(settings: Settings, command: str) -> bool:
    """True when no Redis is configured or it answers; otherwise say so (URL without its
    password) and let the command exit 1."""
    if settings.redis_url is None:
        return True
    from marketd.core.redis import RedisUnreachable, require_redis

    try:
        asyncio.run(require_redis(settings.redis_url.get_secret_value()))
    except RedisUnreachable as exc:
        print(f"marketd {command}: {exc}", file=sys.stderr)
        return False
    return True


def local_chain_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settings with the local chain's program switches of `demo` / `run` applied."""
    updates: dict[str, object] = {}
    if getattr(args, "fixed_program", False):
        updates["local_chain_fixed_program"] = True
    return Settings.model_validate({**settings.model_dump(), **updates}) if updates else settings


class Stopped(BaseException):
    """A stop signal, re-raised by uvicorn after its graceful shutdown (see `_stops_cleanly`)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_name = signal.Signals(signal_number).name


@contextlib.contextmanager
def _stops_cleanly() -> Iterator[None]:
    """SIGINT and SIGTERM end the process with exit 0 once everything has unwound.

    uvicorn handles both itself (graceful shutdown), then re-raises the signal under the
    handler that was there before it. Python's default SIGTERM action would kill the process
    right there, inside the local chain's context (exit 143, its last changes not flushed);
    this handler raises `Stopped` instead, which unwinds every context (the chain is saved)."""

    def stopped(signal_number: int, _frame: object) -> None:
        raise Stopped(signal_number)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, stopped) for number in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = local_chain_settings(Settings(), args)
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    log = structlog.get_logger("marketd.cli")
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        log.info("migrated")
    elif args.command == "demo":
        if settings.solana_rpc_url is not None:
            print(
                "marketd demo runs on the simulated local chain; unset SOLANA_RPC_URL",
                file=sys.stderr,
            )
            return 2
        try:
            with _stops_cleanly():
                asyncio.run(demo(settings, args.chain_port))
        except Stopped as stop:
            log.info(
                "demo stopped; the local chain and the database are saved", by=stop.signal_name
            )
    elif args.command in ("serve", "worker", "run") and not _redis_answers(settings, args.command):
        return 1
    elif args.command == "serve":
        serve(settings)
    elif args.command == "snapshot":
        return asyncio.run(snapshot(settings, args.market, args.date))
    elif args.command == "prune":
        return asyncio.run(prune(settings))
    elif args.command == "worker":
        asyncio.run(worker(settings))
    elif args.command == "run":
        try:
            with _stops_cleanly():
                asyncio.run(run(settings, args.chain_port))
        except Stopped as stop:
            log.info("run stopped", by=stop.signal_name)
    else:
        try:
            print(keygen(args.path))
        except FileExistsError:
            print(f"{args.path} exists; not overwriting a key", file=sys.stderr)
            return 1
    return 0
