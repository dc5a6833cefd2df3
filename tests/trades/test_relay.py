"""The trade relay: user-signed trades reach the local chain; bad ones are marked failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless

from marketd.chain.client import ChainClient
from marketd.chain.errors import BlockhashExpired, RpcUnavailable, TransactionFailed
from marketd.core.database import Database
from marketd.models import TradeSubmission
from marketd.models.base import utcnow
from marketd.trades.relay import RelayResult, TradeRelay
from marketd.trades.status import SubmissionStatus

from ..helpers.loops import passes_through_failures, running

SOL = 1_000_000_000
AddMarket = Callable[[str], Awaitable[None]]


async def submit(
    database: Database, market_id: str, user: Keypair, raw: bytes, age_seconds: float = 0
) -> str:
    signature = str(VersionedTransaction.from_bytes(raw).signatures[0])
    async with database.session() as session, session.begin():
        session.add(
            TradeSubmission(
                signature=signature,
                market_id=market_id,
                user_wallet=str(user.pubkey()),
                trade_type="buy",
                outcome=True,
                amount=SOL,
                raw_transaction=raw,
                status=SubmissionStatus.PENDING,
                created_at=utcnow() - timedelta(seconds=age_seconds),
            )
        )
    return signature


async def submission(database: Database, signature: str) -> TradeSubmission:
    async with database.session() as session:
        row = await session.get(TradeSubmission, signature)
        assert row is not None
        return row


async def trading_market(world: Any, add_market: AddMarket) -> str:
    world.initialize()
    market_id = world.market_in("Active")
    await add_market(market_id)
    return market_id


def buy(world: Any, user: Keypair, market_id: str, cost: int = SOL) -> bytes:
    raw: bytes = world.sign([world.buy_instruction(user, market_id, cost)], [user])
    return raw


async def pending_trade(
    world: Any, database: Database, add_market: AddMarket, cost: int = SOL
) -> tuple[str, str]:
    """A trading market and a funded user's signed buy of ``cost`` waiting for the relay:
    (market id, signature)."""
    market_id = await trading_market(world, add_market)
    user = world.funded()
    return market_id, await submit(database, market_id, user, buy(world, user, market_id, cost))


async def failure(database: Database, signature: str) -> str:
    """The error a submission the relay gave up on was left with."""
    row = await submission(database, signature)
    assert row.status == "failed"
    assert row.error is not None
    return row.error


async def test_signed_trade_lands_and_is_left_for_the_indexer(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    market_id, signature = await pending_trade(chain_world, chain_database, chain_add_market)
    relay = TradeRelay(chain_database, chain_world.client)
    assert (await relay.run_once()).count(RelayResult.SENT) == 1
    record = chain_world.chain.get_record(signature)
    assert record is not None and record.err is None
    assert chain_world.events("SharesBought", market_id) == 1
    # Next pass: landed, nothing to do; the indexer (not the relay) confirms it.
    assert (await relay.run_once()).count(RelayResult.LANDED) == 1
    assert (await submission(chain_database, signature)).status == "pending"
    assert chain_world.events("SharesBought", market_id) == 1


async def test_lost_send_is_sent_again(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    market_id, signature = await pending_trade(chain_world, chain_database, chain_add_market)
    await chain_world.control("drop_next_sends", count=1)
    relay = TradeRelay(chain_database, chain_world.client)
    assert (await relay.run_once()).count(RelayResult.SENT) == 1
    assert chain_world.chain.get_record(signature) is None
    assert (await relay.run_once()).count(RelayResult.SENT) == 1
    assert chain_world.chain.get_record(signature) is not None
    assert chain_world.events("SharesBought", market_id) == 1


async def test_expired_trade_is_marked_failed(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    _, signature = await pending_trade(chain_world, chain_database, chain_add_market)
    await chain_world.control("expire_blockhash")
    assert (await TradeRelay(chain_database, chain_world.client).run_once()).count(
        RelayResult.FAILED
    ) == 1
    assert await failure(chain_database, signature) == "BlockhashExpired: expired before landing"
    assert chain_world.chain.get_record(signature) is None


async def test_trade_the_program_refuses_is_marked_failed_with_its_error(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    _, signature = await pending_trade(chain_world, chain_database, chain_add_market, cost=0)
    await TradeRelay(chain_database, chain_world.client).run_once()
    assert (await failure(chain_database, signature)).startswith("TradeTooSmall: ")


async def test_trade_from_an_unfunded_wallet_fails_at_once(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    """The user pays the fee: a wallet with no account can never send these bytes, so the
    submission ends at once with the reason instead of being retried while it is young."""
    market_id = await trading_market(chain_world, chain_add_market)
    unfunded = Keypair()
    signature = await submit(
        chain_database, market_id, unfunded, buy(chain_world, unfunded, market_id)
    )
    report = await TradeRelay(chain_database, chain_world.client).run_once()
    assert report.count(RelayResult.FAILED) == 1
    assert report.count(RelayResult.RETRY) == 0
    assert (await failure(chain_database, signature)).startswith("AccountNotFound: ")


async def test_without_preflight_a_failed_landing_is_reported_next_pass(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    _, signature = await pending_trade(chain_world, chain_database, chain_add_market, cost=0)
    relay = TradeRelay(chain_database, chain_world.client, skip_preflight=True)
    assert (await relay.run_once()).count(RelayResult.SENT) == 1
    record = chain_world.chain.get_record(signature)
    assert record is not None and record.err is not None
    assert (await relay.run_once()).count(RelayResult.FAILED) == 1
    assert (await failure(chain_database, signature)).startswith("TradeTooSmall: ")


async def test_tampered_transaction_is_rejected(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    market_id = await trading_market(chain_world, chain_add_market)
    user = chain_world.funded()
    raw = bytearray(buy(chain_world, user, market_id))
    raw[-1] ^= 1  # instruction data changed after signing
    signature = await submit(chain_database, market_id, user, bytes(raw))
    await TradeRelay(chain_database, chain_world.client).run_once()
    assert (await failure(chain_database, signature)).startswith("RpcRejected: ")


async def test_rpc_outage_leaves_trades_pending(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    _, signature = await pending_trade(chain_world, chain_database, chain_add_market)
    dead = ChainClient(
        AsyncClient("http://127.0.0.1:9"), chain_world.coder, chain_world.client.program_id
    )
    async with dead:
        report = await TradeRelay(chain_database, dead).run_once()
    assert report.count(RelayResult.RETRY) == 1
    assert (await submission(chain_database, signature)).status == "pending"


async def test_send_outage_and_retryable_failures_keep_the_trade_pending_expiry_not(
    chain_world: Any,
    chain_database: Database,
    chain_add_market: AddMarket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, signature = await pending_trade(chain_world, chain_database, chain_add_market)
    failures: list[Exception] = [
        RpcUnavailable("node restarting"),
        TransactionFailed(TransactionErrorFieldless.AccountInUse, landed=False),
        BlockhashExpired("blockhash not found"),
    ]

    async def failing_send(raw: bytes, *, skip_preflight: bool = False) -> str:
        raise failures.pop(0)

    monkeypatch.setattr(chain_world.client, "send", failing_send)
    relay = TradeRelay(chain_database, chain_world.client)
    assert (await relay.run_once()).count(RelayResult.RETRY) == 1
    assert (await relay.run_once()).count(RelayResult.RETRY) == 1
    assert (await submission(chain_database, signature)).status == "pending"
    # The node says the blockhash is gone while we send: the trade can never land.
    assert (await relay.run_once()).count(RelayResult.FAILED) == 1
    assert failures == []
    assert await failure(chain_database, signature) == "BlockhashExpired: expired before landing"


async def test_landing_seen_only_after_the_expiry_check_counts_as_landed(
    chain_world: Any,
    chain_database: Database,
    chain_add_market: AddMarket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    market_id = await trading_market(chain_world, chain_add_market)
    user = chain_world.funded()
    raw = buy(chain_world, user, market_id)
    signature = await submit(chain_database, market_id, user, raw)
    client = chain_world.client
    # The trade lands, then the blockhash expires; the first status answer is stale.
    chain_world.chain.send_transaction(VersionedTransaction.from_bytes(raw))
    await chain_world.control("expire_blockhash")

    real_statuses = client.signature_statuses
    calls: list[int] = []

    async def stale_statuses(signatures: list[str]) -> list[Any]:
        calls.append(len(signatures))
        if len(calls) == 1:
            return [None for _ in signatures]
        return list(await real_statuses(signatures))

    monkeypatch.setattr(client, "signature_statuses", stale_statuses)
    report = await TradeRelay(chain_database, client).run_once()
    assert report.count(RelayResult.LANDED) == 1
    assert calls == [1, 1]
    assert (await submission(chain_database, signature)).status == "pending"


async def test_old_and_settled_submissions_are_not_touched(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    market_id = await trading_market(chain_world, chain_add_market)
    user = chain_world.funded()
    old = await submit(
        chain_database, market_id, user, buy(chain_world, user, market_id), age_seconds=3600
    )
    report = await TradeRelay(chain_database, chain_world.client, max_age_seconds=900).run_once()
    assert report.results == {}
    assert chain_world.chain.get_record(old) is None


async def test_run_loop_relays_on_notify(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    market_id = await trading_market(chain_world, chain_add_market)
    user = chain_world.funded()
    relay = TradeRelay(chain_database, chain_world.client)
    landed = asyncio.Event()
    remove = chain_world.chain.add_listener(lambda _event: landed.set())
    async with running(relay):
        await submit(chain_database, market_id, user, buy(chain_world, user, market_id))
        relay.notify()
        await asyncio.wait_for(landed.wait(), 10)
        remove()
    assert chain_world.events("SharesBought", market_id) == 1


async def test_run_loop_survives_a_failing_pass(
    chain_world: Any, chain_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = TradeRelay(chain_database, chain_world.client)
    assert await passes_through_failures(relay, monkeypatch) == 2


async def test_a_trade_sent_while_the_program_is_paused_waits_and_lands_after_resume(
    chain_world: Any, chain_database: Database, chain_add_market: AddMarket
) -> None:
    """emergency_pause (the admin's real instruction on the twin): preflight answers
    ProtocolPaused, which the relay treats as retry-later (the submission stays pending, the
    same signed bytes); once resumed the very same transaction lands."""
    market_id = await trading_market(chain_world, chain_add_market)
    pause = {
        "admin": chain_world.admin.pubkey(),
        "global_config": chain_world.client.global_config_address(),
    }
    chain_world.send("emergency_pause", {}, pause, [chain_world.admin])
    user = chain_world.funded()
    signature = await submit(chain_database, market_id, user, buy(chain_world, user, market_id))
    relay = TradeRelay(chain_database, chain_world.client)
    assert (await relay.run_once()).count(RelayResult.RETRY) == 1
    waiting = await submission(chain_database, signature)
    assert waiting.status == "pending"  # and it says why it waits
    assert waiting.error is not None and waiting.error.startswith("ProtocolPaused: ")
    assert chain_world.chain.get_record(signature) is None  # nothing landed, nothing spent
    chain_world.send("emergency_pause", {}, pause, [chain_world.admin])  # resume
    assert (await relay.run_once()).count(RelayResult.SENT) == 1
    landed = chain_world.chain.get_record(signature)
    assert landed is not None and landed.err is None
    assert chain_world.events("SharesBought", market_id) == 1
