"""Real `marketd` processes on loopback, for the scale-out and graceful-shutdown tests.

A `Cluster` is what a deployment has: a scratch PostgreSQL database (created and migrated for
the cluster, dropped afterwards), a Redis key prefix of its own (deleted afterwards), the local
chain (LiteSVM + the twin of zmart_core, served over JSON-RPC from the test process, as
`marketd run` does) and `marketd serve` / `marketd worker` subprocesses configured through the
environment only. Every subprocess is stopped in teardown whatever the test did (SIGTERM, then
SIGKILL after a grace period).

Every wait is a poll on an outcome with a generous deadline (`DEADLINE`): the machine may be a
loaded 2-core CI runner. When a wait fails, the message carries the tail of every process's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from solders.keypair import Keypair
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from marketd.chain.addresses import market_id_bytes
from marketd.chain.events import parse_program_events
from marketd.chain.localnet.embedded_chain import LocalChainRuntime
from marketd.config import Settings, environment_names
from marketd.core.database import Database, create_engine
from marketd.core.migrate import upgrade
from marketd.models import ChainOutbox, Market

PG_ADMIN_URL = os.environ.get("MARKETD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("MARKETD_TEST_REDIS", "redis://127.0.0.1:6379/0")

DEADLINE = 30.0
"""Upper bound of any single wait; outcomes normally arrive in well under a second."""
POLL = 0.05
SOL = 1_000_000_000

LEADER_LOCKS = frozenset(
    {
        "votes-aggregator",
        "job:indexer",
        "job:indexer-finality",
        "job:indexer-reconcile",
        "job:market-transitions",
    }
)
"""The always-on leader-locked jobs of a worker on a chain (`marketd.worker.build_jobs`)."""

T = TypeVar("T")


def free_port() -> int:
    """A port free right now (the process that gets it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """This process's environment without any marketd setting (the cluster sets its own)."""
    names = environment_names(Settings)
    return {key: value for key, value in os.environ.items() if key.upper() not in names}


# ----------------------------------------------------------------------------- processes


@dataclass
class Process:
    """One `marketd <command>` subprocess, its port (API or metrics) and its log file."""

    name: str
    command: str
    port: int
    log_path: Path
    proc: asyncio.subprocess.Process
    expected_alive: bool = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def signal_and_wait(self, number: signal.Signals, within: float = DEADLINE) -> int:
        """Send `number` and wait for the exit; the return code."""
        self.expected_alive = False
        if self.running:
            self.proc.send_signal(number)
        return await asyncio.wait_for(self.proc.wait(), within)

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
        self.expected_alive = False
        if not self.running:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class ClusterFailure(AssertionError):
    pass


# ----------------------------------------------------------------------------- websockets


class WsClient:
    """A `/ws` client: JSON frames, waiting for the one a test is after."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    async def send(self, body: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(body))

    async def until(
        self, wanted: Callable[[dict[str, Any]], bool], within: float = DEADLINE
    ) -> dict[str, Any]:
        """The first frame (from now) for which `wanted` is true; every frame is recorded."""

        async def read() -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(await self.ws.recv())
                self.received.append(message)
                if wanted(message):
                    return message

        return await asyncio.wait_for(read(), within)

    async def closing_frame(self, within: float = DEADLINE) -> Close | None:
        """Read until the server ends the connection; its close frame (None: it just hung up)."""

        async def read() -> Close | None:
            try:
                while True:
                    self.received.append(json.loads(await self.ws.recv()))
            except ConnectionClosed as closed:
                return closed.rcvd

        return await asyncio.wait_for(read(), within)

    async def subscribe(self, market_id: str) -> dict[str, Any]:
        """Subscribe; the `market_state` snapshot that follows the ack."""
        await self.send({"type": "subscribe", "marketId": market_id})
        await self.until(lambda m: m["type"] == "subscribed" and m["marketId"] == market_id)
        return await self.until(lambda m: m["type"] == "market_state")


# ----------------------------------------------------------------------------- the cluster


@dataclass
class Identity:
    """A client: its wallet, its session headers and the address it calls from."""

    keypair: Keypair
    ip: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def wallet(self) -> str:
        return str(self.keypair.pubkey())


class Cluster:
    """Shared PostgreSQL database + Redis prefix + local chain, and marketd processes on them.

    `settings` are extra environment variables of every process (e.g. `RATE_LIMIT`).
    """

    leader_locks = LEADER_LOCKS

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:10]
        self.database_name = f"marketd_scale_{self.run_id}"
        self.prefix = f"marketd-scale-{self.run_id}:"
        self.processes: list[Process] = []
        self._stack = contextlib.AsyncExitStack()
        self._ips = 0
        self.runtime: LocalChainRuntime
        self.database: Database
        self.redis: Redis
        self.http: httpx.AsyncClient
        self.database_url = ""

    # -- lifecycle
    async def start(self) -> None:
        stack = self._stack
        self.database_url = await self._create_database()
        stack.push_async_callback(self._drop_database)
        self.database = Database(
            create_engine(Settings(_env_file=None, database_url=self.database_url))
        )
        stack.push_async_callback(self.database.dispose)
        await upgrade(self.database.engine)
        self.redis = Redis.from_url(REDIS_TEST_URL)
        stack.push_async_callback(self._delete_keys)
        chain_settings = Settings(_env_file=None, data_dir=self.root / "chain")
        self.runtime = await stack.enter_async_context(LocalChainRuntime(chain_settings, port=0))
        self.http = await stack.enter_async_context(httpx.AsyncClient(timeout=DEADLINE))
        stack.push_async_callback(self.stop_processes)

    async def close(self) -> None:
        await self._stack.aclose()

    async def stop_processes(self) -> None:
        await asyncio.gather(*(process.stop() for process in self.processes))

    async def _create_database(self) -> str:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'CREATE DATABASE "{self.database_name}"')
        finally:
            await admin.close()
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + self.database_name

    async def _drop_database(self) -> None:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def _delete_keys(self) -> None:
        try:
            keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}*")]
            if keys:
                await self.redis.delete(*keys)
        finally:
            await self.redis.aclose()

    # -- processes
    def environment(self, name: str, **overrides: str) -> dict[str, str]:
        chain = self.runtime.settings_for_clients()
        assert chain.solana_rpc_url and chain.solana_ws_url and chain.backend_keypair
        env = clean_environment()
        env.update(
            ENVIRONMENT="test",
            DATA_DIR=str(self.root / name / "data"),
            DATABASE_URL=self.database_url,
            REDIS_URL=REDIS_TEST_URL,
            REDIS_PREFIX=self.prefix,
            SOLANA_RPC_URL=chain.solana_rpc_url,
            SOLANA_WS_URL=chain.solana_ws_url,
            BACKEND_KEYPAIR=chain.backend_keypair.get_secret_value(),
            HOST="127.0.0.1",
            TRUSTED_PROXIES="127.0.0.1/32",  # the test's clients say who they are
            VOTE_ELIGIBILITY="any",  # the test's voters are fresh wallets
            DISPUTE_VOTE_ELIGIBILITY="any",
            LOG_JSON="true",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.settings)
        env.update(overrides)
        return env

    async def spawn(self, command: str, name: str, **overrides: str) -> Process:
        """Start `marketd <command>` (serve: on PORT; worker: metrics on METRICS_PORT)."""
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)  # no .env there: the environment only
        port = free_port()
        port_variable = "PORT" if command == "serve" else "METRICS_PORT"
        env = self.environment(name, **{port_variable: str(port)}, **overrides)
        log_path = workdir / f"{name}.log"
        with log_path.open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "marketd",
                command,
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        process = Process(name, command, port, log_path, proc)
        self.processes.append(process)
        return process

    async def start_serve(self, name: str, **overrides: str) -> Process:
        """`marketd serve`, once `/readyz` answers 200 (database, Redis and chain reachable)."""
        return await self._start("serve", name, "/readyz", overrides)

    async def start_worker(self, name: str, **overrides: str) -> Process:
        """`marketd worker`, once its metrics endpoint answers (its jobs are starting)."""
        return await self._start("worker", name, "/metrics", overrides)

    async def _start(
        self, command: str, name: str, probe: str, overrides: dict[str, str]
    ) -> Process:
        for attempt in range(3):
            process = await self.spawn(command, name, **overrides)
            try:
                ready = functools.partial(self._answers, process.url + probe)
                await self.eventually(ready, f"{name} ready")
            except ClusterFailure:
                lost_the_port = not process.running and "in use" in process.log_tail(200)
                if not lost_the_port or attempt == 2:
                    raise
                self.processes.remove(process)  # another program took the port first
                continue
            return process
        raise AssertionError("unreachable")

    def process(self, name: str) -> Process:
        [found] = [process for process in self.processes if process.name == name]
        return found

    async def _answers(self, url: str) -> bool:
        try:
            response = await self.http.get(url, timeout=2.0)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def report(self) -> str:
        return "\n".join(
            f"--- {p.name} (pid {p.pid}, exit {p.proc.returncode}) ---\n{p.log_tail()}"
            for p in self.processes
        )

    def check_processes(self) -> None:
        died = [p.name for p in self.processes if p.expected_alive and not p.running]
        if died:
            raise ClusterFailure(f"processes exited unexpectedly: {died}\n{self.report()}")

    async def eventually(
        self, probe: Callable[[], Awaitable[T]], what: str, within: float = DEADLINE
    ) -> T:
        """Poll `probe` until it returns a truthy value (returned); fail after `within`."""
        deadline = time.monotonic() + within
        while True:
            result = await probe()
            if result:
                return result
            self.check_processes()
            if time.monotonic() > deadline:
                raise ClusterFailure(
                    f"timed out after {within} s waiting for {what}\n{self.report()}"
                )
            await asyncio.sleep(POLL)

    # -- locks and metrics
    async def lock_holders(self) -> dict[str, int]:
        """Leader lock name -> pid of the process holding it (the token names its holder)."""
        held: dict[str, int] = {}
        pattern = f"{self.prefix}lock:*"
        async for key in self.redis.scan_iter(match=pattern):
            token = await self.redis.get(key)
            if token is not None:
                name = key.decode().removeprefix(f"{self.prefix}lock:")
                held[name] = int(token.decode().split(":")[1])
        return held

    async def rate_limited(self, ip: str) -> bool:
        """Whether the shared rate limiter has counted a request from `ip` (the limiter runs
        before the route reads the body: a request counted is a request in the app)."""
        async for _key in self.redis.scan_iter(match=f"{self.prefix}ratelimit*{ip}*"):
            return True
        return False

    async def leaders_held_by(self, process: Process) -> bool:
        holders = await self.lock_holders()
        return all(holders.get(name) == process.pid for name in LEADER_LOCKS)

    async def metrics(
        self, process: Process
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """(sample name, sorted labels) -> value, scraped from the process's /metrics."""
        response = await self.http.get(f"{process.url}/metrics")
        assert response.status_code == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    # -- clients
    def identity(self) -> Identity:
        """A new client with its own wallet and its own address (its own rate-limit budget)."""
        self._ips += 1
        return Identity(Keypair(), f"198.18.{self._ips // 250}.{self._ips % 250 + 1}")

    async def sign_in(self, serve: Process, who: Identity | None = None) -> Identity:
        """Sign-In With Solana on `serve`: challenge, ed25519 signature, verify."""
        who = who or self.identity()
        forwarded = {"X-Forwarded-For": who.ip}
        challenge = await self.http.post(
            f"{serve.url}/api/auth/challenge", json={"wallet": who.wallet}, headers=forwarded
        )
        assert challenge.status_code == 200, challenge.text
        message = challenge.json()["message"]
        signature = who.keypair.sign_message(message.encode())
        verified = await self.http.post(
            f"{serve.url}/api/auth/verify",
            json={"message": message, "signature": str(signature)},
            headers=forwarded,
        )
        assert verified.status_code == 200, verified.text
        who.headers = {**forwarded, "Authorization": f"Bearer {verified.json()['token']}"}
        return who

    async def proposed_market(self, serve: Process) -> str:
        """A market proposed through the API, then created on chain by its creator."""
        creator = await self.sign_in(serve)
        created = await self.http.post(
            f"{serve.url}/api/markets",
            json={
                "question": "Will the scale-out test pass?",
                "category": "other",
                "b_parameter": 100 * SOL,
                "initial_liquidity": 10 * SOL,  # as created on chain below
            },
            headers=creator.headers,
        )
        assert created.status_code == 201, created.text
        market_id: str = created.json()["id"]
        self.runtime.chain.airdrop(creator.keypair.pubkey(), 100 * SOL)
        program = self.runtime.program()
        program.call(
            "create_market",
            {
                "market_id": market_id_bytes(market_id),
                "b_parameter": 100 * SOL,
                "initial_liquidity": 10 * SOL,
                "ipfs_question_hash": b"Q" * 46,
            },
            {
                "creator": creator.keypair.pubkey(),
                "market": program.market(market_id),
                "global_config": program.config,
            },
            [creator.keypair],
        )
        return market_id

    async def vote(self, serve: Process, who: Identity, market_id: str, like: bool = True) -> None:
        response = await self.http.post(
            f"{serve.url}/api/votes/proposal",
            json={"market_id": market_id, "vote": like},
            headers=who.headers,
        )
        assert response.status_code == 200, response.text

    @contextlib.asynccontextmanager
    async def websocket(self, serve: Process) -> AsyncIterator[WsClient]:
        async with connect(serve.ws_url, compression=None, open_timeout=DEADLINE) as ws:
            yield WsClient(ws)

    # -- what happened (database and chain)
    async def market_in(self, market_id: str, state: str) -> bool:
        async with self.database.session() as session:
            market = await session.get(Market, market_id)
            return market is not None and market.state == state

    async def outbox(self, market_id: str | None = None) -> list[ChainOutbox]:
        query = select(ChainOutbox).order_by(ChainOutbox.id)
        if market_id is not None:
            query = query.where(ChainOutbox.market_id == market_id)
        async with self.database.session() as session:
            return list((await session.execute(query)).scalars().all())

    async def approved_markets(self) -> set[str]:
        async with self.database.session() as session:
            rows = await session.execute(select(Market.id).where(Market.state == "APPROVED"))
            return set(rows.scalars().all())

    def chain_events(self, name: str, market_id: str | None = None) -> int:
        """How many `name` events landed on the chain (optionally of one market)."""
        wanted = market_id_bytes(market_id) if market_id is not None else None
        return sum(
            1
            for record in self.runtime.chain.records()
            if record.err is None
            for event in parse_program_events(
                record.logs, self.runtime.program_id, self.runtime.coder
            )
            if event.name == name and wanted in (None, event.data.get("market_id"))
        )

    def backend_transactions(self, market_id: str) -> list[str]:
        """Signatures of every transaction (landed or failed) the backend paid for that
        touched the market's account."""
        backend = str(self.runtime.backend.pubkey())
        market = str(self.runtime.program().market(market_id))
        return [
            record.signature
            for record in self.runtime.chain.records()
            if record.account_keys[0] == backend and market in record.account_keys
        ]


async def start_cluster(root: Path, **settings: str) -> Cluster:
    cluster = Cluster(root, **settings)
    try:
        await cluster.start()
    except BaseException:
        await cluster.close()
        raise
    return cluster


SCALE_SETTINGS = {
    "PROPOSAL_MIN_VOTES": "3",  # with the chain's 70 %: three likes approve
    "RATE_LIMIT": "5/minute",
    "SIGN_IN_RATE_LIMIT": "100000/minute",  # every test client signs in from one address
    "IP_WALLETS_LIMIT": "100000",
    "LOCK_TTL_SECONDS": "3",  # a dead worker's jobs move within seconds
    "INDEXER_AUTO_ACTIVATE": "false",  # APPROVED stays APPROVED: one backend action per market
}


SHUTDOWN_SETTINGS = {
    "LOCK_TTL_SECONDS": "60",  # a lock that moves quickly was released, it did not expire
    "INDEXER_AUTO_ACTIVATE": "false",
}
