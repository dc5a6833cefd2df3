"""One handler per program event: how each event changes the platform's rows.

Handlers are pure: they mutate the rows a `Workspace` holds (plain records of
`marketd.indexer.rows`, loaded beforehand by `marketd.indexer.store`) and queue domain events
(`marketd.core.events`, published after the commit), and
never touch the database themselves. The store runs them only for events whose `chain_events`
row it just inserted, so replaying any range of history applies nothing twice.

Event data arrives normalised (`normalise`): market ids as text (`market_id_from_bytes`: the
hex of the 32 bytes, or an older market's UUID), public keys as base58
strings, byte arrays as text; that same form is stored in `chain_events.data`, so a market can be
rebuilt from its stored events (fork rollback) by running the very same handlers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from solders.pubkey import Pubkey

from marketd.chain.addresses import market_address, market_id_from_bytes
from marketd.core.events import DomainEvent, TradeIndexed, VoteCast
from marketd.indexer import lmsr
from marketd.indexer.fees import FeeSchedule
from marketd.indexer.rows import BallotRow, MarketRow, PositionRow, TradeRow
from marketd.markets import lifecycle
from marketd.markets.lifecycle import Writer
from marketd.shared.market_state import MarketState

log = structlog.get_logger(__name__)

PRICE_SCALE = Decimal(1_000_000_000)
PRICE_QUANTUM = Decimal("0.000000001")
UNKNOWN_QUESTION = "(created on chain; question not registered)"
SEED_DIVISOR = 1000  # create_market seeds shares_yes = shares_no = floor(b / 1000)


@dataclass(slots=True, eq=False)
class IndexedEvent:
    """One program event in normalised form, with its transaction context (read-only by
    convention: not frozen, because a frozen dataclass's __init__ costs several microseconds
    per event in a backfill)."""

    signature: str
    index: int
    slot: int
    block_time: datetime | None
    name: str
    data: Mapping[str, Any]

    @property
    def market_id(self) -> str | None:
        value = self.data.get("market_id")
        return value if isinstance(value, str) else None

    @property
    def market_key(self) -> str | None:
        """The market's account address (WinningsClaimed names the market by address)."""
        value = self.data.get("market")
        return value if isinstance(value, str) else None

    at: datetime = field(init=False, repr=False, compare=False)
    """When it happened: the event's own timestamp, else the block time (set on creation:
    handlers read it several times per event)."""

    def __post_init__(self) -> None:
        self.at = self._when()

    def _when(self) -> datetime:
        for key in ("timestamp", "cancelled_at"):
            value = self.data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return datetime.fromtimestamp(value, UTC)
        return self.block_time or datetime.now(UTC)


# A backfill sees the same few markets over and over; the id conversion is the costly part.
_market_id_of = functools.lru_cache(maxsize=65536)(market_id_from_bytes)


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\x00").decode("utf-8", errors="replace")


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready event data: market_id -> the market's id (None only when not 32 bytes, which
    the program's layout rules out), keys -> base58, other byte arrays -> text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "market_id" and isinstance(value, bytes | bytearray):
            try:
                out[key] = _market_id_of(bytes(value))
            except ValueError:
                out[key] = None
        elif isinstance(value, Pubkey):
            out[key] = str(value)
        elif isinstance(value, bytes | bytearray):
            out[key] = _text(bytes(value))
        else:
            out[key] = value
    return out


def price_of(raw: int) -> tuple[Decimal, Decimal]:
    """YES and NO prices from the program's 1e9 fixed-point YES price."""
    yes = (Decimal(raw) / PRICE_SCALE).quantize(PRICE_QUANTUM)
    return yes, (Decimal(1) - yes).quantize(PRICE_QUANTUM)


VoteKey = tuple[str, str]  # (market_id, wallet)


