"""Simulated API traffic shared by the benchmarks (bench/api.py, bench/load.py).

- `seed`: 10,000 markets and (by default) 1,000,000 proposal votes, COPYed into PostgreSQL.
- `User`: one simulated client: its wallet, Sign-In With Solana, and one step of a request mix
  (`User` has issue 2's mix; `LoadUser` the mixed traffic of the load test, with sign-in,
  votes, posts and signed trades; `HealthzUser` only `GET /healthz`).
- `drive`: the users' loop (a step, then an exponential think time) until a deadline; every
  request lands in a `Recorder` with its route, start, latency and outcome.
- `summarise`: per-route p50/p95/p99, throughput and errors from a `Recorder`.

Throughput counts the requests that completed within the window and divides by the window: a
user's last think time never stretches it (the loop stops sleeping at the deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from common import percentiles
from marketd.chain.addresses import (
    global_config_address,
    market_address,
    market_id_from_bytes,
    position_address,
)
from marketd.chain.idl import IdlCoder
from marketd.chain.program import program_coder, program_id
from marketd.config import DEFAULT_PROGRAM_ID, Settings

MARKETS = 10_000
VOTES = int(os.environ.get("BENCH_VOTES", 1_000_000))
CATEGORIES = ["crypto", "sports", "politics", "science", "entertainment", "other"]  # the platform's
STATES = ["PROPOSED"] * 4 + ["ACTIVE"] * 4 + ["APPROVED", "RESOLVING", "DISPUTED", "FINALIZED"]
SORTS = ["newest", "volume", "closing_soon"]
PROGRAM = Pubkey.from_string(DEFAULT_PROGRAM_ID)

_MARKET_COLUMNS = [
    "id", "on_chain_address", "question", "description", "category", "tags", "creator_wallet",
    "resolver_wallet", "state", "b_parameter", "initial_liquidity", "current_liquidity",
    "shares_yes", "shares_no", "current_price_yes", "current_price_no", "total_volume",
    "proposed_outcome", "final_outcome", "ipfs_evidence_hash", "proposal_likes",
    "proposal_dislikes", "dispute_agree", "dispute_disagree", "created_at", "approved_at",
    "activated_at", "resolution_proposed_at", "finalized_at", "is_cancelled", "updated_at",
]  # fmt: skip


# ------------------------------------------------------------------------------ data set


async def seed(url: str, votes: int = VOTES) -> list[str]:
    """COPY the markets and votes in (the ORM would take minutes for a million rows); market
    `i` is in state STATES[i % len(STATES)]."""
    rng = random.Random(1)
    now = datetime.now(UTC)
    wallets = [str(Keypair.from_seed(rng.randbytes(32)).pubkey()) for _ in range(2_000)]
    market_ids = [market_id_from_bytes(rng.randbytes(32)) for _ in range(MARKETS)]
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table(  # the platform's tables reference users
            "users", records=[(w, now) for w in wallets], columns=["wallet", "created_at"]
        )
        market_rows: list[tuple[Any, ...]] = []
        for index, market_id in enumerate(market_ids):
            created = now - timedelta(minutes=index)
            market_rows.append(
                (
                    market_id,
                    str(market_address(PROGRAM, market_id)),
                    f"Will benchmark market {index} resolve YES?",
                    None,
                    CATEGORIES[index % len(CATEGORIES)],
                    [],
                    wallets[index % len(wallets)],
                    None,
                    STATES[index % len(STATES)],
                    10**11,
                    10**10,
                    10**10,
                    0,
                    0,
                    0.5,
                    0.5,
                    rng.randint(0, 10**12),
                    None,
                    None,
                    None,
                    0,
                    0,
                    0,
                    0,
                    created,
                    None,
                    None,
                    None,
                    None,
                    False,
                    created,
                )
            )
        await connection.copy_records_to_table(
            "markets", records=market_rows, columns=_MARKET_COLUMNS
        )
        await connection.copy_records_to_table(
            "market_schedules",
            records=[(m, now + timedelta(hours=i + 1)) for i, m in enumerate(market_ids)],
            columns=["market_id", "closes_at"],
        )
        per_market = votes // MARKETS
        vote_rows = (
            (
                uuid.uuid4(),
                market_id,
                wallets[(i * 7 + j) % len(wallets)],
                rng.random() < 0.7,
                now,
                None,
            )
            for i, market_id in enumerate(market_ids)
            for j in range(per_market)
        )
        await connection.copy_records_to_table(
            "proposal_votes",
            records=vote_rows,
            columns=["id", "market_id", "user_wallet", "vote", "voted_at", "tx_signature"],
        )
        # Settle the bulk load now, as a long-running database would be: autovacuum's
        # insert threshold otherwise vacuums the million new rows, and the checkpointer
        # writes them out, at some moment of the measured window.
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()
    return market_ids


POPULARITY_EXPONENT = 1.0
"""Zipf exponent of market popularity (the classic web-traffic shape): the k-th most popular
market of n draws a share 1/k^s / H(n, s). With s = 1 over 10,000 markets the top 100 draw
about half of the requests."""


def add_popularity_argument(parser: argparse.ArgumentParser) -> None:
    """`--popularity zipf|uniform`: how the users of a benchmark pick markets (`Picker`)."""
    parser.add_argument(
        "--popularity",
        choices=["zipf", "uniform"],
        default="zipf",
        help="how users pick markets (traffic.Picker): Zipf popularity or uniformly",
    )


class Picker:
    """Draws items uniformly or by Zipf popularity (rank order shuffled once with a fixed
    seed, so popularity is independent of age, state and category)."""

    def __init__(self, items: Sequence[Any], zipf: bool) -> None:
        self.items = list(items)
        self.cum_weights: list[float] | None = None
        if zipf and self.items:
            order = list(range(len(self.items)))
            random.Random(7).shuffle(order)
            weights = [0.0] * len(self.items)
            for rank, index in enumerate(order, start=1):
                weights[index] = 1 / rank**POPULARITY_EXPONENT
            self.cum_weights = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> Any:
        if self.cum_weights is None:
            return rng.choice(self.items)
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True)
class Catalog:
    """The seeded markets and how users pick them: uniformly, or (`zipf`) by a heavy-tailed
    popularity, as real traffic concentrates on a few markets."""

    markets: list[str]
    proposed: list[str]
    active: list[tuple[str, Pubkey]]  # (market id, on-chain address)
    zipf: bool = False
    any_market: Picker = field(init=False, repr=False)
    proposed_market: Picker = field(init=False, repr=False)
    active_market: Picker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "any_market", Picker(self.markets, self.zipf))
        object.__setattr__(self, "proposed_market", Picker(self.proposed, self.zipf))
        object.__setattr__(self, "active_market", Picker(self.active, self.zipf))

    @classmethod
    def of(cls, market_ids: Sequence[str], *, zipf: bool = False) -> Catalog:
        def state(i: int) -> str:
            return STATES[i % len(STATES)]

        return cls(
            markets=list(market_ids),
            proposed=[m for i, m in enumerate(market_ids) if state(i) == "PROPOSED"],
            active=[
                (m, market_address(PROGRAM, m))
                for i, m in enumerate(market_ids)
                if state(i) == "ACTIVE"
            ],
            zipf=zipf,
        )


# ------------------------------------------------------------------------------ recording


@dataclass(frozen=True)
class Request:
    label: str
    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: Mapping[str, object] | None = None
    expected: frozenset[int] = frozenset()
    """Error statuses this harness can legitimately cause (e.g. a vote on a market that just
    left voting); they count as expected errors, every other error status as unexpected."""


@dataclass(frozen=True, slots=True)
class Sample:
    label: str
    start: float  # seconds since the window opened
    latency: float  # seconds
    error: str | None  # "<status>" or an exception name; None on success
    expected: bool  # an error the harness can cause
    cache: str | None = None  # the response's X-Cache header (page cache "hit" or "miss")


@dataclass(frozen=True, slots=True)
class Response:
    status: int  # 0 when no response came (connection error, timeout)
    body: bytes
    returned: float  # time.monotonic() when the response was read

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """Every request of a run, timed against the window [origin, origin + duration]."""

    def __init__(self) -> None:
        self.origin = self.warmup_start = time.monotonic()
        self.duration = 0.0
        self.samples: list[Sample] = []
        self.arrival: list[Sample] = []
        """The warm-up's requests (users arriving and signing in), timed from its start:
        reported apart from the window, never dropped (their errors count too)."""

    @property
    def deadline(self) -> float:
        return self.origin + self.duration

    def start(self, duration: float, warmup: float = 0.0) -> None:
        """Open the window `warmup` seconds from now; requests started before it (sign-ins,
        warm-up traffic) go to `arrival`."""
        self.warmup_start = time.monotonic()
        self.origin, self.duration = self.warmup_start + warmup, duration
        self.samples, self.arrival = [], []

    def add(
        self,
        request: Request,
        started: float,
        ended: float,
        status: int,
        error: str | None,
        cache: str | None = None,
    ) -> None:
        if error is None and status >= 400:
            error = str(status)
        expected = error is not None and status in request.expected
        early = started < self.origin
        into, zero = (self.arrival, self.warmup_start) if early else (self.samples, self.origin)
        into.append(Sample(request.label, started - zero, ended - started, error, expected, cache))


# ------------------------------------------------------------------------------ clients


class Balancer:
    """HTTP sessions to one or more instances; `next()` picks them round-robin per request,
    as a load balancer would. `connects` holds how long each new TCP connection took to open
    (part of the latency of the request that needed it)."""

    def __init__(self, bases: Sequence[str], connections: int, timeout: float = 30) -> None:
        self.bases = list(bases)
        self.connections = connections
        self.timeout = timeout
        self.sessions: list[aiohttp.ClientSession] = []
        self.connects: list[float] = []
        self._turn = 0

    async def __aenter__(self) -> Balancer:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        trace = aiohttp.TraceConfig()

        async def opening(_: object, context: Any, __: object) -> None:
            context.opening = time.monotonic()

        async def opened(_: object, context: Any, __: object) -> None:
            self.connects.append(time.monotonic() - context.opening)

        trace.on_connection_create_start.append(opening)
        trace.on_connection_create_end.append(opened)
        self.sessions = [
            aiohttp.ClientSession(
                base,
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=timeout,
                trace_configs=[trace],
            )
            for base in self.bases
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(session.close() for session in self.sessions))

    def next(self) -> aiohttp.ClientSession:
        self._turn = (self._turn + 1) % len(self.sessions)
        return self.sessions[self._turn]


class User:
    """One simulated client with its own wallet; `step` is one request of issue 2's mix."""

    def __init__(
        self, http: Balancer, catalog: Catalog, recorder: Recorder, seed: int | None = None
    ) -> None:
        self.http, self.catalog, self.recorder = http, catalog, recorder
        self.rng = random.Random(seed)
        self.keypair = Keypair.from_seed(self.rng.randbytes(32))
        self.wallet = str(self.keypair.pubkey())
        self.headers: dict[str, str] = {}

    async def send(self, request: Request) -> Response:
        """One request, timed and recorded; never raises for HTTP or connection errors."""
        session = self.http.next()
        status, body, error, cache = 0, b"", None, None
        started = time.monotonic()
        try:
            async with session.request(
                request.method,
                request.path,
                params=request.params,
                json=request.body,
                headers=self.headers,
            ) as response:
                body = await response.read()
                status = response.status
                cache = response.headers.get("X-Cache")
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = type(exc).__name__
        ended = time.monotonic()
        self.recorder.add(request, started, ended, status, error, cache)
        return Response(status, body, ended)

    async def sign_in(self) -> bool:
        """Sign-In With Solana: challenge, sign the message with the wallet key, verify."""
        challenge = await self.send(
            Request(
                "sign-in challenge", "POST", "/api/auth/challenge", body={"wallet": self.wallet}
            )
        )
        if not challenge.ok:
            return False
        message = str(challenge.json()["message"])
        signature = str(self.keypair.sign_message(message.encode()))
        verified = await self.send(
            Request(
                "sign-in verify",
                "POST",
                "/api/auth/verify",
                body={"message": message, "signature": signature},
            )
        )
        if not verified.ok:
            return False
        self.headers = {"Authorization": f"Bearer {verified.json()['token']}"}
        return True

    async def begin(self, think: float) -> None:
        """Before the first step: spread the users' first requests over one think time."""
        await asyncio.sleep(self.rng.random() * think)

    async def step(self) -> None:
        await self.send(self.request())

    def request(self) -> Request:
        """The next request of issue 2's mix."""
        rng = self.rng
        draw = rng.random()
        market = self.catalog.any_market.pick(rng)
        if draw < 0.30:
            params = {"category": rng.choice(CATEGORIES), "sort": rng.choice(["newest", "volume"])}
            return Request("list markets", "GET", "/api/markets", params)
        if draw < 0.35:
            return Request(
                "search markets", "GET", "/api/markets", {"q": str(rng.randint(0, 9999))}
            )
        if draw < 0.60:
            return Request("market detail", "GET", f"/api/markets/{market}")
        if draw < 0.72:
            return Request("market votes", "GET", f"/api/markets/{market}/votes", {"limit": "20"})
        if draw < 0.84:
            return Request("discussions", "GET", f"/api/discussions/{market}")
        if draw < 0.94:
            body = {"market_id": self.catalog.proposed_market.pick(rng), "vote": rng.random() < 0.7}
            return Request("post vote", "POST", "/api/votes/proposal", body=body)
        body = {"market_id": market, "content": "Benchmark post " + uuid.uuid4().hex}
        return Request("post discussion", "POST", "/api/discussions", body=body)


