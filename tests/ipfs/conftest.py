"""IPFS test fixtures: a real offline js-ipfs peer, trustless gateways in front of it (honest,
lying, down) and the mock Pinning Service.

The peer is npm ``ipfs@0.66.1`` installed by scripts/install-ipfs-peer.sh (run here when
missing). Processes are started on free loopback ports and waited for by polling their APIs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers.ipfs import (
    INSTALL_SCRIPT,
    PEER_DIR,
    Gateways,
    IpfsPeer,
    PinningMock,
    free_port,
    http_ok,
    serve_in_thread,
    stop,
    trustless_gateway_app,
    wait_until,
)


@pytest.fixture(scope="session")
def ipfs_node_modules() -> Path:
    if not (PEER_DIR / "node_modules" / ".bin" / "jsipfs").exists():
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=900)
    return PEER_DIR / "node_modules"


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
        wait_until(lambda: http_ok("POST", f"{api_url}/api/v0/version"), process, log)
        yield IpfsPeer(api_url, f"http://127.0.0.1:{gateway}", process)
    finally:
        stop(process)


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
        wait_until(lambda: http_ok("GET", f"{url}/pins", headers=headers), process, log)
        yield PinningMock(url, token)
    finally:
        stop(process)


@pytest.fixture(scope="session")
def ipfs_trustless_gateways(ipfs_peer: IpfsPeer) -> Iterator[Gateways]:
    with (
        serve_in_thread(trustless_gateway_app(ipfs_peer.api_url)) as honest,
        serve_in_thread(trustless_gateway_app(ipfs_peer.api_url, lie=True)) as lying,
    ):
        yield Gateways(honest=honest, lying=lying, down=f"http://127.0.0.1:{free_port()}")
