"""`marketd` command line: serve | migrate | demo | keygen."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from solders.keypair import Keypair

from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.core.logging import configure_logging
from marketd.core.migrate import upgrade

if TYPE_CHECKING:
    from marketd.chain.localnet.runtime import LocalChainRuntime


async def migrate(settings: Settings) -> None:
    database = Database(create_engine(settings))
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()


async def seed(settings: Settings, runtime: LocalChainRuntime) -> int:
    """Seed the demo on the running local chain and into the database (once)."""
    from marketd.demo import seed_demo

    database = Database(create_engine(settings))
    try:
        await upgrade(database.engine)
        async with database.session() as session:
            return await seed_demo(session, runtime)
    finally:
        await database.dispose()


def serve(settings: Settings) -> None:
    from marketd.app import create_app

    uvicorn.run(create_app(settings), **_uvicorn_options(settings))


async def serve_async(settings: Settings) -> None:
    """Serve the API inside a running event loop (beside the local chain's endpoint)."""
    from marketd.app import create_app

    config = uvicorn.Config(create_app(settings), **_uvicorn_options(settings))
    await uvicorn.Server(config).serve()


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        "ws": "websockets",
    }


async def demo(settings: Settings, chain_port: int | None = None) -> None:
    """The embedded default on the simulated chain, seeded, then serving until stopped."""
    from marketd.chain.localnet.runtime import LocalChainRuntime

    log = structlog.get_logger("marketd.cli")
    async with LocalChainRuntime(settings, port=chain_port) as runtime:
        created = await seed(settings, runtime)
        log.info(
            "demo ready",
            markets_created=created,
            chain_rpc=runtime.endpoint.http_url,
            url=f"http://{settings.host}:{settings.port}/docs",
        )
        await serve_async(runtime.settings_for_clients())


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
    commands.add_parser("migrate", help="apply database migrations")
    demo_parser = commands.add_parser(
        "demo", help="embedded default on a simulated chain with seeded demo data, then serve"
    )
    demo_parser.add_argument(
        "--chain-port",
        type=int,
        default=None,
        help="local chain JSON-RPC port (default 8899, or a free port if taken; 0 = free port)",
    )
    keygen_parser = commands.add_parser("keygen", help="create a backend keypair file")
    keygen_parser.add_argument("path", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
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
        asyncio.run(demo(settings, args.chain_port))
    elif args.command == "serve":
        serve(settings)
    else:
        try:
            print(keygen(args.path))
        except FileExistsError:
            print(f"{args.path} exists; not overwriting a key", file=sys.stderr)
            return 1
    return 0
