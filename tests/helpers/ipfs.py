"""The IPFS peers the tests run: a real offline js-ipfs peer (npm ``ipfs@0.66.1``, installed by
scripts/install-ipfs-peer.sh), the mock Pinning Service and trustless gateways in front of the
peer (honest, lying, down). tests/ipfs/conftest.py starts them as session fixtures."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REPO_ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = REPO_ROOT / "scripts" / "ipfs-peer"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-ipfs-peer.sh"
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll a readiness condition until it holds; fail early if the process died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {STARTUP_TIMEOUT}s:\n{log.read_text()}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def http_ok(method: str, url: str, **kwargs: object) -> bool:
    try:
        return httpx.request(method, url, timeout=2.0, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class IpfsPeer:
    api_url: str
    gateway_url: str
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class PinningMock:
    url: str
    token: str


# --- trustless gateways for tests -------------------------------------------------------------
# js-ipfs's own gateway ignores ?format=raw|car, so this tiny server answers the trustless
# requests by asking the peer's RPC (block/get for raw, dag/export for car). The "lying" variant
# flips the last byte of whatever it serves.


def trustless_gateway_app(api_url: str, *, lie: bool = False) -> Starlette:
    client = httpx.AsyncClient(base_url=f"{api_url}/api/v0/", timeout=30.0)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    async def serve(request: Request) -> Response:
        cid = request.path_params["cid"]
        accept = request.headers.get("accept", "")
        fmt = request.query_params.get("format") or ("car" if "ipld.car" in accept else "raw")
        endpoint = "block/get" if fmt == "raw" else "dag/export"
        reply = await client.post(endpoint, params={"arg": cid, "timeout": "5s"})
        if reply.status_code != 200:
            return Response(reply.content, status_code=502)
        body = reply.content
        if lie:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        media = "application/vnd.ipld.raw" if fmt == "raw" else "application/vnd.ipld.car"
        return Response(body, media_type=media)

    return Starlette(routes=[Route("/ipfs/{cid}", serve)], lifespan=lifespan)


@contextlib.contextmanager
def serve_in_thread(app: Starlette) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True)
class Gateways:
    honest: str
    lying: str
    down: str
