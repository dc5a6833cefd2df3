"""IPFS test fixtures: a real offline js-ipfs peer, trustless gateways in front of it (honest,
lying, down) and the mock Pinning Service.

The peer is npm ``ipfs@0.66.1`` installed by scripts/install-ipfs-peer.sh (run here when
missing). Processes are started on free loopback ports and waited for by polling their APIs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
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


def _http_ok(method: str, url: str, **kwargs: object) -> bool:
    try:
        return httpx.request(method, url, timeout=2.0, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def ipfs_node_modules() -> Path:
    if not (PEER_DIR / "node_modules" / ".bin" / "jsipfs").exists():
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=900)
    return PEER_DIR / "node_modules"


@dataclass(frozen=True)
class IpfsPeer:
    api_url: str
    gateway_url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def ipfs_peer(
    ipfs_node_modules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IpfsPeer]:
    """An offline js-ipfs daemon serving the Kubo RPC API on loopback."""
    home = tmp_path_factory.mktemp("ipfs-peer")
    env = {
        **os.environ,
        "IPFS_PATH": str(home / "repo"),
        "NODE_OPTIONS": f"--require {PEER_DIR / 'promise-with-resolvers.cjs'}",
    }
    jsipfs = str(ipfs_node_modules / ".bin" / "jsipfs")
    subprocess.run(
        [jsipfs, "init", "--profile", "test"], env=env, check=True, capture_output=True, timeout=120
    )
    api, gateway, swarm, rpc = (free_port() for _ in range(4))
    config_path = home / "repo" / "config"
    config = json.loads(config_path.read_text())
    config["Addresses"].update(
        API=f"/ip4/127.0.0.1/tcp/{api}",
        Gateway=f"/ip4/127.0.0.1/tcp/{gateway}",
        RPC=f"/ip4/127.0.0.1/tcp/{rpc}",
        Swarm=[f"/ip4/127.0.0.1/tcp/{swarm}"],
    )
    config_path.write_text(json.dumps(config, indent=2))
    log = home / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [jsipfs, "daemon", "--offline", "--enable-preload=false"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api_url = f"http://127.0.0.1:{api}"
    try:
        wait_until(lambda: _http_ok("POST", f"{api_url}/api/v0/version"), process, log)
        yield IpfsPeer(api_url, f"http://127.0.0.1:{gateway}", process)
    finally:
        stop(process)


@dataclass(frozen=True)
class PinningMock:
    url: str
    token: str


@pytest.fixture(scope="session")
def ipfs_pinning_mock(
    ipfs_node_modules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PinningMock]:
    """npm mock-ipfs-pinning-service (in memory; its pins stay "queued")."""
    port, token = free_port(), "marketd-test-token"
    log = tmp_path_factory.mktemp("pinning-mock") / "mock.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(ipfs_node_modules / ".bin" / "mock-ipfs-pinning-service"),
                "--port",
                str(port),
                "--token",
                token,
                "--loglevel",
                "error",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        wait_until(lambda: _http_ok("GET", f"{url}/pins", headers=headers), process, log)
        yield PinningMock(url, token)
    finally:
        stop(process)


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


@pytest.fixture(scope="session")
def ipfs_trustless_gateways(ipfs_peer: IpfsPeer) -> Iterator[Gateways]:
    with (
        serve_in_thread(trustless_gateway_app(ipfs_peer.api_url)) as honest,
        serve_in_thread(trustless_gateway_app(ipfs_peer.api_url, lie=True)) as lying,
    ):
        yield Gateways(honest=honest, lying=lying, down=f"http://127.0.0.1:{free_port()}")
