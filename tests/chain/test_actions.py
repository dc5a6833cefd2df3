"""Planning of the backend-signed actions (pure: decoded accounts in, instructions out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey

from marketd.chain.actions import (
    ACTIONS,
    ActionContext,
    ActivateMarket,
    ApproveMarket,
    FinalizeMarket,
    Intent,
    InvalidArguments,
    Outcome,
    ResolveDispute,
    action_for,
    idempotency_key,
)
from marketd.chain.addresses import new_market_id
from marketd.chain.client import ChainClient, GlobalConfigAccount, MarketAccount
from marketd.chain.idl import IdlCoder
from marketd.shared.market_state import MarketState

PROGRAM_ID = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")
BACKEND = Pubkey.new_unique()
OTHER_ADMIN = Pubkey.new_unique()


@pytest_asyncio.fixture
async def client(chain_coder: IdlCoder) -> AsyncIterator[ChainClient]:
    # Planning never talks to the node; the URL is never dialled.
    async with ChainClient(AsyncClient("http://127.0.0.1:9"), chain_coder, PROGRAM_ID) as planner:
        yield planner


def context(state: MarketState, admin: Pubkey = BACKEND, **fields: Any) -> ActionContext:
    market_id = new_market_id()
    data = {"proposal_likes": 0, "proposal_dislikes": 0, "proposal_total_votes": 0, **fields}
    market = MarketAccount(Pubkey.new_unique(), market_id, state, Pubkey.new_unique(), data)
    config = GlobalConfigAccount(
        Pubkey.new_unique(), admin, BACKEND, Pubkey.new_unique(), 7000, 6000, {}
    )
    return ActionContext(market, config, BACKEND)


def decoded(client: ChainClient, plan_instructions: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [client.coder.decode_instruction(bytes(ix.data)) for ix in plan_instructions]


def test_registry_and_keys() -> None:
    assert set(ACTIONS) == {intent.value for intent in Intent}
    assert isinstance(action_for("approve_market"), ApproveMarket)
    with pytest.raises(InvalidArguments, match="unknown chain intent"):
        action_for("mint_money")
    assert idempotency_key(Intent.FINALIZE_MARKET, "m-1") == "finalize_market:m-1"


@pytest.mark.parametrize(
    ("action", "arguments"),
    [
        (ApproveMarket(), {"likes": 1}),
        (ApproveMarket(), {"likes": True, "dislikes": 0}),
        (ApproveMarket(), {"likes": 2**32, "dislikes": 0}),
        (ResolveDispute(), {"agrees": "3", "disagrees": 1}),
        (ResolveDispute(), {"agrees": 0, "disagrees": 0}),  # NoVotesRecorded on chain
        (ResolveDispute(), {"agrees": 2**32 - 1, "disagrees": 1}),  # u32 sum overflows
        (FinalizeMarket(), {"extra": 1}),
        (ActivateMarket(), {"extra": 1}),
    ],
)
def test_bad_arguments_are_refused(action: Any, arguments: dict[str, Any]) -> None:
    with pytest.raises(InvalidArguments):
        action.check_arguments(arguments)


def test_approve_as_admin_aggregates_and_approves_in_one_transaction(
    client: ChainClient,
) -> None:
    ctx = context(MarketState.PROPOSED)
    args = {"likes": 8, "dislikes": 2}
    ApproveMarket().check_arguments(args)
    assert ApproveMarket().already_done(ctx, args) is None
    plan = ApproveMarket().plan(client, ctx, args)
    assert plan.outcome is Outcome.APPROVED
    assert decoded(client, plan.instructions) == [
        ("aggregate_proposal_votes", {"final_likes": 8, "final_dislikes": 2}),
        ("approve_proposal", {}),
    ]
    approve = plan.instructions[1]
    assert approve.accounts[0].pubkey == BACKEND and approve.accounts[0].is_signer
    assert approve.accounts[1].pubkey == ctx.market.address


def test_approve_when_backend_is_not_admin_only_aggregates(client: ChainClient) -> None:
    ctx = context(MarketState.PROPOSED, admin=OTHER_ADMIN)
    args = {"likes": 8, "dislikes": 2}
    plan = ApproveMarket().plan(client, ctx, args)
    assert plan.outcome is Outcome.AWAITING_ADMIN_APPROVAL
    assert [name for name, _ in decoded(client, plan.instructions)] == ["aggregate_proposal_votes"]
    recorded = context(
        MarketState.PROPOSED,
        admin=OTHER_ADMIN,
        proposal_likes=8,
        proposal_dislikes=2,
        proposal_total_votes=10,
    )
    assert ApproveMarket().already_done(recorded, args) is Outcome.AWAITING_ADMIN_APPROVAL
    # Other counts recorded: not done. Same counts but backend is admin: approve still due.
    assert ApproveMarket().already_done(recorded, {"likes": 9, "dislikes": 2}) is None
    as_admin = context(
        MarketState.PROPOSED, proposal_likes=8, proposal_dislikes=2, proposal_total_votes=10
    )
    assert ApproveMarket().already_done(as_admin, args) is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (MarketState.PROPOSED, None),
        (MarketState.APPROVED, Outcome.APPROVED),
        (MarketState.ACTIVE, Outcome.APPROVED),
        (MarketState.FINALIZED, Outcome.APPROVED),
        (MarketState.CANCELLED, None),
    ],
)
def test_approve_done_states(state: MarketState, expected: Outcome | None) -> None:
    assert ApproveMarket().already_done(context(state), {"likes": 1, "dislikes": 0}) == expected


def test_resolve_dispute_is_one_finalize_with_the_counts(client: ChainClient) -> None:
    """finalize_market(Some, Some) on the Disputed market applies the threshold itself; no
    aggregate_dispute_votes (which would move the market first: PROGRAM.md §3.12)."""
    ctx = context(MarketState.DISPUTED)
    args = {"agrees": 7, "disagrees": 3}
    ResolveDispute().check_arguments(args)
    assert ResolveDispute().already_done(ctx, args) is None
    assert ResolveDispute().already_done(context(MarketState.FINALIZED), args) is Outcome.FINALIZED
    plan = ResolveDispute().plan(client, ctx, args)
    assert plan.outcome is Outcome.FINALIZED
    assert decoded(client, plan.instructions) == [
        ("finalize_market", {"dispute_agree": 7, "dispute_disagree": 3}),
    ]
    with pytest.raises(InvalidArguments, match="NoVotesRecorded"):
        ResolveDispute().plan(client, ctx, {"agrees": 0, "disagrees": 0})


def test_resolve_dispute_is_superseded_when_another_signer_upheld_it() -> None:
    """Another signer's aggregate_dispute_votes re-opened the market (Resolving, was_disputed):
    finalize there keeps the original outcome and waits for the period; nothing to send."""
    args = {"agrees": 7, "disagrees": 3}
    reopened = context(MarketState.RESOLVING, was_disputed=True)
    assert ResolveDispute().already_done(reopened, args) is Outcome.SUPERSEDED
    assert ResolveDispute().already_done(context(MarketState.RESOLVING), args) is None


def test_finalize_without_dispute(client: ChainClient) -> None:
    FinalizeMarket().check_arguments({})
    ctx = context(MarketState.RESOLVING)
    assert FinalizeMarket().already_done(ctx, {}) is None
    assert FinalizeMarket().already_done(context(MarketState.FINALIZED), {}) is Outcome.FINALIZED
    plan = FinalizeMarket().plan(client, ctx, {})
    assert decoded(client, plan.instructions) == [
        ("finalize_market", {"dispute_agree": None, "dispute_disagree": None})
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (MarketState.APPROVED, None),
        (MarketState.ACTIVE, Outcome.ACTIVATED),
        (MarketState.RESOLVING, Outcome.ACTIVATED),
        (MarketState.DISPUTED, Outcome.ACTIVATED),
        (MarketState.FINALIZED, Outcome.ACTIVATED),
    ],
)
def test_activate(client: ChainClient, state: MarketState, expected: Outcome | None) -> None:
    ActivateMarket().check_arguments({})
    ctx = context(state)
    assert ActivateMarket().already_done(ctx, {}) == expected
    plan = ActivateMarket().plan(client, ctx, {})
    assert plan.outcome is Outcome.ACTIVATED
    assert decoded(client, plan.instructions) == [("activate_market", {})]
    assert plan.instructions[0].accounts[0].pubkey == BACKEND
