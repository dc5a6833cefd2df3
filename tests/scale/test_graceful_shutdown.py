"""Graceful shutdown of real processes on SIGTERM (see conftest.py for the cluster).

* `marketd worker` releases its leader locks on the way out: with a 60 s lock TTL, a standby
  worker takes every job over long before the locks could have expired;
* `marketd serve` sends WebSocket clients a close frame and finishes the requests in flight
  before it exits.
"""

from __future__ import annotations

import asyncio
import json
import signal

DEADLINE = 30.0


async def test_a_stopping_worker_releases_its_locks_to_the_standby(shutdown_cluster):
    cluster = shutdown_cluster
    first = await cluster.start_worker("worker-1")
    await cluster.eventually(lambda: cluster.leaders_held_by(first), "worker-1 leading")
    standby = await cluster.start_worker("worker-2")
    metrics = await cluster.metrics(standby)
    assert metrics[("marketd_vote_aggregator_leader", ())] == 0
    holders = await cluster.lock_holders()
    assert {holders.get(name) for name in cluster.leader_locks} == {first.pid}  # a standby

    assert await first.signal_and_wait(signal.SIGTERM) == 0
    assert "worker stopped" in first.log_tail(50)
    # Released on the way out, not left to expire: no key names the stopped worker.
    assert first.pid not in (await cluster.lock_holders()).values()
    # The 60 s TTL cannot explain a take-over within the deadline; the release does.
    await cluster.eventually(
        lambda: cluster.leaders_held_by(standby), "the standby leading every job", within=20.0
    )
    metrics = await cluster.metrics(standby)
    assert metrics[("marketd_vote_aggregator_leader", ())] == 1
    await standby.stop()
    assert standby.proc.returncode == 0


async def test_a_stopping_serve_closes_websockets_and_finishes_requests(shutdown_cluster):
    cluster = shutdown_cluster
    serve = await cluster.start_serve("serve-1")
    client = cluster.identity()
    body = json.dumps({"wallet": client.wallet}).encode()
    head = (
        "POST /api/auth/challenge HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{serve.port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Forwarded-For: {client.ip}\r\n"
        "\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", serve.port)
    try:
        async with cluster.websocket(serve) as ws:
            await ws.send({"type": "ping", "id": "open"})
            await ws.until(lambda m: m["type"] == "pong")
            # A request in flight: its headers and half its body are in, the rest is not.
            writer.write(head + body[:10])
            await writer.drain()
            await cluster.eventually(lambda: cluster.rate_limited(client.ip), "request started")

            serve.expected_alive = False
            serve.proc.send_signal(signal.SIGTERM)
            frame = await ws.closing_frame()
            assert frame is not None, "the connection was dropped without a close frame"
            assert frame.code in (1001, 1012)  # going away / service restart

        # The server is shutting down (it closed the socket above); the request still ends.
        writer.write(body[10:])
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), DEADLINE)  # until the server closes
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", raw[:300]
    headers, _, payload = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    assert client.wallet in json.loads(payload)["message"]
    # uvicorn re-raises the signal once its shutdown (lifespan included) is complete.
    assert await asyncio.wait_for(serve.proc.wait(), DEADLINE) in (0, -signal.SIGTERM)
    assert "Traceback" not in serve.log_tail(200)
