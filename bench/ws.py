"""WebSocket fan-out benchmark: marketd's `/ws` against a bare `websockets` broadcast server.

    .venv/bin/python bench/ws.py                      # 5,000 connections, 1,000 subscribed
    .venv/bin/python bench/ws.py --connections 10000  # the stretch goal
    .venv/bin/python bench/ws.py --no-redis           # marketd with its in-process bus

For each server (each in its own process, one after the other, same parameters): the load
process (a separate process) opens `--connections` WebSocket connections on 127.0.0.1, the
first `--subscribers` subscribe to one market, and the server publishes an event every
`--interval` seconds carrying its publish time (CLOCK_MONOTONIC is shared by the processes of
one machine). Reported: delivery latency publish -> receipt (p50/p99/max), deliveries
received/expected, and the server's resident memory per connection.

marketd publishes through its bus exactly like the application does (topic `trades`), so the
path measured is bus -> sequencing (Redis script) -> `realtime` channel -> fan-out -> socket.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

HOST = "127.0.0.1"


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def event_body(market_id: str, n: int) -> dict[str, Any]:
    return {
        "type": "trade",
        "marketId": market_id,
        "tradeType": "BUY",
        "outcome": "YES",
        "shares": 1_000_000_000,
        "price": "0.512345678",
        "user": "BenchWa11et1111111111111111111111111111111",
        "signature": f"bench-{n}",
        "t0": time.monotonic(),
    }


# ------------------------------------------------------------------------ servers


async def serve_marketd(port: int, interval: float, redis_url: str | None) -> None:
    import uvicorn
    from solders.keypair import Keypair

    from marketd.app import create_app
    from marketd.config import RealtimeSettings, Settings
    from marketd.core.bus import InProcessBus
    from marketd.core.container import Container
    from marketd.core.migrate import upgrade
    from marketd.markets.cache import MarketCache
    from marketd.markets.schemas import MarketCreate
    from marketd.markets.service import MarketService
    from marketd.realtime.endpoints import router
    from marketd.realtime.service import Realtime

    data_dir = Path(tempfile.mkdtemp(prefix="marketd-bench-"))
    prefix = f"marketd-bench-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=data_dir,
        redis_url=redis_url,
        redis_prefix=prefix,
        rate_limit="1000000/minute",
        sign_in_rate_limit="1000000/minute",
        ip_wallets_limit=1_000_000,
        log_level="WARNING",
        realtime=RealtimeSettings(max_connections_per_ip=1_000_000, subscribe_concurrency=32),
    )
    container = Container.build(settings)
    await upgrade(container.database.engine)
    async with container.database.session() as session:
        cache = MarketCache(container.pages)
        market = await MarketService(session, settings, InProcessBus(), cache).propose(
            str(Keypair().pubkey()),
            MarketCreate(question="Benchmark market: will it scale?", category="other"),
        )
    app = create_app(container=container)
    realtime = Realtime(container)
    app.state.realtime = realtime
    app.include_router(router)
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        backlog=16384,
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    await realtime.start()
    print(f"READY {market.id}", flush=True)
    n = 0
    try:
        while not serving.done():
            n += 1
            await container.bus.publish("trades", event_body(market.id, n))
            await asyncio.sleep(interval)
    finally:
        await realtime.stop()
        if container.redis is not None:
            keys = [key async for key in container.redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await container.redis.delete(*keys)
        await container.close()


async def serve_ceiling(port: int, interval: float) -> None:
    """The ceiling: websockets' own server and `broadcast`, nothing else."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    subscribers: set[ServerConnection] = set()
    market_id = os.urandom(32).hex()  # a market id: 32 random bytes as hex

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if json.loads(message).get("type") == "subscribe":
                    subscribers.add(ws)
                    await ws.send(json.dumps({"type": "subscribed", "marketId": market_id}))
        except ConnectionClosed:
            pass  # the load process ends its connections without a closing handshake
        finally:
            subscribers.discard(ws)

    async with serve(handler, HOST, port, compression=None, backlog=16384):
        print(f"READY {market_id}", flush=True)
        n = 0
        while True:
            n += 1
            broadcast(subscribers, json.dumps({"seq": n, **event_body(market_id, n)}))
            await asyncio.sleep(interval)


# ------------------------------------------------------------------------ load


class Stats:
    """Shared by the client connections of the load process."""

    def __init__(self) -> None:
        self.window = (float("inf"), float("inf"))
        self.latencies: list[float] = []
        self.seqs: set[int] = set()
        self.frames = 0


def _number_after(payload: bytes, key: bytes) -> bytes | None:
    at = payload.find(key)
    if at < 0:
        return None
    start = at + len(key)
    end = start
    while end < len(payload) and payload[end] not in b",}":
        end += 1
    return payload[start:end]


def client_frame(text: str) -> bytes:
    """A masked text frame (clients must mask; short messages only)."""
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


class BenchClient(asyncio.Protocol):
    """A minimal WebSocket client: the load process must cost far less than the servers it
    measures, so frames are parsed by hand (no per-message coroutine, no JSON)."""

    def __init__(self, host: str, path: str, stats: Stats) -> None:
        self.host, self.path, self.stats = host, path, stats
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.acked: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.opened, self.acked):
            if not future.done():
                future.set_exception(ConnectionError("closed"))
                future.exception()  # whoever awaits it still gets it; nobody else is warned

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(text))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(bytes(self.buffer[:40]).decode()))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            if opcode == 0x1:
                self._text(payload)
            elif opcode == 0x9 and self.transport is not None:  # ping -> pong
                mask = os.urandom(4)
                masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def _text(self, payload: bytes) -> None:
        now = time.monotonic()
        stats = self.stats
        stats.frames += 1
        if not self.acked.done():
            if b'"subscribed"' in payload:
                self.acked.set_result(None)
            return
        t0 = _number_after(payload, b'"t0":')
        if t0 is None:
            return
        sent = float(t0)
        if stats.window[0] <= sent < stats.window[1]:
            stats.latencies.append(now - sent)
            seq = _number_after(payload, b'"seq":')
            stats.seqs.add(int(seq or 0))


