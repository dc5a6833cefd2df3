"""Prometheus exposition on a port of its own, never on the API's.

The metrics name routes, wallets' activity and job internals, and a scrape costs a full
registry walk: none of that is for the public. A process serves them only when METRICS_PORT is
set, at METRICS_HOST (127.0.0.1 unless configured), from a thread of prometheus_client.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start_metrics_server(host: str, port: int, *, candidates: int = 1) -> MetricsServer:
    """Serve this process's metrics at `host` on the first free port of `port` ...
    `port + candidates - 1` (port 0: any free port).

    `marketd serve` with WORKERS = N passes N candidates: each API process has its own registry
    and so its own scrape target, METRICS_PORT … METRICS_PORT + N - 1."""
    ports = [0] if port == 0 else range(port, port + candidates)
    refused: OSError | None = None
    for candidate in ports:
        try:
            server, thread = start_http_server(candidate, addr=host)
        except OSError as exc:
            refused = exc
            continue
        return MetricsServer(server, thread)
    last = port + candidates - 1
    raise OSError(f"no free metrics port in {port}-{last} at {host}: {refused}") from refused