class HealthzUser(User):
    """The ceiling of the server and this client: `GET /healthz` only."""

    def request(self) -> Request:
        return Request("healthz", "GET", "/healthz")


@dataclass
class Triggers:
    """Writes that must reach the WebSocket subscribers: event key -> (market, time the POST
    returned). Keys: `v|<market>|<wallet>` for a vote, `d|<post id>` for a post."""

    watched: frozenset[str]
    returned: dict[str, tuple[str, float]] = field(default_factory=dict)

    def add(self, key: str, market: str, returned: float) -> None:
        if market in self.watched:
            self.returned[key] = (market, returned)


class TradeBuilder:
    """Wallet-signed buy_shares / sell_shares transactions, accounts laid out from the IDL."""

    def __init__(self, settings: Settings) -> None:
        self.coder: IdlCoder = program_coder(settings)
        self.program = program_id(settings)
        self.config = global_config_address(self.program)
        self.fee_wallet = Keypair.from_seed(bytes(32)).pubkey()

    def build(
        self, signer: Keypair, market: Pubkey, buy: bool, outcome: bool, amount: int, salt: bytes
    ) -> str:
        name = "buy_shares" if buy else "sell_shares"
        args: dict[str, object] = (
            {"outcome": outcome, "target_cost": amount}
            if buy
            else {"outcome": outcome, "shares_to_sell": amount, "min_proceeds": 1}
        )
        user = signer.pubkey()
        addresses = {
            "global_config": self.config,
            "market": market,
            "position": position_address(self.program, market, user),
            "user": user,
            "protocol_fee_wallet": self.fee_wallet,
        }
        accounts = [
            AccountMeta(meta.address or addresses[meta.name], meta.signer, meta.writable)
            for meta in self.coder.instruction_accounts(name)
        ]
        instruction = Instruction(self.program, self.coder.encode_instruction(name, args), accounts)
        # A real client uses a recent blockhash; the relay does not check it, so random bytes
        # make every transaction (and its signature) unique.
        message = Message.new_with_blockhash([instruction], user, Hash(salt))
        transaction = Transaction([signer], message, message.recent_blockhash)
        return base64.b64encode(bytes(transaction)).decode()