@dataclass
class Workspace:
    """The rows a batch of events may touch, loaded up front, and what the batch produced."""

    program_id: Pubkey
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    markets: dict[str, MarketRow] = field(default_factory=dict)
    # Each loaded market's column values as loaded: the store writes only what changed.
    originals: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    positions: dict[VoteKey, PositionRow] = field(default_factory=dict)
    proposal_votes: dict[VoteKey, BallotRow] = field(default_factory=dict)
    dispute_votes: dict[VoteKey, BallotRow] = field(default_factory=dict)
    # What to write back: markets created by the batch, positions and votes it changed (loaded
    # or new; written as upserts), the trades it produced.
    new_markets: set[str] = field(default_factory=set)
    changed_positions: dict[VoteKey, PositionRow] = field(default_factory=dict)
    stored_positions: set[VoteKey] = field(default_factory=set)  # loaded, i.e. rows that exist
    changed_votes: dict[tuple[str, str, str], BallotRow] = field(default_factory=dict)
    trades: list[TradeRow] = field(default_factory=list)
    users: dict[str, datetime] = field(default_factory=dict)
    vote_log: list[dict[str, Any]] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)  # published after the commit
    touched: set[str] = field(default_factory=set)
    trade_signatures: set[str] = field(default_factory=set)
    paused: bool | None = None
    # Markets whose account holds what no event carried (a disputed finalize's counts): the
    # indexer re-reads them after the commit.
    reread: set[str] = field(default_factory=set)

    # -- lookups
    def market(self, event: IndexedEvent) -> MarketRow | None:
        market_id = event.market_id
        if market_id is None and event.market_key is not None:
            market_id = next(
                (m.id for m in self.markets.values() if m.on_chain_address == event.market_key),
                None,
            )
        market = self.markets.get(market_id) if market_id is not None else None
        if market is None:
            log.warning("event of an unknown market skipped", name=event.name, market=market_id)
            return None
        self.touched.add(market.id)
        market.updated_at = event.at
        return market

    def position(self, market: MarketRow, wallet: str, at: datetime) -> PositionRow:
        key = (market.id, wallet)
        position = self.positions.get(key)
        if position is None:
            position = self.positions[key] = PositionRow.new(market, wallet, at)
        self.changed_positions[key] = position
        position.updated_at = at
        return position

    def seen(self, wallet: str, at: datetime) -> None:
        first = self.users.get(wallet)
        self.users[wallet] = at if first is None else min(first, at)

    # -- changes
    def set_state(self, market: MarketRow, state: MarketState, event: IndexedEvent) -> None:
        """The program event's move, through the one owner of transitions (which also stamps
        the state's timestamp with the event's time)."""
        change = lifecycle.transition(market, state, event.at, Writer.INDEXER)
        if change is not None:
            self.events.append(change)

    def enter(self, market: MarketRow, state: MarketState, event: IndexedEvent) -> None:
        """A program event that moves a market to `state` (`activity.rules.STATE_EVENTS`): the
        feed lists it as a state change. When the market is in `state` already (the backend
        applied the move it confirmed on chain before this event was read), the move is
        announced again (`lifecycle.confirmed`), so the feed's item reaches the activity
        channel."""
        already = market.state == state.value
        self.set_state(market, state, event)
        if already:
            self.events.append(lifecycle.confirmed(market.id, state, event.at))


EventHandler = Callable[[Workspace, IndexedEvent], None]


