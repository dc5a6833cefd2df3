"""`marketd` command line: serve | migrate | demo | keygen."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn
from solders.keypair import Keypair

from marketd.config import Settings
from marketd.core.database import Database, create_engine
from marketd.core.logging import configure_logging
from marketd.core.migrate import upgrade


async def migrate(settings: Settings) -> None:
    database = Database(create_engine(settings))
    try:
        await upgrade(database.engine)
    finally:
        await database.dispose()


async def seed(settings: Settings) -> int:
    from marketd.chain.program import program_id
    from marketd.demo import seed_demo

    database = Database(create_engine(settings))
    try:
        await upgrade(database.engine)
        async with database.session() as session:
            return await seed_demo(session, program_id(settings))
    finally:
        await database.dispose()


def serve(settings: Settings) -> None:
    from marketd.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        ws="websockets",
    )


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
    commands.add_parser("demo", help="embedded default with seeded demo data, then serve")
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
        created = asyncio.run(seed(settings))
        log.info(
            "demo ready",
            markets_created=created,
            url=f"http://{settings.host}:{settings.port}/docs",
        )
        serve(settings)
    elif args.command == "serve":
        serve(settings)
    else:
        try:
            print(keygen(args.path))
        except FileExistsError:
            print(f"{args.path} exists; not overwriting a key", file=sys.stderr)
            return 1
    return 0
