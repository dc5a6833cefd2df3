"""The chain outbox against the real local chain and PostgreSQL: once and only once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from marketd.chain.actions import Intent, InvalidArguments, Outcome
from marketd.chain.addresses import new_market_id
from marketd.chain.keys import BackendKey
from marketd.chain.outbox import (
    OUTBOX_GAVE_UP,
    OutboxRunner,
    OutboxStatus,
    RowResult,
    chain_info,
    enqueue,
    outcome_of,
)
from marketd.core.database import Database
from marketd.models import ChainOutbox
from marketd.shared.market_state import MarketState

from ..helpers.loops import passes_through_failures, running

LEASE = 60.0


class RunnerKilled(BaseException):
    """Stands for the process dying: nothing in the runner catches a BaseException."""


def make_runner(world: Any, database: Database, **options: Any) -> OutboxRunner:
    options.setdefault("confirm_wait_seconds", 0.0)
    options.setdefault("lease_seconds", LEASE)
    return OutboxRunner(database, world.client, world.backend, clock=world.clock, **options)


async def add_row(
    database: Database,
    intent: str,
    market_id: str | None,
    arguments: dict[str, Any],
    **kwargs: Any,
) -> ChainOutbox:
    async with database.session() as session, session.begin():
        return await enqueue(session, intent, market_id, arguments, **kwargs)


async def load(database: Database, row_id: uuid.UUID) -> ChainOutbox:
    async with database.session() as session:
        row = await session.get(ChainOutbox, row_id)
        assert row is not None
        return row


async def approve_row(world: Any, database: Database, market_id: str) -> ChainOutbox:
    return await add_row(database, Intent.APPROVE_MARKET, market_id, {"likes": 8, "dislikes": 2})


def killer(step: str) -> Callable[[str, ChainOutbox], Awaitable[None]]:
    async def observe(seen: str, _row: ChainOutbox) -> None:
        if seen == step:
            raise RunnerKilled(step)

    return observe


# ----------------------------------------------------------------------------- enqueue


async def test_enqueue_is_idempotent_by_key(chain_database: Database) -> None:
    market_id = new_market_id()
    first = await add_row(
        chain_database,
        Intent.APPROVE_MARKET,
        market_id,
        {"likes": 3, "dislikes": 1},
        payload={"votes": ["a", "b"]},
    )
    again = await add_row(
        chain_database, Intent.APPROVE_MARKET, market_id, {"likes": 5, "dislikes": 0}
    )
    assert again.id == first.id
    assert again.idempotency_key == f"approve_market:{market_id}"
    assert again.arguments == {"likes": 3, "dislikes": 1}
    assert again.payload == {"votes": ["a", "b"]}
    assert again.status == OutboxStatus.PENDING
    other = await add_row(
        chain_database,
        Intent.APPROVE_MARKET,
        market_id,
        {"likes": 5, "dislikes": 0},
        idempotency_key=f"approve_market:{market_id}:2",
    )
    assert other.id != first.id


async def test_enqueue_checks_arguments(chain_database: Database) -> None:
    with pytest.raises(InvalidArguments):
        await add_row(chain_database, Intent.APPROVE_MARKET, new_market_id(), {"likes": -1})
    with pytest.raises(InvalidArguments):
        await add_row(chain_database, "launch_rocket", new_market_id(), {})
    async with chain_database.session() as session:
        assert (await session.execute(select(ChainOutbox))).scalars().all() == []


# ----------------------------------------------------------------------------- happy paths


async def test_approve_lands_once_and_calls_the_handler(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    seen: list[tuple[str, str, int]] = []

    async def on_approved(session: AsyncSession, confirmed: ChainOutbox) -> None:
        # Runs inside the transaction that confirms the row: it already reads as confirmed.
        status = (
            await session.execute(
                text("SELECT status FROM chain_outbox WHERE id = :id"), {"id": confirmed.id}
            )
        ).scalar_one()
        seen.append((status, outcome_of(confirmed) or "", confirmed.attempts))

    runner = make_runner(chain_world, chain_database, handlers={Intent.APPROVE_MARKET: on_approved})
    report = await runner.run_once()
    assert report.count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.status == OutboxStatus.CONFIRMED
    assert done.confirmed_at is not None
    assert outcome_of(done) == Outcome.APPROVED
    assert chain_info(done)["already_done"] is False
    assert done.signature is not None and done.blockhash is not None
    assert chain_world.chain.get_record(done.signature).err is None
    assert (await chain_world.client.market(market_id)).state == MarketState.APPROVED
    assert chain_world.events("ProposalAggregated", market_id) == 1
    assert chain_world.events("ProposalApproved", market_id) == 1
    assert seen == [("confirmed", "approved", 1)]
    # Nothing is due any more, and the gauges count the row as confirmed.
    assert (await runner.run_once()).results == {}
    rows = {
        status: REGISTRY.get_sample_value("marketd_chain_outbox_rows", {"status": status})
        for status in ("pending", "sent", "confirmed", "failed")
    }
    assert rows == {"pending": 0, "sent": 0, "confirmed": 1, "failed": 0}


async def test_backend_not_admin_aggregates_only(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize(admin=chain_world.funded())
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    await make_runner(chain_world, chain_database).run_once()
    done = await load(chain_database, row.id)
    assert done.status == OutboxStatus.CONFIRMED
    assert outcome_of(done) == Outcome.AWAITING_ADMIN_APPROVAL
    market = await chain_world.client.market(market_id)
    assert market.state == MarketState.PROPOSED
    assert (market.data["proposal_likes"], market.data["proposal_dislikes"]) == (8, 2)
    assert chain_world.events("ProposalAggregated", market_id) == 1
    assert chain_world.events("ProposalApproved", market_id) == 0
    # The same tally again under a new key: recognised as already recorded, nothing sent.
    before = chain_world.transaction_count()
    again = await add_row(
        chain_database,
        Intent.APPROVE_MARKET,
        market_id,
        {"likes": 8, "dislikes": 2},
        idempotency_key="approve-again",
    )
    await make_runner(chain_world, chain_database).run_once()
    repeated = await load(chain_database, again.id)
    assert outcome_of(repeated) == Outcome.AWAITING_ADMIN_APPROVAL
    assert chain_info(repeated)["already_done"] is True
    assert chain_world.transaction_count() == before


async def test_already_approved_market_confirms_without_sending(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.market_in("Approved")
    before = chain_world.transaction_count()
    row = await approve_row(chain_world, chain_database, market_id)
    calls: list[uuid.UUID] = []

    async def handler(_session: AsyncSession, confirmed: ChainOutbox) -> None:
        calls.append(confirmed.id)

    report = await make_runner(
        chain_world, chain_database, handlers={Intent.APPROVE_MARKET: handler}
    ).run_once()
    assert report.count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.status == OutboxStatus.CONFIRMED
    assert done.signature is None and done.signed_transaction is None
    assert chain_info(done) == {"outcome": "approved", "already_done": True}
    assert chain_world.transaction_count() == before
    assert calls == [row.id]


@pytest.mark.parametrize(
    ("intent", "state", "arguments", "final_state", "event", "outcome"),
    [
        (Intent.ACTIVATE_MARKET, "Approved", {}, "Active", "MarketActivated", Outcome.ACTIVATED),
        (
            Intent.RESOLVE_DISPUTE,
            "Disputed",
            {"agrees": 7, "disagrees": 3},
            "Finalized",
            "MarketFinalized",
            Outcome.FINALIZED,
        ),
    ],
)
async def test_other_intents_land(
    chain_world: Any,
    chain_database: Database,
    intent: str,
    state: str,
    arguments: dict[str, int],
    final_state: str,
    event: str,
    outcome: str,
) -> None:
    chain_world.initialize()
    market_id = chain_world.market_in(state)
    row = await add_row(chain_database, intent, market_id, arguments)
    await make_runner(chain_world, chain_database).run_once()
    done = await load(chain_database, row.id)
    assert (done.status, outcome_of(done)) == (OutboxStatus.CONFIRMED, outcome)
    market = await chain_world.client.market(market_id)
    assert market.state.program_name == final_state
    assert chain_world.events(event, market_id) == 1
    if intent == Intent.RESOLVE_DISPUTE:
        # One finalize_market(Some, Some), no aggregation (it would move the market first).
        assert chain_world.events("DisputeAggregated", market_id) == 0
        # 70% agreed >= 60% threshold: the proposed outcome (YES) is flipped.
        assert market.data["final_outcome"] is False


async def test_finalize_waits_for_the_dispute_period_then_lands(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.market_in("Resolving")
    chain_world.tick()  # past the resolution second (else InvalidTimestamp, for good)
    row = await add_row(chain_database, Intent.FINALIZE_MARKET, market_id, {})
    runner = make_runner(chain_world, chain_database, backoff_base_seconds=5.0)
    report = await runner.run_once()
    assert report.count(RowResult.RETRY) == 1
    waiting = await load(chain_database, row.id)
    assert waiting.status == OutboxStatus.SENT  # signed and committed; preflight refused it
    assert waiting.last_error is not None and "DisputePeriodNotEnded" in waiting.last_error
    assert (await runner.run_once()).results == {}  # backing off
    await chain_world.control(
        "set_clock", unix_timestamp=chain_world.chain.unix_timestamp + 4 * 86400
    )
    chain_world.clock.advance(5.0)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert outcome_of(done) == Outcome.FINALIZED
    assert chain_world.events("MarketFinalized", market_id) == 1


# ----------------------------------------------------------------------------- failures


async def test_permanent_program_error_fails_the_row(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await add_row(
        chain_database, Intent.APPROVE_MARKET, market_id, {"likes": 1, "dislikes": 9}
    )
    failures: list[str] = []

    async def on_failed(_session: AsyncSession, failed: ChainOutbox) -> None:
        failures.append(chain_info(failed)["error"])

    runner = make_runner(
        chain_world, chain_database, failure_handlers={Intent.APPROVE_MARKET: on_failed}
    )
    assert (await runner.run_once()).count(RowResult.FAILED) == 1
    failed = await load(chain_database, row.id)
    assert failed.status == OutboxStatus.FAILED
    assert failed.last_error is not None and failed.last_error.startswith("InsufficientVotes:")
    assert failures == ["InsufficientVotes"]
    chain_world.clock.advance(3600)
    assert (await runner.run_once()).results == {}  # never retried
    assert chain_world.events("ProposalApproved", market_id) == 0


async def test_wrong_state_fails_with_the_idl_error_name(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await add_row(chain_database, Intent.ACTIVATE_MARKET, market_id, {})
    await make_runner(chain_world, chain_database).run_once()
    failed = await load(chain_database, row.id)
    assert failed.status == OutboxStatus.FAILED
    assert chain_info(failed)["error"] == "InvalidStateTransition"


async def test_refusal_because_someone_else_did_it_confirms(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)

    async def admin_acts_first(step: str, _row: ChainOutbox) -> None:
        if step == "signed":
            chain_world.approve(market_id)  # lands before our transaction is sent

    await make_runner(chain_world, chain_database, observer=admin_acts_first).run_once()
    done = await load(chain_database, row.id)
    assert done.status == OutboxStatus.CONFIRMED
    assert chain_info(done)["already_done"] is True
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_missing_market_and_missing_config_are_retried(
    chain_world: Any, chain_database: Database
) -> None:
    market_id = new_market_id()
    row = await add_row(chain_database, Intent.ACTIVATE_MARKET, market_id, {})
    runner = make_runner(chain_world, chain_database, backoff_base_seconds=1.0)
    assert (await runner.run_once()).count(RowResult.RETRY) == 1
    first = await load(chain_database, row.id)
    assert first.status == OutboxStatus.PENDING
    assert "has no account on chain" in (first.last_error or "")
    no_market = await add_row(
        chain_database, Intent.FINALIZE_MARKET, None, {}, idempotency_key="no-market"
    )
    chain_world.clock.advance(10)
    await runner.run_once()
    assert "names no market" in ((await load(chain_database, no_market.id)).last_error or "")


async def test_a_market_that_never_appears_ends_failed_with_its_reason_and_an_alert(
    chain_world: Any, chain_database: Database
) -> None:
    """A proposal whose creator never sent create_market: its approval retries while the
    market may still appear, then ends failed (visible reason, alert counter), not forever."""
    market_id = new_market_id()
    row = await add_row(
        chain_database, Intent.APPROVE_MARKET, market_id, {"likes": 8, "dislikes": 2}
    )
    failures: list[str] = []

    async def on_failed(_session: AsyncSession, failed: ChainOutbox) -> None:
        failures.append(chain_info(failed)["error"])

    runner = make_runner(
        chain_world,
        chain_database,
        backoff_base_seconds=1.0,
        give_up_after_seconds=3600.0,
        failure_handlers={Intent.APPROVE_MARKET: on_failed},
    )
    gave_up = OUTBOX_GAVE_UP.labels(Intent.APPROVE_MARKET.value, "MarketNotOnChain")
    before = gave_up._value.get()
    assert (await runner.run_once()).count(RowResult.RETRY) == 1
    assert (await load(chain_database, row.id)).status == OutboxStatus.PENDING
    chain_world.clock.advance(3600)
    assert (await runner.run_once()).count(RowResult.FAILED) == 1
    failed = await load(chain_database, row.id)
    assert failed.status == OutboxStatus.FAILED
    assert failed.last_error is not None and failed.last_error.startswith("MarketNotOnChain: ")
    assert "giving up" in failed.last_error
    assert failures == ["MarketNotOnChain"]
    assert gave_up._value.get() == before + 1


async def test_missing_global_config_is_retried(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)

    async def no_config() -> None:
        return None

    monkeypatch.setattr(chain_world.client, "global_config", no_config)
    await make_runner(chain_world, chain_database).run_once()
    assert "GlobalConfig is not initialized" in (
        (await load(chain_database, row.id)).last_error or ""
    )


async def test_handler_error_keeps_the_row_and_the_retry_confirms_once(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    calls: list[int] = []

    async def flaky(_session: AsyncSession, confirmed: ChainOutbox) -> None:
        calls.append(confirmed.attempts)
        if len(calls) == 1:
            raise RuntimeError("votes service hiccup")

    runner = make_runner(
        chain_world,
        chain_database,
        handlers={Intent.APPROVE_MARKET: flaky},
        backoff_base_seconds=1.0,
    )
    assert (await runner.run_once()).count(RowResult.RETRY) == 1
    kept = await load(chain_database, row.id)
    assert kept.status == OutboxStatus.SENT  # the confirmation was rolled back with the handler
    assert "votes service hiccup" in (kept.last_error or "")
    chain_world.clock.advance(2)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    assert (await load(chain_database, row.id)).status == OutboxStatus.CONFIRMED
    assert calls == [1, 2]
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_rpc_outage_is_retried(chain_world: Any, chain_database: Database) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    from solana.rpc.async_api import AsyncClient

    from marketd.chain.client import ChainClient

    dead = ChainClient(
        AsyncClient("http://127.0.0.1:9"), chain_world.coder, chain_world.client.program_id
    )
    async with dead:
        runner = OutboxRunner(
            chain_database,
            dead,
            chain_world.backend,
            clock=chain_world.clock,
            confirm_wait_seconds=0.0,
        )
        assert (await runner.run_once()).count(RowResult.RETRY) == 1
    assert "RpcUnavailable" in ((await load(chain_database, row.id)).last_error or "")


async def test_backend_without_authority_fails_as_unauthorized(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    stranger = BackendKey(chain_world.funded())
    runner = OutboxRunner(
        chain_database,
        chain_world.client,
        stranger,
        clock=chain_world.clock,
        confirm_wait_seconds=0.0,
    )
    await runner.run_once()
    failed = await load(chain_database, row.id)
    assert (failed.status, chain_info(failed)["error"]) == ("failed", "Unauthorized")


# ----------------------------------------------------------------------------- crash safety


@pytest.mark.parametrize("step", ["claimed", "signed", "sent", "landed"])
async def test_a_crash_at_any_step_never_doubles_the_action(
    chain_world: Any, chain_database: Database, step: str
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    with pytest.raises(RunnerKilled):
        await make_runner(chain_world, chain_database, observer=killer(step)).run_once()
    crashed = await load(chain_database, row.id)
    assert crashed.status in (OutboxStatus.PENDING, OutboxStatus.SENT)
    # A restarted runner sees nothing until the dead runner's lease runs out ...
    restarted = make_runner(chain_world, chain_database)
    assert (await restarted.run_once()).results == {}
    chain_world.clock.advance(LEASE + 1)
    # ... then finishes the job.
    assert (await restarted.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.status == OutboxStatus.CONFIRMED
    assert outcome_of(done) == Outcome.APPROVED
    if step != "claimed":
        assert done.signature == crashed.signature  # the signed bytes were reused
    assert chain_world.events("ProposalAggregated", market_id) == 1
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_cancelled_runner_task_resumes_without_a_second_transaction(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    reached = asyncio.Event()
    never = asyncio.Event()

    async def hang_after_send(step: str, _row: ChainOutbox) -> None:
        if step == "sent":
            reached.set()
            await never.wait()

    task = asyncio.create_task(
        make_runner(chain_world, chain_database, observer=hang_after_send).run_once()
    )
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    chain_world.clock.advance(LEASE + 1)
    await make_runner(chain_world, chain_database).run_once()
    assert (await load(chain_database, row.id)).status == OutboxStatus.CONFIRMED
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_lost_send_is_resent_with_the_same_bytes(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    await chain_world.control("drop_next_sends", count=1)
    runner = make_runner(chain_world, chain_database, recheck_seconds=2.0)
    assert (await runner.run_once()).count(RowResult.WAITING) == 1
    sent = await load(chain_database, row.id)
    assert sent.status == OutboxStatus.SENT
    assert sent.signature is not None
    assert chain_world.chain.get_record(sent.signature) is None  # the send was lost
    chain_world.clock.advance(2)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.signature == sent.signature
    assert done.signed_transaction == sent.signed_transaction
    assert chain_world.chain.get_record(done.signature).err is None
    assert chain_world.events("ProposalApproved", market_id) == 1


@pytest.mark.parametrize("expire", ["expire_blockhash", "advance_slots"])
async def test_expired_transaction_is_signed_again_and_lands_once(
    chain_world: Any, chain_database: Database, expire: str
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    await chain_world.control("drop_next_sends", count=1)
    runner = make_runner(chain_world, chain_database, recheck_seconds=2.0)
    await runner.run_once()
    lost = await load(chain_database, row.id)
    if expire == "advance_slots":
        await chain_world.control("advance_slots", slots=200)
        assert await chain_world.client.block_height() > lost.last_valid_block_height
    else:
        await chain_world.control("expire_blockhash")
    chain_world.clock.advance(2)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.signature != lost.signature
    assert done.blockhash != lost.blockhash
    assert chain_world.chain.get_record(lost.signature) is None
    assert chain_world.events("ProposalAggregated", market_id) == 1
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_expired_preflight_during_first_send_resigns_next_run(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)

    async def expire_after_signing(step: str, _row: ChainOutbox) -> None:
        if step == "signed":
            await chain_world.control("expire_blockhash")

    first = make_runner(chain_world, chain_database, observer=expire_after_signing)
    assert (await first.run_once()).count(RowResult.RETRY) == 1
    stale = await load(chain_database, row.id)
    assert "BlockhashExpired" in (stale.last_error or "")
    # Due again at once: the next run sees the expiry and signs a fresh transaction.
    assert (await make_runner(chain_world, chain_database).run_once()).count(
        RowResult.CONFIRMED
    ) == 1
    done = await load(chain_database, row.id)
    assert done.signature != stale.signature
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_landed_but_not_yet_confirmed_is_rechecked(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    from marketd.chain.client import SignatureState

    real_status = chain_world.client.signature_status
    processed_once: list[str] = []

    async def processed_first(signature: str) -> SignatureState | None:
        state = await real_status(signature)
        if state is not None and len(processed_once) < 2:
            processed_once.append(signature)
            return SignatureState(signature, state.slot, "processed", None)
        return state

    monkeypatch.setattr(chain_world.client, "signature_status", processed_first)
    runner = make_runner(chain_world, chain_database, recheck_seconds=1.0)
    # Seen as only "processed" by the confirmation wait, then by the follow-up: wait twice.
    assert (await runner.run_once()).count(RowResult.WAITING) == 1
    chain_world.clock.advance(1)
    assert (await runner.run_once()).count(RowResult.WAITING) == 1
    chain_world.clock.advance(1)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    assert chain_world.events("ProposalApproved", market_id) == 1
    assert (await load(chain_database, row.id)).status == OutboxStatus.CONFIRMED


async def test_two_runners_never_process_the_same_row(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_ids = [chain_world.create_market() for _ in range(3)]
    for market_id in market_ids:
        await approve_row(chain_world, chain_database, market_id)
    one, two = make_runner(chain_world, chain_database), make_runner(chain_world, chain_database)
    reports = await asyncio.gather(one.run_once(), two.run_once())
    confirmed = sum(report.count(RowResult.CONFIRMED) for report in reports)
    skipped = sum(report.count(RowResult.SKIPPED) for report in reports)
    assert confirmed == 3
    assert confirmed + skipped == sum(sum(r.results.values()) for r in reports)
    for market_id in market_ids:
        assert chain_world.events("ProposalApproved", market_id) == 1


async def test_run_loop_processes_on_notify_and_stops(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    confirmed = asyncio.Event()

    async def handler(_session: AsyncSession, _row: ChainOutbox) -> None:
        confirmed.set()

    runner = make_runner(chain_world, chain_database, handlers={Intent.APPROVE_MARKET: handler})
    async with running(runner):
        await approve_row(chain_world, chain_database, market_id)
        runner.notify()
        await asyncio.wait_for(confirmed.wait(), 10)
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_run_loop_survives_a_failing_pass(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = make_runner(chain_world, chain_database)
    assert await passes_through_failures(runner, monkeypatch) == 2


def test_confirm_wait_must_be_shorter_than_the_lease(
    chain_world: Any, chain_database: Database
) -> None:
    with pytest.raises(ValueError, match="shorter than the claim lease"):
        make_runner(chain_world, chain_database, confirm_wait_seconds=60, lease_seconds=30)


async def test_a_runner_that_lost_its_lease_writes_nothing(
    chain_world: Any, chain_database: Database
) -> None:
    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    other_reports: list[Any] = []

    async def stalls_past_its_lease(step: str, _row: ChainOutbox) -> None:
        if step == "claimed":
            chain_world.clock.advance(LEASE + 1)
            other_reports.append(await make_runner(chain_world, chain_database).run_once())

    slow = make_runner(chain_world, chain_database, observer=stalls_past_its_lease)
    assert (await slow.run_once()).count(RowResult.SKIPPED) == 1
    assert other_reports[0].count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert (done.status, done.attempts) == (OutboxStatus.CONFIRMED, 2)
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_request_the_node_refuses_fails_the_row(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketd.chain.errors import RpcRejected

    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)

    async def refuse(_raw: bytes, *, skip_preflight: bool = False) -> str:
        raise RpcRejected("invalid transaction: too large")

    monkeypatch.setattr(chain_world.client, "send", refuse)
    assert (await make_runner(chain_world, chain_database).run_once()).count(RowResult.FAILED) == 1
    failed = await load(chain_database, row.id)
    assert failed.last_error == "RpcRejected: invalid transaction: too large"


async def test_landing_seen_only_after_the_expiry_check_is_confirmed(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solders.transaction import VersionedTransaction

    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await approve_row(chain_world, chain_database, market_id)
    await chain_world.control("drop_next_sends", count=1)
    runner = make_runner(chain_world, chain_database)
    await runner.run_once()
    lost = await load(chain_database, row.id)
    # The lost bytes land after all (another node had them), then the blockhash expires,
    # and our first status read is stale.
    chain_world.chain.send_transaction(VersionedTransaction.from_bytes(lost.signed_transaction))
    await chain_world.control("expire_blockhash")
    real = chain_world.client.signature_statuses
    calls: list[int] = []

    async def first_stale(signatures: list[str]) -> list[Any]:
        calls.append(1)
        return [None] if len(calls) == 1 else list(await real(signatures))

    monkeypatch.setattr(chain_world.client, "signature_statuses", first_stale)
    chain_world.clock.advance(LEASE + 1)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.signature == lost.signature
    assert chain_world.events("ProposalApproved", market_id) == 1


async def test_retryable_failure_on_chain_signs_again_later(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain_world.initialize()
    market_id = chain_world.market_in("Resolving")
    chain_world.tick()  # past the resolution second (else InvalidTimestamp, for good)
    row = await add_row(chain_database, Intent.FINALIZE_MARKET, market_id, {})
    client = chain_world.client
    real_send = client.send

    async def send_without_preflight(raw: bytes, *, skip_preflight: bool = False) -> str:
        return await real_send(raw, skip_preflight=True)

    monkeypatch.setattr(client, "send", send_without_preflight)
    # The node answers the same blockhash until told otherwise, as a cluster does to requests
    # within one slot (the local chain issues a new one per slot).
    real_latest = client.latest_blockhash
    pinned: list[Any] = []

    async def same_blockhash_within_the_slot() -> Any:
        if not pinned:
            pinned.append(await real_latest())
        return pinned[0]

    monkeypatch.setattr(client, "latest_blockhash", same_blockhash_within_the_slot)
    runner = make_runner(chain_world, chain_database, backoff_base_seconds=1.0)
    assert (await runner.run_once()).count(RowResult.RETRY) == 1
    spent = await load(chain_database, row.id)
    assert spent.status == OutboxStatus.PENDING and spent.signed_transaction is None
    assert chain_world.chain.get_record(spent.signature).err is not None  # landed, failed
    assert "DisputePeriodNotEnded" in (spent.last_error or "")
    await chain_world.control(
        "set_clock", unix_timestamp=chain_world.chain.unix_timestamp + 4 * 86400
    )
    chain_world.clock.advance(5)
    # Still the same blockhash: signing again would reproduce the spent transaction.
    assert (await runner.run_once()).count(RowResult.RETRY) == 1
    assert "StaleBlockhash" in ((await load(chain_database, row.id)).last_error or "")
    await chain_world.control("expire_blockhash")
    pinned.clear()
    chain_world.clock.advance(60)
    assert (await runner.run_once()).count(RowResult.CONFIRMED) == 1
    done = await load(chain_database, row.id)
    assert done.signature != spent.signature
    assert chain_world.events("MarketFinalized", market_id) == 1


async def test_permanent_failure_when_the_recheck_cannot_read_the_market(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketd.chain.errors import RpcUnavailable

    chain_world.initialize()
    market_id = chain_world.create_market()
    row = await add_row(chain_database, Intent.ACTIVATE_MARKET, market_id, {})
    real_market = chain_world.client.market
    reads: list[str] = []

    async def flaky_market(wanted: str) -> Any:
        reads.append(wanted)
        if len(reads) > 1:
            raise RpcUnavailable("connection reset")
        return await real_market(wanted)

    monkeypatch.setattr(chain_world.client, "market", flaky_market)
    await make_runner(chain_world, chain_database).run_once()
    failed = await load(chain_database, row.id)
    assert (failed.status, chain_info(failed)["error"]) == ("failed", "InvalidStateTransition")
    assert len(reads) == 2


async def test_embedded_sqlite_database_works_too(chain_world: Any, tmp_path: Any) -> None:
    from marketd.config import Settings
    from marketd.core.database import create_engine
    from marketd.core.migrate import upgrade

    engine = create_engine(Settings(data_dir=tmp_path))
    await upgrade(engine)
    database = Database(engine)
    try:
        chain_world.initialize()
        market_id = chain_world.create_market()
        row = await approve_row(chain_world, database, market_id)
        assert (await approve_row(chain_world, database, market_id)).id == row.id
        assert (await make_runner(chain_world, database).run_once()).count(RowResult.CONFIRMED) == 1
        done = await load(database, row.id)
        assert (done.status, outcome_of(done)) == (OutboxStatus.CONFIRMED, Outcome.APPROVED)
        assert chain_world.events("ProposalApproved", market_id) == 1
    finally:
        await database.dispose()


async def test_runner_waits_only_until_the_next_row_comes_due(
    chain_world: Any, chain_database: Database
) -> None:
    runner = make_runner(chain_world, chain_database)
    assert await runner._until_next_due(60.0) == 60.0  # nothing active: the full interval
    chain_world.initialize()
    row = await add_row(chain_database, Intent.ACTIVATE_MARKET, chain_world.create_market(), {})
    assert await runner._until_next_due(60.0) == 0.0  # due now: no wait at all
    async with chain_database.session() as session:
        stored = await session.get(ChainOutbox, row.id)
        assert stored is not None
        stored.next_attempt_at = chain_world.clock() + timedelta(seconds=7)
        await session.commit()
    assert await runner._until_next_due(60.0) == pytest.approx(7.0, abs=0.5)
    assert await runner._until_next_due(3.0) == 3.0