class LoadUser(User):
    """The load test's user: signs in when it arrives (during the run), then browses, reads
    markets, votes, posts and trades; now and then signs out and in again.

    Votes and posts go to a watched market (one the WebSocket subscribers follow) with
    probability `watched_share`. A user votes at most once per market, so every vote event is
    distinct (the sequencer merges identical events) and maps to exactly one POST.
    """

    def __init__(
        self,
        http: Balancer,
        catalog: Catalog,
        recorder: Recorder,
        *,
        ramp: float,
        watched: Sequence[str],
        watched_share: float,
        triggers: Triggers,
        trades: TradeBuilder,
        seed: int | None = None,
    ) -> None:
        super().__init__(http, catalog, recorder, seed)
        self.ramp = ramp
        self.watched = list(watched)
        self.watched_share = watched_share
        self.triggers = triggers
        self.trades = trades
        self.voted: set[str] = set()

    async def begin(self, think: float) -> None:
        await asyncio.sleep(self.rng.random() * self.ramp)
        await self.sign_in()

    def _write_market(self, pool: Picker) -> str:
        rng = self.rng
        if rng.random() < self.watched_share:
            fresh = [m for m in self.watched if m not in self.voted]
            if fresh:
                return rng.choice(fresh)
        while True:
            market = str(pool.pick(rng))
            if market not in self.voted:
                return market

    async def step(self) -> None:
        if not self.headers:  # the sign-in failed: a client tries again before anything else
            await self.sign_in()
            return
        rng, catalog = self.rng, self.catalog
        draw = rng.random()
        market = catalog.any_market.pick(rng)
        if draw < 0.15:
            await self.send(
                Request("browse markets", "GET", "/api/markets", {"sort": rng.choice(SORTS)})
            )
        elif draw < 0.30:
            params = {"state": rng.choice(["PROPOSED", "ACTIVE"]), "sort": rng.choice(SORTS)}
            if rng.random() < 0.5:
                params["category"] = rng.choice(CATEGORIES)
            await self.send(Request("filter markets", "GET", "/api/markets", params))
        elif draw < 0.35:
            params = {"q": str(rng.randint(0, 9999))}
            await self.send(Request("search markets", "GET", "/api/markets", params))
        elif draw < 0.55:
            await self.send(Request("market detail", "GET", f"/api/markets/{market}"))
        elif draw < 0.62:
            path = f"/api/markets/{market}/votes"
            await self.send(Request("market votes", "GET", path, {"limit": "20"}))
        elif draw < 0.65:
            await self.send(Request("market trades", "GET", f"/api/markets/{market}/trades"))
        elif draw < 0.75:
            await self.send(Request("discussions", "GET", f"/api/discussions/{market}"))
        elif draw < 0.78:
            await self.send(Request("user profile", "GET", f"/api/users/{self.wallet}"))
        elif draw < 0.86:
            await self.vote()
        elif draw < 0.91:
            await self.post()
        elif draw < 0.98:
            await self.trade(buy=draw < 0.96)
        else:
            await self.send(Request("sign-out", "POST", "/api/auth/logout"))
            self.headers = {}
            await self.sign_in()

    async def vote(self) -> None:
        market = self._write_market(self.catalog.proposed_market)
        self.voted.add(market)
        body = {"market_id": market, "vote": self.rng.random() < 0.7}
        response = await self.send(Request("post vote", "POST", "/api/votes/proposal", body=body))
        if response.ok:
            self.triggers.add(f"v|{market}|{self.wallet}", market, response.returned)

    async def post(self) -> None:
        market = self._write_market(self.catalog.any_market)
        body = {"market_id": market, "content": "Load test post " + uuid.uuid4().hex}
        response = await self.send(
            Request("post discussion", "POST", "/api/discussions", body=body)
        )
        if response.ok:
            self.triggers.add(f"d|{response.json()['id']}", market, response.returned)

    async def trade(self, buy: bool) -> None:
        market_id, address = self.catalog.active_market.pick(self.rng)
        amount = self.rng.randint(1, 50) * 1_000_000
        transaction = self.trades.build(
            self.keypair, address, buy, self.rng.random() < 0.5, amount, self.rng.randbytes(32)
        )
        label, path = (
            ("trade buy", "/api/trades/buy") if buy else ("trade sell", "/api/trades/sell")
        )
        body = {"market_id": market_id, "transaction": transaction}
        await self.send(Request(label, "POST", path, body=body))


