"""The backend-signed chain actions: what each one sends and when it is already done.

Every action is planned from the market's and the GlobalConfig's on-chain accounts, so the
outbox can ask "is the market already where this action would take it?" before it signs
anything (a crash after landing, an admin who approved by hand, a second instance: no second
transaction), and so "approve" picks its shape from who the backend key is:

==================  ===============================================  =========================
intent              instructions (one transaction)                   done when the market is
==================  ===============================================  =========================
approve_market      aggregate_proposal_votes + approve_proposal      Approved or later
                    (backend key is GlobalConfig.admin)
approve_market      aggregate_proposal_votes only (backend is not    Approved or later, or
                    the admin: the market awaits the admin)          Proposed with these counts
resolve_dispute     finalize_market(Some(agree), Some(disagree))     Finalized (superseded
                    on the Disputed market: the program flips the    when another signer's
                    proposed outcome at >= dispute_success_threshold aggregation left it
                                                                     Resolving)
finalize_market     finalize_market(None, None)                      Finalized
activate_market     activate_market                                  Active or later
==================  ===============================================  =========================

Planning is pure (no I/O): it only encodes instructions with the client's IDL coder.

Why `resolve_dispute` is ONE finalize_market and no aggregate_dispute_votes (PROGRAM.md §3.11,
§3.12): on the real program `aggregate_dispute_votes` is itself a state change (upheld ->
Resolving with the original outcome kept, rejected -> Finalized with final_outcome None, i.e.
the refund path), so sending it before finalize either makes the pair fail (finalize on a
market aggregation finalized) or finalizes without the flip (finalize on Resolving ignores the
counts). finalize_market(Some(agree), Some(disagree)) on the Disputed market records the counts
and applies the threshold itself: final = flip of the proposal when agree/total >= the
GlobalConfig's dispute_success_threshold, else the proposal. One instruction, one on-chain
action either way. Zero counts make it fail with NoVotesRecorded, so such a tally is refused
here (and never enqueued by the aggregator: the dispute waits for votes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from marketd.chain.client import ChainClient, GlobalConfigAccount, MarketAccount
from marketd.shared.market_state import MarketState

U32_MAX = 2**32 - 1

_APPROVED_OR_LATER = frozenset(
    {
        MarketState.APPROVED,
        MarketState.ACTIVE,
        MarketState.RESOLVING,
        MarketState.DISPUTED,
        MarketState.FINALIZED,
    }
)
_ACTIVE_OR_LATER = frozenset(
    {MarketState.ACTIVE, MarketState.RESOLVING, MarketState.DISPUTED, MarketState.FINALIZED}
)


class Intent(StrEnum):
    APPROVE_MARKET = "approve_market"
    RESOLVE_DISPUTE = "resolve_dispute"
    FINALIZE_MARKET = "finalize_market"
    ACTIVATE_MARKET = "activate_market"


class Outcome(StrEnum):
    """What a confirmed action achieved (kept in the outbox row's payload)."""

    APPROVED = "approved"
    AWAITING_ADMIN_APPROVAL = "awaiting_admin_approval"
    FINALIZED = "finalized"
    ACTIVATED = "activated"
    SUPERSEDED = "superseded"  # another signer moved the market; the indexer follows it


class InvalidArguments(ValueError):
    """The arguments of an intent are missing or out of range."""


@dataclass(frozen=True)
class ActionContext:
    """The on-chain facts an action is planned from."""

    market: MarketAccount
    config: GlobalConfigAccount
    backend: Pubkey

    @property
    def backend_is_admin(self) -> bool:
        return self.backend == self.config.admin


@dataclass(frozen=True)
class ActionPlan:
    instructions: list[Instruction]
    outcome: Outcome


class ChainAction(Protocol):
    intent: Intent

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        """Raise InvalidArguments unless `arguments` suit this action."""

    def already_done(self, context: ActionContext, arguments: Mapping[str, Any]) -> Outcome | None:
        """The outcome when the market already is where the action would take it."""

    def plan(
        self, client: ChainClient, context: ActionContext, arguments: Mapping[str, Any]
    ) -> ActionPlan:
        """The instructions to sign (backend key = fee payer and only signer)."""


def _count(arguments: Mapping[str, Any], name: str) -> int:
    value = arguments.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32_MAX:
        raise InvalidArguments(f"{name} must be an integer in [0, {U32_MAX}], got {value!r}")
    return value


def _backend_accounts(context: ActionContext) -> dict[str, Pubkey]:
    return {
        "market": context.market.address,
        "global_config": context.config.address,
        "backend_authority": context.backend,
    }


class ApproveMarket:
    """Record the final proposal tally and, when the backend is the admin, approve."""

    intent = Intent.APPROVE_MARKET

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        _count(arguments, "likes")
        _count(arguments, "dislikes")

    def already_done(self, context: ActionContext, arguments: Mapping[str, Any]) -> Outcome | None:
        market = context.market
        if market.state in _APPROVED_OR_LATER:
            return Outcome.APPROVED
        likes, dislikes = _count(arguments, "likes"), _count(arguments, "dislikes")
        recorded = (
            market.data.get("proposal_likes") == likes
            and market.data.get("proposal_dislikes") == dislikes
            and market.data.get("proposal_total_votes") == likes + dislikes
        )
        if market.state is MarketState.PROPOSED and recorded and not context.backend_is_admin:
            return Outcome.AWAITING_ADMIN_APPROVAL
        return None

    def plan(
        self, client: ChainClient, context: ActionContext, arguments: Mapping[str, Any]
    ) -> ActionPlan:
        instructions = [
            client.instruction(
                "aggregate_proposal_votes",
                {
                    "final_likes": _count(arguments, "likes"),
                    "final_dislikes": _count(arguments, "dislikes"),
                },
                _backend_accounts(context),
            )
        ]
        if not context.backend_is_admin:
            return ActionPlan(instructions, Outcome.AWAITING_ADMIN_APPROVAL)
        instructions.append(
            client.instruction(
                "approve_proposal",
                {},
                {
                    "admin": context.backend,
                    "market": context.market.address,
                    "global_config": context.config.address,
                },
            )
        )
        return ActionPlan(instructions, Outcome.APPROVED)


class ResolveDispute:
    """Finalize a Disputed market with its dispute tally (the program applies the threshold)."""

    intent = Intent.RESOLVE_DISPUTE

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        agrees, disagrees = _count(arguments, "agrees"), _count(arguments, "disagrees")
        if agrees + disagrees == 0:
            raise InvalidArguments("a dispute tally needs at least one vote (NoVotesRecorded)")
        if agrees + disagrees > U32_MAX:
            raise InvalidArguments(f"agrees + disagrees must not exceed {U32_MAX}")

    def already_done(self, context: ActionContext, arguments: Mapping[str, Any]) -> Outcome | None:
        state = context.market.state
        if state is MarketState.FINALIZED:
            return Outcome.FINALIZED
        if state is MarketState.RESOLVING and context.market.data.get("was_disputed"):
            # Another signer's aggregate_dispute_votes upheld the dispute: the program keeps
            # the original outcome and finalize waits for the period (transitions job).
            return Outcome.SUPERSEDED
        return None

    def plan(
        self, client: ChainClient, context: ActionContext, arguments: Mapping[str, Any]
    ) -> ActionPlan:
        self.check_arguments(arguments)
        return ActionPlan(
            [
                client.instruction(
                    "finalize_market",
                    {
                        "dispute_agree": _count(arguments, "agrees"),
                        "dispute_disagree": _count(arguments, "disagrees"),
                    },
                    _backend_accounts(context),
                )
            ],
            Outcome.FINALIZED,
        )


class FinalizeMarket:
    """Finalize an undisputed market once its dispute period is over."""

    intent = Intent.FINALIZE_MARKET

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        if arguments:
            raise InvalidArguments("finalize_market takes no arguments")

    def already_done(self, context: ActionContext, arguments: Mapping[str, Any]) -> Outcome | None:
        return Outcome.FINALIZED if context.market.state is MarketState.FINALIZED else None

    def plan(
        self, client: ChainClient, context: ActionContext, arguments: Mapping[str, Any]
    ) -> ActionPlan:
        instruction = client.instruction(
            "finalize_market",
            {"dispute_agree": None, "dispute_disagree": None},
            _backend_accounts(context),
        )
        return ActionPlan([instruction], Outcome.FINALIZED)


class ActivateMarket:
    """Open an approved market for trading (the backend signs as the authority)."""

    intent = Intent.ACTIVATE_MARKET

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        if arguments:
            raise InvalidArguments("activate_market takes no arguments")

    def already_done(self, context: ActionContext, arguments: Mapping[str, Any]) -> Outcome | None:
        return Outcome.ACTIVATED if context.market.state in _ACTIVE_OR_LATER else None

    def plan(
        self, client: ChainClient, context: ActionContext, arguments: Mapping[str, Any]
    ) -> ActionPlan:
        instruction = client.instruction(
            "activate_market",
            {},
            {
                "authority": context.backend,
                "market": context.market.address,
                "global_config": context.config.address,
            },
        )
        return ActionPlan([instruction], Outcome.ACTIVATED)


ACTIONS: Mapping[str, ChainAction] = {
    action.intent.value: action
    for action in (ApproveMarket(), ResolveDispute(), FinalizeMarket(), ActivateMarket())
}


def action_for(intent: str) -> ChainAction:
    try:
        return ACTIONS[intent]
    except KeyError:
        raise InvalidArguments(f"unknown chain intent {intent!r}") from None


def idempotency_key(intent: str, market_id: str) -> str:
    """The default key: one action of each intent per market."""
    return f"{intent}:{market_id}"
