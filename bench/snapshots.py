"""Snapshot benchmark (issue 6): 1,000 live markets with 50 posts each, one UTC day.

Times one full snapshot run (build every document, compute every CID, store and pin, record
pins and anchors, publish events) into (1) the local store and (2) the real IPFS peer (an
offline js-ipfs daemon started here on loopback, as the tests do), then the re-run of the
same day (which must add nothing). Target: under 10 s for all 1,000 markets.

    .venv/bin/python bench/snapshots.py [--markets 1000] [--posts 50] [--postgres] [--no-peer]
                                        [--upload add|car] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from solders.keypair import Keypair
from sqlalchemy import delete, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, scratch_database
from marketd.chain.addresses import new_market_id
from marketd.config import Settings, SnapshotSettings
from marketd.core.container import Container
from marketd.core.migrate import upgrade
from marketd.models import Discussion, IpfsAnchor, Market, SnapshotPin, User
from marketd.snapshots.service import SnapshotRun
from marketd.snapshots.snapshotter import run_snapshot

DAY = date(2026, 3, 14)
PEER_DIR = ROOT / "scripts" / "ipfs-peer"
TARGET_SECONDS = 10.0


async def seed(container: Container, markets: int, posts: int) -> None:
    wallets = [str(Keypair().pubkey()) for _ in range(200)]
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    market_rows: list[dict[str, Any]] = []
    post_rows: list[dict[str, Any]] = []
    for index in range(markets):
        market_id = new_market_id()
        market_rows.append(
            {
                "id": market_id,
                "on_chain_address": str(Keypair().pubkey()),
                "question": f"Benchmark market {index}?",
                "creator_wallet": wallets[index % len(wallets)],
                "state": ("ACTIVE", "RESOLVING", "DISPUTED")[index % 3],
                "tags": [],
                "created_at": start - timedelta(days=1),
            }
        )
        for number in range(posts):
            post_rows.append(
                {
                    "id": uuid.uuid4(),
                    "market_id": market_id,
                    "user_wallet": wallets[(index + number) % len(wallets)],
                    "content": f"Post {number} on market {index}: " + "opinion " * 20,
                    "created_at": start + timedelta(seconds=(index * posts + number) % 86_000),
                }
            )
    async with container.database.session() as session:
        users = [{"wallet": wallet} for wallet in wallets]
        await session.execute(insert(User), users)  # the platform's tables reference users
        await session.execute(insert(Market), market_rows)
        for offset in range(0, len(post_rows), 5_000):
            await session.execute(insert(Discussion), post_rows[offset : offset + 5_000])
        await session.commit()


async def forget_snapshots(container: Container) -> None:
    async with container.database.session() as session:
        await session.execute(delete(IpfsAnchor))
        await session.execute(delete(SnapshotPin))
        await session.commit()


async def timed_run(container: Container, config: SnapshotSettings) -> tuple[float, SnapshotRun]:
    started = time.perf_counter()
    run = await run_snapshot(container, day=DAY, config=config)
    elapsed = time.perf_counter() - started
    assert run is not None, "lock held elsewhere"
    return elapsed, run


def report(label: str, elapsed: float, run: SnapshotRun, markets: int) -> None:
    verdict = "OK" if elapsed < TARGET_SECONDS and len(run.pinned) == markets else "MISSED"
    print(
        f"{label:<28} {elapsed:7.2f} s  {elapsed / max(markets, 1) * 1000:6.2f} ms/market  "
        f"created={run.created} pinned={len(run.pinned)} failed={len(run.failed)}  "
        f"[target < {TARGET_SECONDS:.0f} s: {verdict}]"
    )


@contextlib.contextmanager
def ipfs_peer(home: Path) -> Iterator[str]:
    """An offline js-ipfs daemon (scripts/install-ipfs-peer.sh installs it); its RPC URL."""
    jsipfs = PEER_DIR / "node_modules" / ".bin" / "jsipfs"
    if not jsipfs.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install-ipfs-peer.sh")], check=True)
    env = os.environ | {
        "IPFS_PATH": str(home / "repo"),
        "NODE_OPTIONS": f"--require {PEER_DIR / 'promise-with-resolvers.cjs'}",
    }
    subprocess.run([jsipfs, "init", "--profile", "test"], env=env, check=True, capture_output=True)
    api, gateway, swarm, rpc = (free_port() for _ in range(4))
    config_path = home / "repo" / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"].update(
        API=f"/ip4/127.0.0.1/tcp/{api}",
        Gateway=f"/ip4/127.0.0.1/tcp/{gateway}",
        RPC=f"/ip4/127.0.0.1/tcp/{rpc}",
        Swarm=[f"/ip4/127.0.0.1/tcp/{swarm}"],
    )
    config_path.write_text(json.dumps(config))
    with (home / "daemon.log").open("wb") as log:
        process = subprocess.Popen(
            [jsipfs, "daemon", "--offline", "--enable-preload=false"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{api}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.post(f"{url}/api/v0/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((home / "daemon.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(15)


@contextlib.asynccontextmanager
async def database(postgres: bool, data_dir: Path) -> AsyncIterator[Container]:
    if postgres:
        async with scratch_database("snapshots") as url:
            settings = Settings(_env_file=None, data_dir=data_dir, database_url=url)  # type: ignore[call-arg]
            container = Container.build(settings)
            try:
                yield container
            finally:
                await container.close()
        return
    container = Container.build(Settings(_env_file=None, data_dir=data_dir))  # type: ignore[call-arg]
    await upgrade(container.database.engine)
    try:
        yield container
    finally:
        await container.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markets", type=int, default=1_000)
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--no-peer", action="store_true", help="skip the IPFS peer run")
    parser.add_argument(
        "--upload", choices=["add", "car"], default="add", help="Kubo RPC call of single puts"
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="uploads in flight (stores without put_many)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="marketd-bench-snapshots-") as scratch:
        data_dir = Path(scratch) / "data"
        async with database(args.postgres, data_dir) as container:
            started = time.perf_counter()
            await seed(container, args.markets, args.posts)
            backend = "PostgreSQL" if args.postgres else "SQLite (embedded)"
            print(
                f"{backend}: seeded {args.markets} markets x {args.posts} posts "
                f"in {time.perf_counter() - started:.1f} s"
            )
            base = {
                "pinning_service_url": None,
                "ipfs_gateways": [],
                "snapshot_concurrency": args.concurrency,
            }
            local = SnapshotSettings(**base, ipfs_api_url=None)
            elapsed, run = await timed_run(container, local)
            report("local store", elapsed, run, args.markets)
            elapsed, rerun = await timed_run(container, local)
            print(f"{'local store, same day again':<28} {elapsed:7.2f} s  created={rerun.created}")
            if args.no_peer:
                return
            with ipfs_peer(Path(scratch) / "peer") as api_url:
                await forget_snapshots(container)
                peer = SnapshotSettings(
                    **base, ipfs_api_url=api_url, ipfs_local_copy=False, ipfs_api_upload=args.upload
                )
                elapsed, run = await timed_run(container, peer)
                report("IPFS peer (js-ipfs RPC)", elapsed, run, args.markets)
                elapsed, rerun = await timed_run(container, peer)
                print(f"{'peer, same day again':<28} {elapsed:7.2f} s  created={rerun.created}")


if __name__ == "__main__":
    asyncio.run(main())