# ------------------------------------------------------------------------------ driving


async def drive(
    users: Sequence[User], recorder: Recorder, duration: float, think: float, warmup: float = 0.0
) -> None:
    """Run every user until the window closes: `begin`, then step / think (exponential, mean
    `think` s) until the deadline. The window opens after `warmup` seconds of the same,
    unrecorded traffic (one continuous run, so the users' arrivals are already spread out
    when recording starts). A think time ends at the deadline; requests in flight then are
    awaited (and recorded) but do not count towards the throughput."""
    recorder.start(duration, warmup)
    deadline = recorder.deadline

    async def run(user: User) -> None:
        await user.begin(think)
        while time.monotonic() < deadline:
            await user.step()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(user.rng.expovariate(1 / think), remaining))

    await asyncio.gather(*(run(user) for user in users))


SLICE_SECONDS = 5


@dataclass(frozen=True)
class RouteSummary:
    count: int
    figures: dict[str, float]  # p50/p95/p99 in ms
    unexpected: int
    expected: int
    cache_hits: float | None  # share of the route's responses served from the page cache


@dataclass(frozen=True)
class Summary:
    duration: float
    requests: int
    completed_in_window: int
    throughput: float  # requests completed within the window per second
    overall: dict[str, float]
    routes: dict[str, RouteSummary]
    errors: dict[str, int]  # "<route> <status or exception>" -> count (unexpected)
    expected_errors: dict[str, int]
    p95_by_slice: list[float]  # p95 (ms) of the requests started in each SLICE_SECONDS

    @property
    def unexpected(self) -> int:
        return sum(self.errors.values())


