"""The metrics port: its own listener, the next free port for each of several API processes."""

from __future__ import annotations

import socket

import httpx
import pytest

from marketd.core.metrics_server import start_metrics_server


def _free_run_of_ports(count: int) -> int:
    """A first port whose next `count - 1` ports are free as well (checked by binding them)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                taken = socket.socket()
                sockets.append(taken)
                taken.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for taken in sockets:
                taken.close()
        return first
    raise AssertionError("no run of free ports")


def test_each_process_takes_the_next_free_port_of_its_range() -> None:
    first = _free_run_of_ports(2)
    one = start_metrics_server("127.0.0.1", first, candidates=2)
    two = start_metrics_server("127.0.0.1", first, candidates=2)
    try:
        assert (one.port, two.port) == (first, first + 1)
        with pytest.raises(OSError, match=f"no free metrics port in {first}-{first + 1}"):
            start_metrics_server("127.0.0.1", first, candidates=2)
        scraped = httpx.get(f"http://127.0.0.1:{two.port}/metrics")
        assert scraped.status_code == 200 and "python_info" in scraped.text
    finally:
        one.close()
        two.close()