async def load(
    url: str, market_id: str, connections: int, subscribers: int, duration: float
) -> dict[str, Any]:
    """Open the connections, subscribe some, then measure for `duration` seconds."""
    loop = asyncio.get_running_loop()
    address, _, path = url.removeprefix("ws://").partition("/")
    host, port = address.split(":")
    stats = Stats()
    clients: list[BenchClient] = []
    gate = asyncio.Semaphore(200)
    failures = 0

    async def open_one() -> None:
        nonlocal failures
        async with gate:
            for _ in range(5):
                try:
                    _, client = await loop.create_connection(
                        lambda: BenchClient(address, "/" + path, stats), host, int(port)
                    )
                    await asyncio.wait_for(client.opened, 60)
                    clients.append(client)
                    return
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.2)
            failures += 1

    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(connections)))
    subscribe = json.dumps({"type": "subscribe", "marketId": market_id}, separators=(",", ":"))

    async def subscribe_one(client: BenchClient) -> None:
        async with gate:
            client.send_text(subscribe)
            await asyncio.wait_for(client.acked, 120)

    targets = clients[:subscribers]
    await asyncio.gather(*(subscribe_one(client) for client in targets))
    setup_seconds = time.monotonic() - started
    stats.frames = 0
    print("CONNECTED", flush=True)
    await asyncio.sleep(1.0)  # warm-up, then the measured window
    stats.window = (time.monotonic(), time.monotonic() + duration)
    await asyncio.sleep(duration + 1.0)  # and late deliveries of the window's last events
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    latencies = sorted(stats.latencies)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "connections": len(clients),
        "failed": failures,
        "setup_seconds": round(setup_seconds, 1),
        "events": len(stats.seqs),
        "received": len(latencies),
        "expected": len(stats.seqs) * len(targets),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "all_received": stats.frames,
    }


# ------------------------------------------------------------------------ orchestration


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_line(stream: Any, start: str) -> str:
    """The first line starting with `start` (log lines before it are skipped)."""
    for line in stream:
        if line.startswith(start):
            return str(line)
    raise RuntimeError(f"the process ended before printing {start!r}")


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    command += ["--interval", str(args.interval)]
    if kind == "marketd" and not args.no_redis:
        command += ["--redis", args.redis]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        market_id = wait_for_line(server.stdout, "READY").split()[1]
        path = "/ws" if kind == "marketd" else "/"
        baseline = rss_bytes(server.pid)
        loader = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--load",
                f"ws://{HOST}:{port}{path}",
                "--market",
                market_id,
                "--connections",
                str(args.connections),
                "--subscribers",
                str(args.subscribers),
                "--duration",
                str(args.duration),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert loader.stdout is not None
        wait_for_line(loader.stdout, "CONNECTED")
        loaded = rss_bytes(server.pid)
        cpu_before, wall_before = cpu_seconds(server.pid), time.monotonic()
        result: dict[str, Any] = json.loads(wait_for_line(loader.stdout, "{"))
        cpu = cpu_seconds(server.pid) - cpu_before
        result["server_cpu_pct"] = round(100 * cpu / (time.monotonic() - wall_before))
        result["cpu_us_per_frame"] = round(cpu * 1e6 / max(1, result.pop("all_received")), 1)
        loader.wait()
        connections = max(1, result["connections"])
        result["server_rss_mb"] = round(loaded / 2**20, 1)
        result["kib_per_connection"] = round((loaded - baseline) / connections / 1024, 1)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--only", choices=["marketd", "ceiling"])
    parser.add_argument("--serve", choices=["marketd", "ceiling"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--market", help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_fd_limit()

    if args.serve or args.load:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:
            pass
    if args.serve == "marketd":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_marketd(args.port, args.interval, args.redis))
        return
    if args.serve == "ceiling":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_ceiling(args.port, args.interval))
        return
    if args.load:
        result = asyncio.run(
            load(args.load, args.market, args.connections, args.subscribers, args.duration)
        )
        print(json.dumps(result), flush=True)
        return

    print(
        f"{args.connections} connections, {args.subscribers} subscribed to one market, an event "
        f"every {args.interval * 1000:.0f} ms for {args.duration:.0f} s; "
        f"marketd with {'in-process bus' if args.no_redis else 'Redis'}; "
        f"fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; {os.cpu_count()} CPUs"
    )
    kinds = [args.only] if args.only else ["ceiling", "marketd"]
    results = {kind: run_one(kind, args) for kind in kinds}
    columns = [
        "connections", "failed", "setup_seconds", "events", "received", "expected",
        "p50_ms", "p99_ms", "max_ms", "server_rss_mb", "kib_per_connection",
        "server_cpu_pct", "cpu_us_per_frame",
    ]  # fmt: skip
    print(f"{'':20}" + "".join(f"{kind:>14}" for kind in results))
    for column in columns:
        print(f"{column:20}" + "".join(f"{results[k][column]!s:>14}" for k in results))
    if len(results) == 2 and results["ceiling"]["p99_ms"] and results["marketd"]["p99_ms"]:
        ratio = results["marketd"]["p99_ms"] / results["ceiling"]["p99_ms"]
        print(f"p99 marketd / ceiling: {ratio:.2f}x")


if __name__ == "__main__":
    main()