def summarise(recorder: Recorder) -> Summary:
    """The window's requests."""
    return summarise_samples(recorder.samples, recorder.duration)


def summarise_arrival(recorder: Recorder) -> Summary:
    """The warm-up's requests (timed from the warm-up's start)."""
    return summarise_samples(recorder.arrival, recorder.origin - recorder.warmup_start)


def summarise_samples(samples: Sequence[Sample], duration: float) -> Summary:
    by_route: dict[str, list[float]] = defaultdict(list)
    errors: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    unexpected_by_route: Counter[str] = Counter()
    expected_by_route: Counter[str] = Counter()
    in_window = 0
    cached: dict[str, Counter[str]] = defaultdict(Counter)
    for sample in samples:
        by_route[sample.label].append(sample.latency)
        if sample.cache is not None:
            cached[sample.label][sample.cache] += 1
        if sample.start + sample.latency <= duration:
            in_window += 1
        if sample.error is not None:
            key = f"{sample.label} {sample.error}"
            if sample.expected:
                expected[key] += 1
                expected_by_route[sample.label] += 1
            else:
                errors[key] += 1
                unexpected_by_route[sample.label] += 1
    every = [sample.latency for sample in samples]
    slices: dict[int, list[float]] = defaultdict(list)
    for sample in samples:
        slices[int(sample.start // SLICE_SECONDS)].append(sample.latency)
    return Summary(
        duration=duration,
        requests=len(every),
        completed_in_window=in_window,
        throughput=in_window / duration if duration else 0.0,
        overall=percentiles(every),
        routes={
            label: RouteSummary(
                len(values),
                percentiles(values),
                unexpected_by_route[label],
                expected_by_route[label],
                cached[label]["hit"] / sum(cached[label].values()) if cached[label] else None,
            )
            for label, values in sorted(by_route.items())
        },
        errors=dict(errors),
        expected_errors=dict(expected),
        p95_by_slice=[percentiles(slices[i])["p95"] for i in sorted(slices) if i >= 0],
    )


class LoopLag:
    """How late this process's event loop wakes up (a saturated load generator measures its
    own queueing, not the server's): sleeps `interval` s and records the overshoot."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.samples: list[float] = []

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLag]:
        task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            self.samples.append(time.monotonic() - before - self.interval)