def on_market_created(ws: Workspace, event: IndexedEvent) -> None:
    market_id, data = event.market_id, event.data
    if market_id is None:
        log.warning("MarketCreated with a market id that is not 32 bytes skipped")
        return
    at = event.at
    market = ws.markets.get(market_id)
    if market is None:
        # The chain is the truth: a market created without the API still gets its row.
        market = MarketRow.new(
            id=market_id,
            on_chain_address=str(market_address(ws.program_id, market_id)),
            creator_wallet=data["creator"],
            state=MarketState.from_code(data["state"]).value,
            at=at,
        )
        ws.markets[market_id] = market
        ws.new_markets.add(market_id)
    market.creator_wallet = data["creator"]
    market.b_parameter = data["b_parameter"]
    if market_id in ws.new_markets or market.shares_yes == market.shares_no == 0:
        # The program seeds both quantities with floor(b / 1000) unowned shares (§3.2).
        market.shares_yes = market.shares_no = int(data["b_parameter"]) // SEED_DIVISOR
    market.updated_at = at
    ws.touched.add(market_id)
    ws.set_state(market, MarketState.from_code(data["state"]), event)
    ws.seen(data["creator"], at)


def _vote(ws: Workspace, event: IndexedEvent, kind: str) -> None:
    market = ws.market(event)
    if market is None:
        return
    wallet, vote, at = event.data["user"], bool(event.data["vote"]), event.at
    votes = ws.proposal_votes if kind == "proposal" else ws.dispute_votes
    row = votes.get((market.id, wallet))
    if row is None:
        row = votes[(market.id, wallet)] = BallotRow(None, market.id, wallet, vote, at, None)
    # The on-chain vote replaces any off-chain vote of the same wallet.
    row.vote, row.voted_at, row.tx_signature = vote, at, event.signature
    ws.changed_votes[(kind, market.id, wallet)] = row
    ws.vote_log.append(
        {
            "kind": kind,
            "market_id": market.id,
            "user_wallet": wallet,
            "vote": vote,
            "source": "chain",
            "tx_signature": event.signature,
            "recorded_at": at,
        }
    )
    ws.seen(wallet, at)
    # The tally after the batch is counted by the store once the batch is written
    # (`marketd.indexer.store.with_tallies`).
    ws.events.append(
        VoteCast(market_id=market.id, kind=kind, vote=vote, wallet=wallet, likes=0, dislikes=0)
    )


def on_proposal_vote(ws: Workspace, event: IndexedEvent) -> None:
    _vote(ws, event, "proposal")


def on_dispute_vote(ws: Workspace, event: IndexedEvent) -> None:
    _vote(ws, event, "dispute")


def on_proposal_aggregated(ws: Workspace, event: IndexedEvent) -> None:
    if (market := ws.market(event)) is not None:
        market.proposal_likes = event.data["likes"]
        market.proposal_dislikes = event.data["dislikes"]


def on_dispute_aggregated(ws: Workspace, event: IndexedEvent) -> None:
    """aggregate_dispute_votes is a state change on the real program (PROGRAM.md §3.12) though
    it emits no state event: upheld -> Resolving (the original outcome kept, finalize waits for
    the period), not upheld (no votes included) -> Finalized with no final outcome (the
    INVALID/refund path; no MarketFinalized follows). marketd never sends it (it finalizes with
    the counts), but anyone holding the backend key may."""
    if (market := ws.market(event)) is not None:
        market.dispute_agree = event.data["agrees"]
        market.dispute_disagree = event.data["disagrees"]
        if market.state != MarketState.DISPUTED.value:
            return  # a replay over a later state: never move a market back
        if event.data["dispute_succeeded"]:
            ws.set_state(market, MarketState.RESOLVING, event)
        else:
            market.final_outcome = None
            ws.set_state(market, MarketState.FINALIZED, event)


def on_proposal_approved(ws: Workspace, event: IndexedEvent) -> None:
    if (market := ws.market(event)) is not None:
        ws.enter(market, MarketState.APPROVED, event)


def on_market_activated(ws: Workspace, event: IndexedEvent) -> None:
    if (market := ws.market(event)) is not None:
        # Nothing trades before activation, so the pool holds exactly the initial liquidity.
        market.initial_liquidity = event.data["initial_liquidity"]
        market.current_liquidity = event.data["initial_liquidity"]
        ws.enter(market, MarketState.ACTIVE, event)


