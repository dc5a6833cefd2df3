"""Scale-out on real processes: two `marketd serve` and two `marketd worker` on loopback,
sharing PostgreSQL, Redis and the local chain (see conftest.py).

* a vote on instance 1 leads to exactly one approval, in the database and on the chain;
* a WebSocket client on instance 2 receives the votes and the state change;
* the rate limit is one budget across the instances;
* SIGKILL of the worker leading the jobs: the other takes every job over within the lock TTL,
  and a threshold crossed while nobody led is approved exactly once.

The tests run in file order on one cluster (the last one kills a worker); each creates its own
markets and clients.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from marketd.chain.outbox import OutboxStatus

MIN_VOTES = 3  # PROPOSAL_MIN_VOTES of the cluster (SCALE_SETTINGS)
RATE_LIMIT = 5  # RATE_LIMIT of the cluster, per minute


async def approved_once(cluster: Any, market_id: str) -> None:
    """The market is APPROVED through exactly one backend action and one transaction."""
    await cluster.eventually(lambda: cluster.market_in(market_id, "APPROVED"), "APPROVED")

    async def confirmed() -> bool:
        rows = await cluster.outbox(market_id)
        return bool(rows) and rows[0].status == OutboxStatus.CONFIRMED

    await cluster.eventually(confirmed, "the approval's outbox row confirmed")
    [row] = await cluster.outbox(market_id)
    assert row.intent == "approve_market"
    # One transaction carrying aggregate + approve, the one the outbox recorded.
    assert cluster.backend_transactions(market_id) == [row.signature]
    assert cluster.chain_events("ProposalAggregated", market_id) == 1
    assert cluster.chain_events("ProposalApproved", market_id) == 1
    program = cluster.runtime.program()
    account = program.read("MarketAccount", program.market(market_id))
    assert account is not None and account["state"] == "Approved"


async def test_a_vote_on_instance_1_approves_once_and_streams_to_instance_2(scale_cluster):
    cluster = scale_cluster
    serve_1, serve_2 = cluster.process("serve-1"), cluster.process("serve-2")
    market_id = await cluster.proposed_market(serve_1)
    voters = [await cluster.sign_in(serve_2) for _ in range(MIN_VOTES)]

    async with cluster.websocket(serve_2) as ws:
        state = await ws.subscribe(market_id)
        assert state["market"]["state"] == "PROPOSED"
        for voter in voters[:-1]:
            await cluster.vote(serve_2, voter, market_id)  # below the minimum: nothing happens
        assert await cluster.outbox(market_id) == []
        # The deciding vote, on the other instance (the session works on both).
        await cluster.vote(serve_1, voters[-1], market_id)
        change = await ws.until(
            lambda m: m["type"] == "market_state_change" and m["marketId"] == market_id
        )
        assert (change["oldState"], change["newState"]) == ("PROPOSED", "APPROVED")

    votes = [m for m in ws.received if m["type"] == "vote"]
    assert sorted(m["user"] for m in votes) == sorted(v.wallet for v in voters)
    assert max(m["likes"] for m in votes) == MIN_VOTES
    events = [m for m in ws.received if "seq" in m]
    assert [m["seq"] for m in events] == sorted({m["seq"] for m in events})  # ordered, no dupes
    await approved_once(cluster, market_id)


async def test_the_rate_limit_is_one_budget_across_instances(scale_cluster):
    cluster = scale_cluster
    serves = [cluster.process("serve-1"), cluster.process("serve-2")]
    client = cluster.identity()
    answers = []
    for index in range(2 * RATE_LIMIT):
        serve = serves[index % 2]
        response = await cluster.http.get(
            f"{serve.url}/api/markets", headers={"X-Forwarded-For": client.ip}
        )
        answers.append((serve.name, response))
    statuses = [response.status_code for _, response in answers]
    assert statuses == [200] * RATE_LIMIT + [429] * RATE_LIMIT
    # Both instances refuse once the shared budget is spent, and say when to come back.
    assert {name for name, response in answers if response.status_code == 429} == {
        serve.name for serve in serves
    }
    refused = answers[-1][1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.json()["status"] == 429
    # Another client still has its own budget, on either instance.
    other = cluster.identity()
    for serve in serves:
        response = await cluster.http.get(
            f"{serve.url}/api/markets", headers={"X-Forwarded-For": other.ip}
        )
        assert response.status_code == 200


async def test_killing_the_leading_worker_hands_its_jobs_over_without_loss(scale_cluster):
    cluster = scale_cluster
    serve_1, serve_2 = cluster.process("serve-1"), cluster.process("serve-2")
    workers = {p.pid: p for p in cluster.processes if p.command == "worker" and p.running}
    assert len(workers) == 2

    async def led_by_workers() -> dict[str, int] | None:
        holders: dict[str, int] = await cluster.lock_holders()
        led = all(holders.get(name) in workers for name in cluster.leader_locks)
        return holders if led else None

    holders = await cluster.eventually(led_by_workers, "every leader lock held")
    leader = workers[holders["votes-aggregator"]]
    [survivor] = [p for p in workers.values() if p is not leader]

    async def leads_votes() -> bool:  # the worker's own view agrees with the Redis key
        metrics = await cluster.metrics(leader)
        return bool(metrics[("marketd_vote_aggregator_leader", ())] == 1)

    await cluster.eventually(leads_votes, "the lock holder reporting itself leader")

    market_id = await cluster.proposed_market(serve_2)
    voters = [await cluster.sign_in(serve_1) for _ in range(MIN_VOTES)]
    for voter in voters[:-1]:
        await cluster.vote(serve_1, voter, market_id)
    approvals_before = await cluster.approved_markets()

    killed_at = time.monotonic()
    assert await leader.signal_and_wait(signal.SIGKILL) == -signal.SIGKILL
    # The threshold is crossed while no worker leads (the dead one's lock has not expired
    # yet): the vote's bus event reaches no aggregator; the survivor's catch-up sweep on
    # taking the lead must find the market.
    await cluster.vote(serve_2, voters[-1], market_id)

    await cluster.eventually(
        lambda: cluster.leaders_held_by(survivor), "the survivor holding every leader lock"
    )
    took_over = time.monotonic() - killed_at
    await approved_once(cluster, market_id)
    approved = time.monotonic() - killed_at

    # Nothing lost, nothing doubled: one row, one transaction, one event per approved market.
    assert await cluster.approved_markets() == approvals_before | {market_id}
    rows = await cluster.outbox()
    assert sorted(row.market_id for row in rows) == sorted(await cluster.approved_markets())
    assert cluster.chain_events("ProposalApproved") == len(rows)
    survivor_metrics = await cluster.metrics(survivor)
    assert survivor_metrics[("marketd_vote_aggregator_leader", ())] == 1
    for name in cluster.leader_locks:
        assert survivor_metrics[("marketd_lock_held", (("lock", name),))] == 1
    print(f"[scale] takeover after SIGKILL: {took_over:.2f} s (lock TTL 3 s)")
    print(f"[scale] approved after SIGKILL: {approved:.2f} s")
