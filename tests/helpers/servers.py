"""Readiness test helpers: small HTTP services on loopback standing in for a Kubo node, a
port nobody listens on, and a server that accepts connections but never answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from marketd.chain.localnet.rpc_server import EmbeddedServer


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    server = EmbeddedServer(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await server.ready.wait()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


def kubo_stub(authorization: str | None = None) -> Starlette:
    """Answers `POST /api/v0/version` the way Kubo does (GET is 405 on Kubo's RPC API); with
    `authorization`, only requests carrying that Authorization header (else 401, as Infura)."""

    async def version(request: Request) -> Response:
        if authorization is not None and request.headers.get("authorization") != authorization:
            return Response("unauthorized", status_code=401)
        return JSONResponse({"Version": "0.29.0", "Commit": "", "Repo": "15", "System": "amd64"})

    return Starlette(routes=[Route("/api/v0/version", version, methods=["POST"])])


def closed_port_url() -> str:
    """A loopback URL nobody listens on (the port is bound, released, and not reused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts TCP connections and never answers (a hung provider)."""
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        server.close()
        await server.wait_closed()
