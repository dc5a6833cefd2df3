"""Load test (issue 8): 1,000 simulated users with mixed traffic plus 2,000 WebSocket
subscribers against one `marketd serve` process, then two (the load split round-robin per
request and per connection, as a load balancer would; Redis shared by the instances).

    .venv/bin/python bench/load.py [--users 1000] [--subscribers 2000] [--duration 60]
        [--think 2.0] [--ramp 5] [--warmup 20] [--instances 1,2] [--popularity zipf|uniform]
        [--out DIR]

- Data: 10,000 markets and `--votes` proposal votes COPYed into a scratch PostgreSQL database
  (`traffic.seed`), shared by the phases.
- Users (this process, `traffic.LoadUser`): each arrives within the first `--ramp` seconds,
  signs in (SIWS), then loops: one step of the mix, think (exponential, mean `--think` s).
  The window is measured after `--warmup` seconds of the same traffic: the arrival (1,000
  sign-ins within the ramp) is a burst no steady state has; it is reported apart as the
  warm-up, and its errors count.
  Mix: browse/filter/search markets, market detail/votes/trades, discussions, own profile,
  proposal votes, posts, trade relay (a wallet-signed buy_shares/sell_shares transaction built
  from the program IDL), and sign-out + sign-in again.
- Subscribers (a child process, so its receive timestamps are not delayed by the users'
  event loop): `--subscribers` connections to `/ws`, each subscribed to one of the
  `--watched` markets. `--watched-share` of the votes and posts go to those markets.
- WS delivery latency: from the moment the triggering POST returned (CLOCK_MONOTONIC is shared
  by the processes of one machine) to receipt, at every subscriber of the market; an event
  that arrives before its POST returned counts as 0 ms. For posts, also from the server's
  `createdAt` (taken before the commit) to receipt.

Writes report.md, results.json, PNG charts and the servers' logs into `--out` (default
bench/out/load-<timestamp>/). Targets: p95 < 100 ms on every route, no unexpected errors,
WS p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REDIS_URL,
    ROOT,
    SIMULATED_CLIENTS,
    die_with_parent,
    drop_redis_prefix,
    free_port,
    percentiles,
    scratch_database,
    server_process,
    stop_process,
)
from marketd.config import Settings
from traffic import (
    MARKETS,
    VOTES,
    Balancer,
    Catalog,
    LoadUser,
    LoopLag,
    Recorder,
    Sample,
    Summary,
    TradeBuilder,
    Triggers,
    User,
    add_popularity_argument,
    drive,
    seed,
    summarise,
    summarise_arrival,
)
from ws import BenchClient, Stats, cpu_seconds, raise_fd_limit, wait_for_line

TARGET_MS = 100.0
DRAIN_QUIET = 2.0
DRAIN_MAX = 90.0
HOST = "127.0.0.1"


# ------------------------------------------------------------------------ subscribers


@dataclass
class Receipts:
    """What the subscribers of the child process received (shared by its connections)."""

    receipts: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_stamped: list[tuple[float, float]] = field(default_factory=list)
    """(receipt time, ms since the post's `createdAt`) of every post received."""
    frames: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    last_event: float = 0.0
    gaps: int = 0
    disorder: int = 0
    stopping: bool = False


_TYPE = re.compile(rb'"type":"([a-z_]+)"')


class Subscriber(BenchClient):
    """`ws.BenchClient` (frames parsed by hand, cheap) that keys the events it receives."""

    def __init__(self, host: str, path: str, sink: Receipts) -> None:
        super().__init__(host, path, Stats())
        self.sink = sink
        self.last_seq = 0
        self.alive = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self.upgraded and not self.sink.stopping:
            self.sink.lost += 1
        super().connection_lost(exc)

    def _text(self, payload: bytes) -> None:
        now = time.monotonic()
        if not self.acked.done():
            if b'"subscribed"' in payload:
                self.acked.set_result(None)
            return
        sink = self.sink
        match = _TYPE.search(payload)
        kind = match.group(1).decode() if match else "?"
        sink.frames[kind] += 1
        if kind == "market_state":
            self.last_seq = int(json.loads(payload)["seq"])
            return
        if kind not in ("vote", "discussion"):
            return
        event = json.loads(payload)
        seq = int(event["seq"])
        if seq <= self.last_seq:
            sink.disorder += 1
        elif seq > self.last_seq + 1:
            sink.gaps += 1
        self.last_seq = max(self.last_seq, seq)
        if kind == "vote":
            key = f"v|{event['marketId']}|{event['user']}"
        else:
            key = f"d|{event['id']}"
            created = datetime.fromisoformat(event["createdAt"]).timestamp()
            sink.server_stamped.append((now, (time.time() - created) * 1000))
        sink.receipts[key].append(now)
        sink.last_event = now


async def subscribe_all(urls: list[str], markets: list[str], count: int, result_path: Path) -> None:
    """The child process: connect and subscribe, print CONNECTED, record until STOP arrives on
    stdin, then write what was received to `result_path` and print DONE."""
    loop = asyncio.get_running_loop()
    sink = Receipts()
    gate = asyncio.Semaphore(100)
    clients: list[Subscriber] = []
    per_market: Counter[str] = Counter()
    failures: Counter[str] = Counter()

    async def open_one(index: int) -> None:
        url = urls[index % len(urls)]
        market = markets[(index // len(urls)) % len(markets)]
        address, _, path = url.removeprefix("ws://").partition("/")
        host, port = address.split(":")
        async with gate:
            for _ in range(5):
                try:
                    _, client = await loop.create_connection(
                        lambda: Subscriber(address, "/" + path, sink), host, int(port)
                    )
                    await asyncio.wait_for(client.opened, 60)
                    break
                except (OSError, TimeoutError, ConnectionError):
                    await asyncio.sleep(0.2)
            else:
                failures["connect"] += 1
                return
            clients.append(client)
            body = json.dumps({"type": "subscribe", "marketId": market}, separators=(",", ":"))
            client.send_text(body)
            try:
                await asyncio.wait_for(client.acked, 60)
            except (TimeoutError, ConnectionError):
                failures["subscribe"] += 1
                return
            per_market[market] += 1

    started = time.monotonic()
    await asyncio.gather(*(open_one(index) for index in range(count)))
    setup = time.monotonic() - started
    print(f"CONNECTED {len(clients)}", flush=True)
    async with LoopLag().running() as lag:
        await loop.run_in_executor(None, sys.stdin.readline)  # STOP (or the parent is gone)
        # Events still queued in the servers arrive late: wait until none came for
        # DRAIN_QUIET seconds (at most DRAIN_MAX) so late is told apart from lost.
        stopped = time.monotonic()
        while time.monotonic() - stopped < DRAIN_MAX:
            await asyncio.sleep(0.25)
            if time.monotonic() - max(sink.last_event, stopped) >= DRAIN_QUIET:
                break
    held = sum(client.alive for client in clients)
    sink.stopping = True
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    result = {
        "opened": len(clients),
        "failed": dict(failures),
        "subscribed": sum(per_market.values()),
        "per_market": dict(per_market),
        "setup_seconds": round(setup, 1),
        "held": held,
        "lost": sink.lost,
        "gaps": sink.gaps,
        "disorder": sink.disorder,
        "frames": dict(sink.frames),
        "receipts": sink.receipts,
        "server_stamped": sink.server_stamped,
        "lag_ms": percentiles(lag.samples),
        "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    }
    dump(result_path, result)
    print("DONE", flush=True)


def dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value))


def spawn_subscribers(
    ports: list[int], watched: list[str], count: int, result_path: Path
) -> subprocess.Popen[str]:
    """This script as the subscribers' process; it dies with this one."""
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--subscriber-process",
            ",".join(f"ws://{HOST}:{port}/ws" for port in ports),
            "--watched-ids",
            ",".join(watched),
            "--subscribers",
            str(count),
            "--result",
            str(result_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )


def collect_subscribers(child: subprocess.Popen[str], result_path: Path) -> dict[str, Any]:
    """Tell the subscribers' process to stop; what it received."""
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("STOP\n")
    child.stdin.flush()
    wait_for_line(child.stdout, "DONE")
    child.wait(30)
    received: dict[str, Any] = json.loads(result_path.read_text())
    result_path.unlink()
    return received


_EXCEPTION = re.compile(r"^[\w.]*(Error|Exception)\b.*")


def server_errors(paths: list[Path]) -> dict[str, int]:
    """The exceptions the servers logged (last line of each traceback), by message."""
    found: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if _EXCEPTION.match(line):
                found[re.sub(r"\(Background on this error.*", "", line)[:160].strip()] += 1
    return dict(found.most_common())


# ------------------------------------------------------------------------ one phase


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


def cpu_of(names: frozenset[str]) -> dict[int, float]:
    """CPU seconds used so far by each process with one of these command names."""
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if text[text.index("(") + 1 : text.rindex(")")] in names:
                found[int(stat.parent.name)] = cpu_seconds(int(stat.parent.name))
    return found


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two `cpu_of` snapshots (a process that ended in between is lost)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


SHARED_SERVICES = {"postgres": frozenset({"postgres"}), "redis": frozenset({"redis-server"})}


@dataclass(frozen=True)
class CpuCounters:
    """CPU seconds used so far by our processes (`pids` by role), the shared services and
    this load process, and the whole machine's busy/total jiffies."""

    ours: dict[str, float]
    shared: dict[str, dict[int, float]]
    users: float
    machine: tuple[int, int]

    @classmethod
    def read(cls, pids: dict[str, list[int]]) -> CpuCounters:
        return cls(
            ours={k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()},
            shared={k: cpu_of(names) for k, names in SHARED_SERVICES.items()},
            users=sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
            machine=machine_busy_jiffies(),
        )

    def shares_since(self, before: CpuCounters, wall: float) -> dict[str, float]:
        """Each role's CPU between two readings, in % of one core; `machine` over all cores."""
        cpu = {k: 100 * (seconds - before.ours[k]) / wall for k, seconds in self.ours.items()}
        for k, seen in self.shared.items():
            cpu[k] = 100 * cpu_used(before.shared[k], seen) / wall
        cpu["users"] = 100 * (self.users - before.users) / wall
        busy, total = (now - then for now, then in zip(self.machine, before.machine, strict=True))
        cpu["machine"] = 100 * (os.cpu_count() or 1) * busy / max(1, total)
        return cpu


def ws_gauge(metrics_port: int) -> float | None:
    """The instance's own count of open WebSocket connections (its /metrics, on the instance's
    METRICS_PORT)."""
    try:
        text = httpx.get(f"http://{HOST}:{metrics_port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    found = re.search(r"^marketd_ws_connections (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


@dataclass
class Phase:
    instances: int
    summary: Summary
    arrival: Summary  # the warm-up: users arriving and signing in, not judged by the targets
    samples: list[Sample]
    ws: dict[str, Any]
    ws_latencies_ms: list[float]
    ws_timeline: list[tuple[float, float]]  # (receipt s since window start, latency ms)
    connect: dict[str, float]  # new HTTP connections: count, p50/p95/p99 ms to open
    cpu: dict[str, float]
    harness_lag_ms: dict[str, float]
    server_errors: dict[str, int]

    @property
    def label(self) -> str:
        return "1 instance" if self.instances == 1 else f"{self.instances} instances"

    @property
    def route_failures(self) -> list[str]:
        return [
            label
            for label, route in self.summary.routes.items()
            if route.figures["p95"] >= TARGET_MS
        ]

    @property
    def unexpected_errors(self) -> int:
        ws = self.ws
        return (
            self.summary.unexpected
            + self.arrival.unexpected
            + int(ws["missing"])
            + int(sum(ws["failed"].values()))
            + int(ws["lost"])
            + int(ws["gaps"])
            + int(ws["disorder"])
        )


async def run_phase(
    args: argparse.Namespace,
    instances: int,
    url: str,
    catalog: Catalog,
    watched: list[str],
    out: Path,
) -> Phase:
    prefix = f"bench-load-{uuid.uuid4().hex[:6]}:"
    ports = [free_port() for _ in range(instances)]
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": prefix,
        **SIMULATED_CLIENTS,
        "WS_MAX_CONNECTIONS_PER_IP": "1000000",
        # The same database budget in both phases, split between the instances.
        "DATABASE_POOL_SIZE": str(max(2, args.pool // instances)),
        "WORKERS": "1",
    }
    try:
        with contextlib.ExitStack() as stack:
            metrics_ports = [free_port() for _ in ports]  # /metrics is not on the API port
            servers = [
                stack.enter_context(
                    server_process(
                        env | {"METRICS_PORT": str(metrics_port)},
                        port,
                        out / f"server-{instances}x-{i + 1}.log",
                    )
                )
                for i, (port, metrics_port) in enumerate(zip(ports, metrics_ports, strict=True))
            ]
            result_path = out / f"subscribers-{instances}x.json"
            child = spawn_subscribers(ports, watched, args.subscribers, result_path)
            stack.callback(stop_process, child, 30)
            assert child.stdout is not None
            opened = int(wait_for_line(child.stdout, "CONNECTED").split()[1])
            print(f"  {opened} WebSocket connections subscribed; users start", flush=True)

            recorder = Recorder()
            triggers = Triggers(frozenset(watched))
            trades = TradeBuilder(Settings(_env_file=None))
            pids = {"server": [s.pid for s in servers], "subscribers": [child.pid]}

            async def at_window_open() -> CpuCounters:
                """CPU counters as the window opens (the warm-up is not in the figures)."""
                await asyncio.sleep(max(0.0, recorder.origin - time.monotonic()))
                return CpuCounters.read(pids)

            async with (
                Balancer([f"http://{HOST}:{port}" for port in ports], args.users) as http,
                LoopLag().running() as lag,
            ):
                users: list[User] = [
                    LoadUser(
                        http,
                        catalog,
                        recorder,
                        ramp=args.ramp,
                        watched=watched,
                        watched_share=args.watched_share,
                        triggers=triggers,
                        trades=trades,
                    )
                    for _ in range(args.users)
                ]
                driving = drive(users, recorder, args.duration, args.think, args.warmup)
                _, before = await asyncio.gather(driving, at_window_open())
                connects = http.connects
            wall = time.monotonic() - recorder.origin
            gauges = [ws_gauge(port) for port in metrics_ports]
            cpu = CpuCounters.read(pids).shares_since(before, wall)
            stop_sent = time.monotonic()
            received = collect_subscribers(child, result_path)
    finally:
        await drop_redis_prefix(prefix)
    ws, latencies, timeline = ws_figures(received, triggers, recorder.origin, stop_sent)
    ws["server_gauge"] = gauges
    connect = {"count": len(connects), **percentiles(connects)}
    # The servers log at WARNING: any line is worth a look.
    problems = server_errors([out / f"server-{instances}x-{i + 1}.log" for i in range(instances)])
    return Phase(
        instances=instances,
        summary=summarise(recorder),
        arrival=summarise_arrival(recorder),
        samples=recorder.samples,
        ws=ws,
        ws_latencies_ms=latencies,
        ws_timeline=timeline,
        connect=connect,
        cpu=cpu,
        harness_lag_ms={
            "users": percentiles(lag.samples)["p99"],
            "subscribers": float(received["lag_ms"]["p99"]),
        },
        server_errors=problems,
    )


def ws_figures(
    received: dict[str, Any], triggers: Triggers, origin: float, stopped: float
) -> tuple[dict[str, Any], list[float], list[tuple[float, float]]]:
    """Join the receipts with the POSTs that caused them."""
    per_market: dict[str, int] = received["per_market"]
    receipts: dict[str, list[float]] = received["receipts"]
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    expected = early = late = 0
    warming: list[float] = []  # deliveries of writes made during the warm-up
    for key, (market, returned) in triggers.returned.items():
        expected += per_market.get(market, 0)
        for at in receipts.get(key, ()):
            delay = at - returned
            early += delay < 0
            late += at > stopped
            (latencies if returned >= origin else warming).append(max(0.0, delay) * 1000)
            timeline.append((at - origin, max(0.0, delay) * 1000))
    unmatched = sum(len(v) for k, v in receipts.items() if k not in triggers.returned)
    ws = {
        key: received[key]
        for key in (
            "opened",
            "failed",
            "subscribed",
            "setup_seconds",
            "held",
            "lost",
            "gaps",
            "disorder",
            "frames",
        )
    }
    ws |= {
        "events": len(triggers.returned),
        "expected": expected,
        "received": len(latencies) + len(warming),
        "missing": max(0, expected - len(latencies) - len(warming)),
        "early": early,
        "late": late,
        "unmatched": unmatched,
        "latency_ms": percentiles([v / 1000 for v in latencies]),
        "warmup_latency_ms": percentiles([v / 1000 for v in warming]),
        # Split like the judged latency, by when the write was made: posts created within
        # the window (receipt time minus the measured delay), not the warm-up's.
        "server_stamped_ms": percentiles(
            [ms / 1000 for at, ms in received["server_stamped"] if at - ms / 1000 >= origin]
        ),
    }
    return ws, latencies, timeline


# ------------------------------------------------------------------------ report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_phase(phase: Phase, args: argparse.Namespace) -> None:
    summary, ws = phase.summary, phase.ws
    print(f"\n== {phase.label}: {args.users} users, {args.subscribers} subscribers")
    print(
        f"requests {summary.requests}, throughput {summary.throughput:.0f} req/s, "
        f"unexpected errors {phase.unexpected_errors} "
        f"[{verdict(phase.unexpected_errors == 0)}: zero unexpected errors]"
    )
    for label, route in summary.routes.items():
        f = route.figures
        print(
            f"   {label:18} n={route.count:6}  p50 {f['p50']:6.1f}  p95 {f['p95']:6.1f}  "
            f"p99 {f['p99']:6.1f} ms  errors {route.unexpected}"
            f"  [{verdict(f['p95'] < TARGET_MS)}: p95 < {TARGET_MS:.0f} ms]"
            + ("" if route.cache_hits is None else f"  cache hits {route.cache_hits:.0%}")
        )
    latency = ws["latency_ms"]
    print(
        f"   WS: {ws['opened']} connected, {ws['held']} held, {ws['events']} events, "
        f"{ws['received']}/{ws['expected']} deliveries, p50 {latency['p50']:.1f} "
        f"p95 {latency['p95']:.1f} p99 {latency['p99']:.1f} ms "
        f"[{verdict(latency['p99'] < TARGET_MS)}: p99 < {TARGET_MS:.0f} ms]"
    )
    if summary.errors or summary.expected_errors:
        print(f"   errors: {summary.errors}  expected: {summary.expected_errors}")
    print(f"   warm-up ({args.warmup:g} s before the window, not judged): {arrival_line(phase)}")
    cpu = ", ".join(f"{k} {v:.0f}%" for k, v in phase.cpu.items())
    lag = ", ".join(f"{k} {v:.1f} ms" for k, v in phase.harness_lag_ms.items())
    print(f"   CPU (100% = one core): {cpu}; harness loop lag p99: {lag}")
    c = phase.connect
    print(
        f"   new HTTP connections: {c['count']:.0f}, time to open p50 {c['p50']:.1f}"
        f" p95 {c['p95']:.1f} p99 {c['p99']:.1f} ms"
    )
    if phase.server_errors:
        print(f"   exceptions in the server logs: {phase.server_errors}")


def arrival_line(phase: Phase) -> str:
    """The warm-up in one line: the users' arrival burst (every one signs in within the
    ramp) is what a steady-state window leaves out, so it is shown beside it."""
    arrival, warming = phase.arrival, phase.ws["warmup_latency_ms"]
    worst = sorted(arrival.routes.items(), key=lambda item: -item[1].figures["p95"])[:3]
    return (
        f"{arrival.requests} requests, p95 {arrival.overall['p95']:.0f} ms, highest p95 "
        + ", ".join(f"{label} {route.figures['p95']:.0f} ms" for label, route in worst)
        + f"; unexpected errors {arrival.unexpected}; WS delivery p99 {warming['p99']:.0f} ms"
    )


def write_report(
    phases: list[Phase], args: argparse.Namespace, out: Path, context: dict[str, Any]
) -> None:
    charts = write_charts(phases, out)
    lines = [
        f"# Load test — {context['started']}",
        "",
        f"`bench/load.py` — {args.users} users (sign-in staggered over the first {args.ramp:g} s,"
        f" then think time exponential with mean {args.think:g} s) and {args.subscribers}"
        f" WebSocket subscribers for {args.duration:g} s per phase, measured after"
        f" {args.warmup:g} s of the same traffic (the users' arrival: every one signs in"
        " within the ramp; shown apart as the warm-up, its errors counted), against "
        + " and then ".join(f"{p.label} of `marketd serve`" for p in phases)
        + f" (PostgreSQL, Redis shared). Data: {MARKETS:,} markets, {args.votes:,} votes seeded;"
        f" {len(context['watched'])} markets watched by the subscribers, which receive"
        f" {args.watched_share:.0%} of the votes and posts. Markets are picked"
        + (
            " by Zipf popularity (s = 1: the top 1% of markets draw about half the requests)."
            if args.popularity == "zipf"
            else " uniformly."
        ),
        "",
        f"Machine: {os.cpu_count()} CPUs, load average before the run {context['load']}; the"
        " load generator, the servers, PostgreSQL and Redis share it (and other work may be"
        " running: see `machine` CPU below against ours). Figures are provisional.",
        "",
        "Server settings changed for the run: `RATE_LIMIT=1000000/minute` and"
        " `WS_MAX_CONNECTIONS_PER_IP=1000000` (every simulated client is 127.0.0.1),"
        " `VOTE_ELIGIBILITY=any` (the voters are fresh wallets),"
        f" `DATABASE_POOL_SIZE={args.pool}` split between the instances.",
        "",
        "## Targets",
        "",
        "| target | " + " | ".join(f"{p.label}" for p in phases) + " |",
        "|---|" + "---|" * len(phases),
        "| p95 < 100 ms on every route | "
        + " | ".join(
            f"{verdict(not p.route_failures)}"
            + (f" ({', '.join(p.route_failures)})" if p.route_failures else "")
            for p in phases
        )
        + " |",
        "| zero unexpected errors | "
        + " | ".join(f"{verdict(p.unexpected_errors == 0)} ({p.unexpected_errors})" for p in phases)
        + " |",
        "| WS delivery p99 < 100 ms | "
        + " | ".join(
            f"{verdict(p.ws['latency_ms']['p99'] < TARGET_MS)} ({p.ws['latency_ms']['p99']:.1f} ms)"
            for p in phases
        )
        + " |",
        "",
    ]
    for phase in phases:
        lines += phase_section(phase, charts)
    if "compare" in charts:
        lines += ["## One instance against two", "", f"![p95 per route]({charts['compare']})", ""]
    lines += [
        "## How it is measured",
        "",
        "- Latency: from sending the request to reading the whole response, in the load"
        " process (aiohttp). Throughput: requests completed within the window / window.",
        "- Sign-in = two routes (challenge, verify); 2% of steps sign out and in again.",
        "- Trades: a buy_shares or sell_shares transaction for an ACTIVE market, accounts laid"
        " out from the program IDL, signed by the user's wallet (the relay answers 202).",
        "- WS delivery: from the moment the triggering POST (vote or post on a watched"
        " market) returned to the load process, to receipt by each subscriber of the market"
        " (a separate process; CLOCK_MONOTONIC is machine-wide). Receipts before the POST"
        " returned count as 0 ms (`early`); after the users stop, the subscribers wait until no"
        f" event came for {DRAIN_QUIET:g} s (at most {DRAIN_MAX:g} s), so events still queued in"
        " the servers count as late, not missing. `server-stamped` is for posts only: the event's"
        " `createdAt` (server clock, before the commit) to receipt, for posts made within the"
        " window.",
        "- Unexpected errors: HTTP errors (the harness causes none on purpose: votes go to"
        " markets that stay PROPOSED since no worker runs, trades to ACTIVE ones), plus WS"
        " connection failures, connections lost, missing deliveries, seq gaps or disorder.",
        "- CPU: `server` and the load processes are ours; `postgres` and `redis` count all"
        " their processes (other work's databases included); `machine` is the whole machine"
        f" ({os.cpu_count()} cores = {100 * (os.cpu_count() or 1)}%).",
        "- Harness loop lag: how late the load processes' event loops woke up (p99); when it is"
        " high the load generator, not the server, adds latency.",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))


def phase_section(phase: Phase, charts: dict[str, str]) -> list[str]:
    summary, ws, tag = phase.summary, phase.ws, f"{phase.instances}x"
    latency, stamped = ws["latency_ms"], ws["server_stamped_ms"]
    lines = [
        f"## {phase.label}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| requests | {summary.requests:,} ({summary.completed_in_window:,} completed in the"
        f" window) |",
        f"| throughput | {summary.throughput:.0f} req/s |",
        f"| latency, all routes | p50 {summary.overall['p50']:.1f} ms, p95"
        f" {summary.overall['p95']:.1f} ms, p99 {summary.overall['p99']:.1f} ms |",
        f"| unexpected errors | {phase.unexpected_errors} (HTTP {summary.unexpected},"
        f" of which in the warm-up {phase.arrival.unexpected}) |",
        f"| warm-up (not judged) | {arrival_line(phase)} |",
        f"| new HTTP connections (time to open, part of the request's latency) |"
        f" {phase.connect['count']:.0f}: p50 {phase.connect['p50']:.1f} ms, p95"
        f" {phase.connect['p95']:.1f} ms, p99 {phase.connect['p99']:.1f} ms |",
        f"| expected errors | {sum(summary.expected_errors.values())} |",
        f"| WS connections | {ws['opened']} opened, {sum(ws['failed'].values())} failed,"
        f" {ws['held']} held to the end, {ws['lost']} lost; server gauge at the end:"
        f" {', '.join(str(g) for g in ws['server_gauge'])} |",
        f"| WS events | {ws['events']} (votes and posts on watched markets) |",
        f"| WS deliveries | {ws['received']:,} of {ws['expected']:,} expected ({ws['missing']}"
        f" missing, {ws['early']} early, {ws['late']} after the users stopped,"
        f" {ws['unmatched']} unmatched, {ws['gaps']} seq gaps, {ws['disorder']} out of order) |",
        f"| WS delivery latency | p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms,"
        f" p99 {latency['p99']:.1f} ms |",
        f"| WS latency, server-stamped (posts, window) | p50 {stamped['p50']:.1f} ms, p95"
        f" {stamped['p95']:.1f} ms, p99 {stamped['p99']:.1f} ms |",
        "| CPU during the window (100% = one core) | "
        + ", ".join(f"{k} {v:.0f}%" for k, v in phase.cpu.items())
        + " |",
        "| harness loop lag p99 | "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in phase.harness_lag_ms.items())
        + " |",
        f"| exceptions in the server logs | {sum(phase.server_errors.values())} |",
        "",
        "| route | n | p50 ms | p95 ms | p99 ms | unexpected errors | expected errors |"
        " page cache hits | p95 < 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, route in summary.routes.items():
        f = route.figures
        hits = "" if route.cache_hits is None else f"{route.cache_hits:.0%}"
        lines.append(
            f"| {label} | {route.count:,} | {f['p50']:.1f} | {f['p95']:.1f} | {f['p99']:.1f} |"
            f" {route.unexpected} | {route.expected} | {hits} | {verdict(f['p95'] < TARGET_MS)} |"
        )
    lines.append("")
    if summary.errors or summary.expected_errors:
        lines += ["| error | count | kind |", "|---|---:|---|"]
        lines += [f"| {k} | {v} | unexpected |" for k, v in sorted(summary.errors.items())]
        lines += [f"| {k} | {v} | expected |" for k, v in sorted(summary.expected_errors.items())]
        lines.append("")
    if phase.server_errors:
        lines += ["| exception in the server logs | count |", "|---|---:|"]
        lines += [f"| `{k}` | {v} |" for k, v in phase.server_errors.items()]
        lines.append("")
    for name, title in (("time", "Latency over time"), ("routes", "Per route"), ("ws", "WS")):
        key = f"{name}-{tag}"
        if key in charts:
            lines += [f"![{title}]({charts[key]})", ""]
    return lines


def write_charts(phases: list[Phase], out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}
    for phase in phases:
        tag = f"{phase.instances}x"
        duration = phase.summary.duration
        width = max(1.0, duration / 30)
        horizon = max(
            [duration]
            + [sample.start + sample.latency for sample in phase.samples]
            + [at for at, _ in phase.ws_timeline]
        )
        bins = int(horizon / width) + 1

        # Latency over time: p95 per route per bin, the WS deliveries, and the throughput.
        figure, (top, bottom) = plt.subplots(
            2, 1, figsize=(11, 7), sharex=True, height_ratios=[3, 1]
        )
        by_route: dict[str, list[list[float]]] = {}
        done = [0] * bins
        for sample in phase.samples:
            end = sample.start + sample.latency
            index = min(bins - 1, max(0, int(end / width)))
            series = by_route.setdefault(sample.label, [[] for _ in range(bins)])
            series[index].append(sample.latency * 1000)
            done[index] += 1
        ws_bins: list[list[float]] = [[] for _ in range(bins)]
        for at, value in phase.ws_timeline:
            ws_bins[min(bins - 1, max(0, int(at / width)))].append(value)
        colours = plt.get_cmap("tab20")
        for n, (label, series) in enumerate(sorted(by_route.items())):
            xs = [i * width + width / 2 for i, v in enumerate(series) if len(v) >= 3]
            ys = [_p95(v) for v in series if len(v) >= 3]
            top.plot(xs, ys, label=label, color=colours(n % 20), linewidth=1.2)
        xs = [i * width + width / 2 for i, v in enumerate(ws_bins) if len(v) >= 3]
        ys = [_p95(v) for v in ws_bins if len(v) >= 3]
        top.plot(xs, ys, label="WS delivery", color="black", linestyle="--", linewidth=1.5)
        top.axhline(TARGET_MS, color="red", linewidth=0.8, linestyle=":")
        for axes in (top, bottom):
            axes.axvline(duration, color="grey", linewidth=0.8)  # the window closes
        top.set_yscale("log")
        top.set_ylabel(f"p95 latency per {width:g} s (ms)")
        top.set_title(f"{phase.label}: latency over time")
        top.legend(fontsize=7, ncol=3, loc="upper right")
        top.grid(True, which="both", alpha=0.3)
        bottom.bar(
            [i * width + width / 2 for i in range(bins)], [d / width for d in done], width=width
        )
        bottom.set_ylabel("req/s")
        bottom.set_xlabel("seconds since the window opened")
        figure.tight_layout()
        charts[f"time-{tag}"] = _save(figure, out / f"latency-over-time-{tag}.png")

        # Per route p50/p95/p99.
        labels = list(phase.summary.routes)
        figure, axes = plt.subplots(figsize=(11, 5))
        for offset, key in ((-0.27, "p50"), (0.0, "p95"), (0.27, "p99")):
            axes.bar(
                [i + offset for i in range(len(labels))],
                [phase.summary.routes[label].figures[key] for label in labels],
                width=0.27,
                label=key,
            )
        axes.axhline(TARGET_MS, color="red", linewidth=0.8, linestyle=":", label="target (p95)")
        axes.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        axes.set_ylabel("ms")
        axes.set_title(f"{phase.label}: latency per route")
        axes.legend()
        figure.tight_layout()
        charts[f"routes-{tag}"] = _save(figure, out / f"routes-{tag}.png")

        # WS delivery latency histogram.
        if phase.ws_latencies_ms:
            figure, axes = plt.subplots(figsize=(9, 4.5))
            axes.hist(phase.ws_latencies_ms, bins=80, color="tab:blue")
            latency = phase.ws["latency_ms"]
            for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
                axes.axvline(latency[key], color="black", linestyle=style, label=f"{key}")
            axes.set_yscale("log")
            axes.set_xlabel("delivery latency, POST returned -> received (ms)")
            axes.set_ylabel("deliveries")
            axes.set_title(
                f"{phase.label}: WS delivery latency ({len(phase.ws_latencies_ms):,} deliveries)"
            )
            axes.legend()
            figure.tight_layout()
            charts[f"ws-{tag}"] = _save(figure, out / f"ws-latency-{tag}.png")

    if len(phases) > 1:
        labels = sorted({label for phase in phases for label in phase.summary.routes})
        figure, axes = plt.subplots(figsize=(11, 5))
        step = 0.8 / len(phases)
        for n, phase in enumerate(phases):
            routes = phase.summary.routes
            axes.bar(
                [i - 0.4 + step * (n + 0.5) for i in range(len(labels))],
                [routes[label].figures["p95"] if label in routes else 0 for label in labels],
                width=step,
                label=f"{phase.label}",
            )
        axes.axhline(TARGET_MS, color="red", linewidth=0.8, linestyle=":", label="target")
        axes.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        axes.set_ylabel("p95 (ms)")
        axes.set_title("p95 per route: one instance against two")
        axes.legend()
        figure.tight_layout()
        charts["compare"] = _save(figure, out / "routes-compare.png")
    return charts


def _p95(values: list[float]) -> float:
    return percentiles([v / 1000 for v in values])["p95"]


def _save(figure: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def phase_json(phase: Phase) -> dict[str, Any]:
    return {
        "instances": phase.instances,
        "requests": phase.summary.requests,
        "throughput": round(phase.summary.throughput, 1),
        "overall_ms": phase.summary.overall,
        "routes": {
            label: {"n": r.count, **r.figures, "unexpected": r.unexpected, "expected": r.expected}
            for label, r in phase.summary.routes.items()
        },
        "errors": phase.summary.errors,
        "expected_errors": phase.summary.expected_errors,
        "unexpected_errors": phase.unexpected_errors,
        "ws": phase.ws,
        "cpu_pct": phase.cpu,
        "http_connects_ms": phase.connect,
        "harness_lag_p99_ms": phase.harness_lag_ms,
        "server_errors": phase.server_errors,
    }


# ------------------------------------------------------------------------ main


async def main(args: argparse.Namespace, out: Path, started: datetime) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    context: dict[str, Any] = {
        "started": f"{started:%Y-%m-%d %H:%M} UTC",
        "load": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    phases: list[Phase] = []
    async with scratch_database("load") as url:
        clock = time.monotonic()
        catalog = Catalog.of(await seed(url, args.votes), zipf=args.popularity == "zipf")
        seconds = time.monotonic() - clock
        print(f"seeded {MARKETS} markets and {args.votes} votes in {seconds:.1f} s")
        watched = catalog.proposed[: args.watched]
        context["watched"] = watched
        for instances in (int(n) for n in args.instances.split(",")):
            print(f"\nphase: {instances} serve process(es)", flush=True)
            phase = await run_phase(args, instances, url, catalog, watched, out)
            phases.append(phase)
            print_phase(phase, args)
    write_report(phases, args, out, context)
    dump(out / "results.json", {"args": vars(args), "phases": [phase_json(p) for p in phases]})
    print(f"\nreport: {out / 'report.md'}")
    ok = all(
        not p.route_failures and p.unexpected_errors == 0 and p.ws["latency_ms"]["p99"] < TARGET_MS
        for p in phases
    )
    return 0 if ok else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time (s)")
    parser.add_argument("--ramp", type=float, default=5.0, help="users arrive over this (s)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=20.0,
        help="seconds of the same traffic before the window opens (the users' arrival),"
        " reported apart",
    )
    parser.add_argument("--instances", default="1,2", help="phases: serve processes each")
    parser.add_argument("--watched", type=int, default=20, help="markets the subscribers watch")
    parser.add_argument("--watched-share", type=float, default=0.5)
    add_popularity_argument(parser)
    parser.add_argument("--votes", type=int, default=VOTES, help="votes seeded")
    parser.add_argument("--pool", type=int, default=80, help="DATABASE_POOL_SIZE, all instances")
    parser.add_argument("--out", help="output folder (default bench/out/load-<timestamp>/)")
    parser.add_argument("--subscriber-process", help=argparse.SUPPRESS)
    parser.add_argument("--watched-ids", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    return parser.parse_args()


def run() -> None:
    args = parse_args()
    raise_fd_limit()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.subscriber_process:
        asyncio.run(
            subscribe_all(
                args.subscriber_process.split(","),
                args.watched_ids.split(","),
                args.subscribers,
                Path(args.result),
            )
        )
        return
    started = datetime.now(UTC)
    out = Path(args.out or ROOT / "bench" / "out" / f"load-{started:%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    sys.exit(asyncio.run(main(args, out, started)))


if __name__ == "__main__":
    run()
