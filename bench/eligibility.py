"""What vote eligibility costs a vote: `POST /api/votes/proposal` under three policies.

    .venv/bin/python bench/eligibility.py [--votes 200]

One process: the app (embedded SQLite, in-memory cache) over an ASGI transport, and a local
chain served over JSON-RPC on the same event loop (so an RPC call's cost includes the chain's
own work). `--votes` wallets, each funded 30 days ago, sign in first (not timed), then each
votes once under `any` (no check), once under `min_balance_sol=0.05,min_wallet_age_days=7` with
a cold cache (one getBalance and one getSignaturesForAddress per vote) and once more with the
facts cached (VOTE_ELIGIBILITY_CACHE_SECONDS). Prints the median and p95 per vote.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from solders.keypair import Keypair

from marketd.app import create_app
from marketd.chain.localnet.rpc_server import serve_local_rpc
from marketd.chain.localnet.svm import LocalChain
from marketd.config import Settings
from marketd.core.container import Container
from marketd.core.migrate import upgrade

STRICT = "min_balance_sol=0.05,min_wallet_age_days=7"


async def sign_in(http: httpx.AsyncClient, keypair: Keypair) -> dict[str, str]:
    challenge = await http.post("/api/auth/challenge", json={"wallet": str(keypair.pubkey())})
    message = challenge.json()["message"]
    signature = keypair.sign_message(message.encode())
    verified = await http.post(
        "/api/auth/verify", json={"message": message, "signature": str(signature)}
    )
    return {"Authorization": f"Bearer {verified.json()['token']}"}


async def timed_votes(
    http: httpx.AsyncClient, market_id: str, voters: list[dict[str, str]], vote: bool
) -> list[float]:
    seconds = []
    for headers in voters:
        started = time.perf_counter()
        response = await http.post(
            "/api/votes/proposal", json={"market_id": market_id, "vote": vote}, headers=headers
        )
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return seconds


def figures(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    median = statistics.median(ordered) * 1000
    return f"{name:<52} median {median:6.2f} ms  p95 {p95 * 1000:6.2f} ms"


async def run_policy(
    root: Path, rpc_url: str, policy: str, keypairs: list[Keypair], passes: int
) -> list[list[float]]:
    settings = Settings(
        _env_file=None,
        data_dir=root / policy.replace("=", "-").replace(",", "_"),
        environment="test",
        rate_limit="1000000/minute",
        sign_in_rate_limit="1000000/minute",
        ip_wallets_limit=1_000_000,
        solana_rpc_url=rpc_url,
        vote_eligibility=policy,
    )
    container = Container.build(settings)
    await upgrade(container.database.engine)
    app: Any = create_app(container=container)
    results = []
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as http:
            creator = await sign_in(http, Keypair())
            created = await http.post(
                "/api/markets",
                json={"question": "Will the eligibility bench finish?", "category": "tests"},
                headers=creator,
            )
            market_id = created.json()["id"]
            voters = [await sign_in(http, keypair) for keypair in keypairs]
            for index in range(passes):
                results.append(await timed_votes(http, market_id, voters, index % 2 == 0))
    finally:
        await container.close()
    return results


async def main(votes: int) -> None:
    chain = LocalChain()
    now = chain.unix_timestamp
    chain.set_unix_timestamp(now - 30 * 86_400)
    keypairs = [Keypair() for _ in range(votes)]
    for keypair in keypairs:
        chain.airdrop(keypair.pubkey(), 1_000_000_000)
    chain.set_unix_timestamp(now)
    with tempfile.TemporaryDirectory() as tmp:
        async with serve_local_rpc(chain) as endpoint:
            [anyone] = await run_policy(Path(tmp), endpoint.http_url, "any", keypairs, 1)
            cold, warm = await run_policy(Path(tmp), endpoint.http_url, STRICT, keypairs, 2)
    print(f"{votes} votes each, embedded SQLite, local chain RPC on the same loop")
    print(figures("any (no check)", anyone))
    print(figures(f"{STRICT} (cold)", cold))
    print(figures(f"{STRICT} (cached)", warm))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200)
    asyncio.run(main(parser.parse_args().votes))