def _sale_gross(ws: Workspace, market: MarketRow, yes: bool, shares: int, net: int) -> int:
    """A sale's gross: C(before) - C(after) on the row's quantities (equal to the account's),
    when that gives the event's net; else the smallest gross with that net."""
    try:
        gross = lmsr.sale_gross(
            market.shares_yes, market.shares_no, market.b_parameter, yes, shares
        )
    except lmsr.LmsrError:
        return ws.fees.gross_from_net(net)
    return gross if ws.fees.net_of(gross) == net else ws.fees.gross_from_net(net)


def _trade(ws: Workspace, event: IndexedEvent, trade_type: str) -> None:
    """A buy or sale, moving the rows exactly as the program moves its accounts (§3.7, §3.8):
    a buy's `cost` is the buyer's total incl. fees: volume and total_invested grow by it,
    liquidity by the resolver + LP fees of the pre-fee cost; a sale's `proceeds` is the net:
    volume grows by the gross, liquidity shrinks by net + protocol fee."""
    market = ws.market(event)
    if market is None:
        return
    data, at = event.data, event.at
    wallet, yes, shares = data["user"], bool(data["outcome"]), int(data["shares"])
    buy = trade_type == "buy"
    amount = int(data["cost"] if buy else data["proceeds"])
    sign = 1 if buy else -1
    if buy:
        fees = ws.fees.split(ws.fees.cost_before_fees(amount))
        market.current_liquidity += fees.resolver + fees.lp
        market.total_volume += amount
    else:
        gross = _sale_gross(ws, market, yes, shares, amount)
        market.current_liquidity -= amount + ws.fees.split(gross).protocol
        market.total_volume += gross
    if yes:
        market.shares_yes += sign * shares
    else:
        market.shares_no += sign * shares
    market.current_price_yes, market.current_price_no = price_of(data["new_price_yes"])

    position = ws.position(market, wallet, at)
    position.first_trade_at = position.first_trade_at or at
    position.last_trade_at = at
    if yes:
        position.shares_yes += sign * shares
    else:
        position.shares_no += sign * shares
    position.trades_count += 1
    if buy:
        position.total_invested += amount
    else:
        position.realized_pnl += amount

    ws.seen(wallet, at)
    signature = event.signature
    if signature in ws.trade_signatures:  # a second trade in one transaction
        signature = f"{signature[:80]}#{event.index}"
    if shares <= 0 or amount <= 0:
        # The platform's trades table holds positive shares and cost only (positive_shares,
        # positive_cost); the market and the position took the event above.
        log.warning("trade without shares or amount not recorded", signature=signature)
    else:
        ws.trade_signatures.add(signature)
        ws.trades.append(
            TradeRow(
                market.id,
                wallet,
                trade_type,
                yes,
                shares,
                amount,
                market.current_price_yes,
                signature,
                event.block_time or at,
                market.on_chain_address,
                wallet,
                datetime.now(UTC),
            )
        )
    ws.events.append(
        TradeIndexed(
            market_id=market.id,
            trade_type=trade_type.upper(),
            outcome="YES" if yes else "NO",
            shares=shares,
            price=market.current_price_yes,
            wallet=wallet,
            signature=signature,  # the trade row's key: the activity item is read by it
        )
    )


def on_shares_bought(ws: Workspace, event: IndexedEvent) -> None:
    _trade(ws, event, "buy")


def on_shares_sold(ws: Workspace, event: IndexedEvent) -> None:
    _trade(ws, event, "sell")


def on_market_resolved(ws: Workspace, event: IndexedEvent) -> None:
    if (market := ws.market(event)) is not None:
        market.resolver_wallet = event.data["resolver"]
        market.proposed_outcome = bool(event.data["outcome"])
        market.ipfs_evidence_hash = event.data["evidence_hash"] or None
        ws.enter(market, MarketState.RESOLVING, event)
        ws.seen(event.data["resolver"], event.at)


