"""Resident memory of one `marketd serve` process under repeated /readyz and snapshot reads.

    .venv/bin/python bench/memory.py [--calls 10000]

Starts a server on the embedded database with a chain RPC stand-in (so /readyz makes an HTTP
probe) and the default IPFS gateways (so the snapshot route builds a gateway reader), then
calls `/readyz` and `GET /api/snapshots/{cid}` (a CID nobody stored: a 404 after the stores
are built) `--calls` times each, one client, keep-alive, and prints the server's RSS before,
between and after. A per-call HTTP client and TLS context grew the server by ~0.8 MB a call
under the serving process's tuned garbage collector; flat is what must hold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common import free_port, server_process

UNKNOWN_CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def rpc_stand_in() -> AsyncIterator[str]:
    """A JSON-RPC endpoint answering getHealth "ok" (what /readyz asks a chain node)."""

    async def rpc(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": "ok"})

    port = free_port()
    app = Starlette(routes=[Route("/", rpc, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    async with httpx.AsyncClient() as probe:
        for _ in range(100):  # bounded: up to ~5 s for the stand-in to listen
            with contextlib.suppress(httpx.HTTPError):
                await probe.post(f"http://127.0.0.1:{port}/", json={"id": 0})
                break
            await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def hammer(base: str, path: str, calls: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for _ in range(calls):
            status = (await http.get(path)).status_code
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        async with rpc_stand_in() as rpc_url:
            port = free_port()
            env = {
                "DATA_DIR": data_dir,
                "SOLANA_RPC_URL": rpc_url,
                "READINESS_CACHE_SECONDS": "0",  # every call probes: the worst case
                "RATE_LIMIT": "1000000/minute",
            }
            migrate = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "marketd", "migrate", env=os.environ | env
            )
            assert await migrate.wait() == 0
            with server_process(env, port) as server:
                base = f"http://127.0.0.1:{port}"
                await hammer(base, "/readyz", 50)  # warm up both routes
                await hammer(base, f"/api/snapshots/{UNKNOWN_CID}", 50)
                start = rss_mb(server.pid)
                ready = await hammer(base, "/readyz", args.calls)
                after_ready = rss_mb(server.pid)
                snapshots = await hammer(base, f"/api/snapshots/{UNKNOWN_CID}", args.calls)
                end = rss_mb(server.pid)
    print(f"/readyz x {args.calls}: {ready}; RSS {start:.1f} -> {after_ready:.1f} MB")
    print(
        f"/api/snapshots/{{cid}} x {args.calls}: {snapshots}; RSS {after_ready:.1f} -> {end:.1f} MB"
    )
    print(f"growth over {2 * args.calls} calls: {end - start:+.1f} MB")


if __name__ == "__main__":
    asyncio.run(main())