def on_dispute_initiated(ws: Workspace, event: IndexedEvent) -> None:
    if (market := ws.market(event)) is not None:
        ws.enter(market, MarketState.DISPUTED, event)
        ws.seen(event.data["initiator"], event.at)


def on_market_finalized(ws: Workspace, event: IndexedEvent) -> None:
    """A disputed finalize_market(Some, Some) writes the dispute counts to the account, but
    MarketFinalized does not carry them: the market is re-read after the commit."""
    if (market := ws.market(event)) is not None:
        market.final_outcome = event.data["final_outcome"]
        ws.enter(market, MarketState.FINALIZED, event)
        if event.data.get("was_disputed"):
            ws.reread.add(market.id)


def on_market_cancelled(ws: Workspace, event: IndexedEvent) -> None:
    """The state says it: cancel_market leaves the account's `is_cancelled` false (PROGRAM.md
    §3.17), and the row's chain columns are the account's, so reconcile finds nothing to fix."""
    if (market := ws.market(event)) is not None:
        ws.enter(market, MarketState.CANCELLED, event)


def on_winnings_claimed(ws: Workspace, event: IndexedEvent) -> None:
    """The event names the market by its account address (§3.13); a claim moves neither the
    market's liquidity nor its quantities, only the claimer's position."""
    if (market := ws.market(event)) is not None:
        wallet, at, amount = event.data["user"], event.at, int(event.data["amount"])
        position = ws.position(market, wallet, at)
        position.realized_pnl += amount
        position.has_claimed = True
        position.claimed_amount = (position.claimed_amount or 0) + amount
        ws.seen(wallet, at)


def on_liquidity_withdrawn(ws: Workspace, event: IndexedEvent) -> None:
    """withdraw_liquidity takes the market's lamports above rent and sets the bookkeeping
    current_liquidity to 0, whatever the amount (§3.14)."""
    if (market := ws.market(event)) is not None:
        market.current_liquidity = 0


def on_global_config_initialized(ws: Workspace, event: IndexedEvent) -> None:
    ws.fees = FeeSchedule(event.data["protocol_fee_bps"], ws.fees.resolver_bps, ws.fees.lp_bps)


def on_config_updated(ws: Workspace, event: IndexedEvent) -> None:
    data = event.data
    ws.fees = FeeSchedule(
        data["protocol_fee_bps"], data["resolver_reward_bps"], data["liquidity_provider_fee_bps"]
    )


def on_pause_changed(ws: Workspace, event: IndexedEvent) -> None:
    ws.paused = bool(event.data["is_paused"])
    log.warning("protocol pause changed", paused=ws.paused, by=event.data["paused_by"])


HANDLERS: Mapping[str, EventHandler] = {
    "MarketCreated": on_market_created,
    "ProposalVoteSubmitted": on_proposal_vote,
    "ProposalAggregated": on_proposal_aggregated,
    "ProposalApproved": on_proposal_approved,
    "MarketActivated": on_market_activated,
    "SharesBought": on_shares_bought,
    "SharesSold": on_shares_sold,
    "MarketResolved": on_market_resolved,
    "DisputeInitiated": on_dispute_initiated,
    "DisputeVoteSubmitted": on_dispute_vote,
    "DisputeAggregated": on_dispute_aggregated,
    "MarketFinalized": on_market_finalized,
    "MarketCancelled": on_market_cancelled,
    "WinningsClaimed": on_winnings_claimed,
    "GlobalConfigInitialized": on_global_config_initialized,
    "ConfigUpdated": on_config_updated,
    "ProtocolPauseStatusChanged": on_pause_changed,
    "LiquidityWithdrawn": on_liquidity_withdrawn,
}


def apply(ws: Workspace, event: IndexedEvent) -> None:
    handler = HANDLERS.get(event.name)
    if handler is None:
        log.warning("no handler for program event", name=event.name)
        return
    handler(ws, event)
