"""What the local chain holds before anyone uses it: GlobalConfig and the demo's markets.

The demo's markets are created on the chain with the program's real instructions and driven to
their states by the wallets that would do it on a cluster: demo wallets vote and trade (funded
by airdrops), the backend key aggregates, approves, activates and finalizes (it is the local
chain's admin and backend authority) as marketd does: a dispute is settled by one
finalize_market(Some(agree), Some(disagree)). In finalized markets the winners claim and some
creators withdraw what is left. On the real program (the twin as deployed) sell_shares always
fails, so the plan sells only where the program can (`sells`); a buy the program refuses (e.g.
the trailing side far behind, UnderflowError) lands as a failed transaction and is skipped.
The database is then built from the chain's history by the indexer, as the worker builds it
(`marketd.demo`): nothing here knows the database's rows.

The plan is deterministic (a fixed random seed and wallet seeds): market ids, voters, trade sizes
are the same on every fresh chain. Times are laid out on the chain's clock: the clock is moved
back to the plan's start, every step runs at its planned moment (markets interleave, so steps are
executed in global time order), and the clock returns to wall time at the end. Trades therefore
carry realistic block times spread over the last weeks.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import base58
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from marketd.chain.addresses import (
    global_config_address,
    market_address,
    market_id_bytes,
    market_id_from_bytes,
    position_address,
)
from marketd.chain.events import program_error_from_logs
from marketd.chain.idl import IdlCoder
from marketd.chain.localnet.svm import LocalChain, TxRecord
from marketd.shared.market_state import MarketState

SOL = 1_000_000_000
VOTE_SEED = b"vote"
BACKEND_FUNDING = 1_000 * SOL
WALLET_FUNDING = 500 * SOL
B_PARAMETER = 100 * SOL
INITIAL_LIQUIDITY = 10 * SOL
MINUTE, HOUR, DAY = 60, 3600, 86400
DISPUTE_PERIOD = 3 * DAY  # the program's GlobalConfig default; the plan stays inside it

QUESTIONS = [
    ("crypto", "Will SOL close above $300 on 31 December?"),
    ("crypto", "Will Bitcoin set a new all-time high this quarter?"),
    ("crypto", "Will Ethereum's next upgrade ship before June?"),
    ("crypto", "Will a Solana ETF be approved this year?"),
    ("sports", "Will the home team win the championship final?"),
    ("sports", "Will the marathon record fall at the next major race?"),
    ("sports", "Will the transfer window bring a record fee?"),
    ("politics", "Will the budget bill pass the senate this month?"),
    ("politics", "Will turnout exceed 60% in the next general election?"),
    ("science", "Will the new phone launch sell out in its first week?"),
    ("science", "Will an open model top the main leaderboard by summer?"),
    ("science", "Will the big chip merger close before year end?"),
    ("science", "Will the lunar lander touch down successfully?"),
    ("science", "Will this year be the warmest on record?"),
    ("entertainment", "Will the festival headliner be announced before March?"),
    ("entertainment", "Will the sequel gross $1B worldwide?"),
    ("other", "Will the central bank cut rates at its next meeting?"),
    ("other", "Will inflation print below 3% next month?"),
]
STATE_PLAN = [
    (MarketState.PROPOSED, 8),
    (MarketState.APPROVED, 4),
    (MarketState.ACTIVE, 10),
    (MarketState.RESOLVING, 4),
    (MarketState.DISPUTED, 4),
    (MarketState.FINALIZED, 4),
    (MarketState.CANCELLED, 2),
]
PLAN_SEED = 7


class LocalTransactionError(Exception):
    """A transaction sent to the local chain did not succeed."""

    def __init__(
        self, what: str, err: Any, logs: Sequence[str], signature: str | None = None
    ) -> None:
        super().__init__(f"{what} failed: {err}")
        self.err = err
        self.logs = list(logs)
        self.signature = signature
        """Set when the failed transaction landed (it is then in the chain's history)."""


def vote_record_address(program_id: Pubkey, market: Pubkey, user: Pubkey, dispute: bool) -> Pubkey:
    seeds = [VOTE_SEED, bytes(market), bytes(user), bytes([1 if dispute else 0])]
    return Pubkey.find_program_address(seeds, program_id)[0]


def fake_cid(text: str) -> bytes:
    """A CIDv0-shaped 46-byte id (base58 of a sha2-256 multihash) for a demo document."""
    return base58.b58encode(b"\x12\x20" + hashlib.sha256(text.encode()).digest())


class LocalProgram:
    """Signs and sends the program's instructions to a `LocalChain`, synchronously.

    Transactions skip preflight (a landed failure is reported from its record instead), which
    halves the work per transaction; a transaction identical to one already landed (same
    signer, same instruction, same blockhash) would be dropped as a duplicate, so the blockhash
    is rotated first.
    """

    def __init__(self, chain: LocalChain, program_id: Pubkey, coder: IdlCoder) -> None:
        self.chain = chain
        self.program_id = program_id
        self.coder = coder
        self.config = global_config_address(program_id)

    def instruction(
        self, name: str, args: Mapping[str, Any], accounts: Mapping[str, Pubkey]
    ) -> Instruction:
        metas = []
        for meta in self.coder.instruction_accounts(name):
            key = accounts.get(meta.name) or meta.address
            if key is None:
                raise KeyError(f"{name}: account {meta.name!r} not given")
            metas.append(AccountMeta(key, is_signer=meta.signer, is_writable=meta.writable))
        return Instruction(self.program_id, self.coder.encode_instruction(name, args), metas)

    def send(self, instructions: Sequence[Instruction], signers: Sequence[Keypair]) -> TxRecord:
        tx = self._sign(instructions, signers)
        if self.chain.get_record(str(tx.signatures[0])) is not None:
            self.chain.expire_blockhash()
            tx = self._sign(instructions, signers)
        signature = self.chain.send_transaction(tx, skip_preflight=True)
        record = self.chain.get_record(str(signature))
        what = "+".join(self.coder.decode_instruction(bytes(ix.data))[0] for ix in instructions)
        if record is None:
            raise LocalTransactionError(what, "transaction did not land", [])
        if record.err is not None:
            error = program_error_from_logs(record.logs, self.program_id, self.coder)
            raise LocalTransactionError(what, error or record.err, record.logs, record.signature)
        return record

    def _sign(
        self, instructions: Sequence[Instruction], signers: Sequence[Keypair]
    ) -> VersionedTransaction:
        blockhash, last_valid = self.chain.latest_blockhash
        if self.chain.block_height >= last_valid:
            # The transaction would land at height + 1, past the blockhash's life.
            self.chain.expire_blockhash()
            blockhash, last_valid = self.chain.latest_blockhash
        message = Message.new_with_blockhash(list(instructions), signers[0].pubkey(), blockhash)
        return VersionedTransaction(message, list(signers))

    def call(
        self,
        name: str,
        args: Mapping[str, Any],
        accounts: Mapping[str, Pubkey],
        signers: Sequence[Keypair],
    ) -> TxRecord:
        return self.send([self.instruction(name, args, accounts)], signers)

    def create_market(self, creator: Keypair, market_id: str, question: str = "q") -> TxRecord:
        """create_market signed by `creator`, with the demo's b and initial liquidity (the
        question's IPFS hash stands for `question`)."""
        return self.call(
            "create_market",
            {
                "market_id": market_id_bytes(market_id),
                "b_parameter": B_PARAMETER,
                "initial_liquidity": INITIAL_LIQUIDITY,
                "ipfs_question_hash": fake_cid(question),
            },
            {
                "creator": creator.pubkey(),
                "market": self.market(market_id),
                "global_config": self.config,
            },
            [creator],
        )

    def read(self, account_name: str, address: Pubkey) -> dict[str, Any] | None:
        account = self.chain.get_account(address)
        if account is None:
            return None
        return self.coder.decode_account(account_name, account.data, allow_trailing=True)

    def market(self, market_id: str) -> Pubkey:
        return market_address(self.program_id, market_id)

    def position(self, market: Pubkey, user: Pubkey) -> Pubkey:
        return position_address(self.program_id, market, user)


def ensure_global_config(program: LocalProgram, backend: Keypair) -> dict[str, Any]:
    """Initialise GlobalConfig with `backend` as admin and backend authority, once.

    A config that names another key is refused: the data directory belongs to another backend.
    """
    if program.chain.get_balance(backend.pubkey()) < BACKEND_FUNDING // 10:
        program.chain.airdrop(backend.pubkey(), BACKEND_FUNDING)
    config = program.read("GlobalConfig", program.config)
    if config is None:
        program.call(
            "initialize_global_config",
            {"backend_authority": backend.pubkey()},
            {
                "admin": backend.pubkey(),
                "global_config": program.config,
                "protocol_fee_wallet": backend.pubkey(),
            },
            [backend],
        )
        config = program.read("GlobalConfig", program.config)
        assert config is not None
    if backend.pubkey() not in (config["admin"], config["backend_authority"]):
        raise RuntimeError(
            f"the local chain's GlobalConfig belongs to admin {config['admin']}, not to the "
            f"backend key {backend.pubkey()}; use that key or a fresh data directory"
        )
    return config


# --------------------------------------------------------------------- the plan
def demo_wallets(count: int = 24) -> list[Keypair]:
    return [Keypair.from_seed(bytes([index + 1]) * 32) for index in range(count)]


@dataclass(frozen=True)
class PlannedMarket:
    """A demo market: its identity and off-chain texts; the chain decides everything else."""

    id: str
    state: MarketState
    category: str
    question: str
    created_ago: int  # seconds before the plan's "now"


@dataclass(order=True)
class _Step:
    at: int
    order: tuple[int, int]
    run: Callable[[], None] = field(compare=False)


def demo_plan() -> list[PlannedMarket]:
    """The demo markets; the same on every call (ids come from a fixed random seed)."""
    rng = random.Random(PLAN_SEED)  # noqa: S311 - demo data, not security
    planned: list[PlannedMarket] = []
    for state, how_many in STATE_PLAN:
        for _ in range(how_many):
            category, question = QUESTIONS[len(planned) % len(QUESTIONS)]
            market_id = market_id_from_bytes(rng.randbytes(32))
            created_ago = rng.randint(12, 40) * DAY + rng.randint(0, 1440) * MINUTE
            planned.append(PlannedMarket(market_id, state, category, question, created_ago))
    return planned


class DemoSeeder:
    """Runs the plan on a chain whose GlobalConfig names `backend` as admin and authority."""

    def __init__(
        self, program: LocalProgram, backend: Keypair, now: int, *, sells: bool = True
    ) -> None:
        self.program = program
        self.backend = backend
        self.now = now
        self.sells = sells
        self.wallets = demo_wallets()
        self._rng = random.Random(PLAN_SEED + 1)  # noqa: S311 - demo data, not security
        self._steps: list[_Step] = []

    # ---- scheduling
    def _at(self, at: int, market_index: int, run: Callable[[], None]) -> None:
        self._steps.append(_Step(at, (market_index, len(self._steps)), run))

    def run(self, plan: Sequence[PlannedMarket]) -> None:
        chain = self.program.chain
        start = self.now - max(m.created_ago for m in plan) - HOUR
        chain.set_unix_timestamp(start)
        for wallet in self.wallets:
            if chain.get_balance(wallet.pubkey()) < WALLET_FUNDING // 10:
                chain.airdrop(wallet.pubkey(), WALLET_FUNDING)
        for index, planned in enumerate(plan):
            self._schedule(index, planned)
        for step in sorted(self._steps):
            if step.at > chain.unix_timestamp:
                chain.set_unix_timestamp(step.at)
            step.run()
        chain.set_unix_timestamp(self.now)

    def _schedule(self, index: int, planned: PlannedMarket) -> None:
        rng = self._rng
        market = self.program.market(planned.id)
        created = self.now - planned.created_ago
        reached = list(MarketState).index(planned.state)
        creator = rng.choice(self.wallets)
        self._at(created, index, lambda: self._create(planned.id, creator))

        approving = planned.state is not MarketState.PROPOSED and not (
            planned.state is MarketState.CANCELLED and index % 2 == 0
        )
        voters = rng.sample(self.wallets, 12 if approving else rng.randint(3, 9))
        likes_wanted = rng.randint(9, 12) if approving else rng.randint(0, len(voters))
        votes = [position < likes_wanted for position in range(len(voters))]
        rng.shuffle(votes)
        for offset, (voter, vote) in enumerate(zip(voters, votes, strict=True)):
            self._at(created + 5 * MINUTE * (offset + 1), index, self._vote(market, voter, vote))
        likes = sum(votes)
        if approving:
            self._at(created + 6 * HOUR, index, lambda: self._approve(market, likes, len(votes)))
        if planned.state is MarketState.CANCELLED:
            at = created + (8 * HOUR if approving else 2 * HOUR)
            self._at(at, index, lambda: self._admin("cancel_market", market, "admin"))
            return
        if reached < list(MarketState).index(MarketState.ACTIVE):
            return
        activated = created + 12 * HOUR
        self._at(activated, index, lambda: self._admin("activate_market", market, "authority"))

        resolved = self._resolution_time(planned.state)
        trading_end = resolved if resolved is not None else self.now - 10 * MINUTE
        moments = sorted(
            rng.randint(activated + HOUR, trading_end - MINUTE) for _ in range(rng.randint(5, 25))
        )
        for moment in moments:
            self._at(moment, index, self._trade(market, rng.choice(self.wallets)))
        if resolved is None:
            return
        outcome = rng.random() < 0.5
        resolver = self.wallets[0]
        self._at(resolved, index, lambda: self._resolve(market, resolver, outcome, planned.id))
        disputed = planned.state is MarketState.DISPUTED or (
            planned.state is MarketState.FINALIZED and index % 2 == 0
        )
        if disputed:
            disputed_at = resolved + rng.randint(1, 20) * HOUR
            initiator = rng.choice(self.wallets[1:])
            self._at(disputed_at, index, lambda: self._dispute(market, initiator))
            dispute_voters = rng.sample(self.wallets, rng.randint(4, 8))
            dispute_votes = [rng.random() < 0.5 for _ in dispute_voters]
            for offset, (voter, vote) in enumerate(zip(dispute_voters, dispute_votes, strict=True)):
                at = disputed_at + 10 * MINUTE * (offset + 1)
                self._at(at, index, self._vote(market, voter, vote, dispute=True))
            if planned.state is MarketState.FINALIZED:
                agree = sum(dispute_votes)
                disagree = len(dispute_votes) - agree
                at = resolved + DISPUTE_PERIOD + HOUR
                self._at(at, index, lambda: self._finalize(market, (agree, disagree)))
        elif planned.state is MarketState.FINALIZED:
            self._at(resolved + DISPUTE_PERIOD + HOUR, index, lambda: self._finalize(market, None))
        if planned.state is MarketState.FINALIZED:
            self._at(resolved + DISPUTE_PERIOD + 2 * HOUR, index, lambda: self._claims(market))
            if index % 2 == 1:
                at = resolved + DISPUTE_PERIOD + 3 * HOUR
                self._at(at, index, lambda: self._withdraw(market, creator))

    def _resolution_time(self, state: MarketState) -> int | None:
        hours = {
            MarketState.RESOLVING: (1, 47),
            MarketState.DISPUTED: (25, 60),
            MarketState.FINALIZED: (4 * 24, 8 * 24),
        }.get(state)
        if hours is None:
            return None
        return self.now - self._rng.randint(*hours) * HOUR

    # ---- instructions
    def _create(self, market_id: str, creator: Keypair) -> None:
        self.program.create_market(creator, market_id, f"question:{market_id}")

    def _vote(
        self, market: Pubkey, voter: Keypair, vote: bool, *, dispute: bool = False
    ) -> Callable[[], None]:
        kind = "dispute" if dispute else "proposal"
        record = vote_record_address(self.program.program_id, market, voter.pubkey(), dispute)

        def send() -> None:
            self.program.call(
                f"submit_{kind}_vote",
                {"vote": vote},
                {"market": market, "vote_record": record, "user": voter.pubkey()},
                [voter],
            )

        return send

    def _backend_accounts(self, market: Pubkey) -> dict[str, Pubkey]:
        return {
            "market": market,
            "global_config": self.program.config,
            "backend_authority": self.backend.pubkey(),
        }

    def _approve(self, market: Pubkey, likes: int, total: int) -> None:
        """Aggregate and approve in one transaction: the backend key is also the admin."""
        self.program.send(
            [
                self.program.instruction(
                    "aggregate_proposal_votes",
                    {"final_likes": likes, "final_dislikes": total - likes},
                    self._backend_accounts(market),
                ),
                self.program.instruction(
                    "approve_proposal",
                    {},
                    {
                        "admin": self.backend.pubkey(),
                        "market": market,
                        "global_config": self.program.config,
                    },
                ),
            ],
            [self.backend],
        )

    def _admin(self, name: str, market: Pubkey, role: str) -> None:
        accounts = {role: self.backend.pubkey(), "market": market}
        self.program.call(
            name, {}, {**accounts, "global_config": self.program.config}, [self.backend]
        )

    def _trade(self, market: Pubkey, trader: Keypair) -> Callable[[], None]:
        rng = self._rng
        outcome = rng.random() < 0.55
        sell_fraction = rng.choice([0, 0, 0, 2, 3])  # sell 1/2 or 1/3 of a holding, sometimes
        budget = rng.randint(1, 20) * SOL // 2
        position = self.program.position(market, trader.pubkey())

        def send() -> None:
            held = self.program.read("UserPosition", position)
            shares = 0 if held is None else held["shares_yes" if outcome else "shares_no"]
            accounts = {
                "global_config": self.program.config,
                "market": market,
                "position": position,
                "user": trader.pubkey(),
                "protocol_fee_wallet": self.backend.pubkey(),
            }
            if self.sells and sell_fraction and shares >= sell_fraction:
                args: dict[str, Any] = {
                    "outcome": outcome,
                    "shares_to_sell": shares // sell_fraction,
                    "min_proceeds": 0,
                }
                self.program.call("sell_shares", args, accounts, [trader])
            else:
                args = {"outcome": outcome, "target_cost": budget}
                # Refused by the program's math (a real outcome): nothing changed.
                with contextlib.suppress(LocalTransactionError):
                    self.program.call("buy_shares", args, accounts, [trader])

        return send

    def _resolve(self, market: Pubkey, resolver: Keypair, outcome: bool, market_id: str) -> None:
        self.program.call(
            "resolve_market",
            {"proposed_outcome": outcome, "ipfs_evidence_hash": fake_cid(f"evidence:{market_id}")},
            {"global_config": self.program.config, "market": market, "resolver": resolver.pubkey()},
            [resolver],
        )

    def _dispute(self, market: Pubkey, initiator: Keypair) -> None:
        self.program.call(
            "initiate_dispute",
            {},
            {
                "global_config": self.program.config,
                "market": market,
                "initiator": initiator.pubkey(),
            },
            [initiator],
        )

    def _finalize(self, market: Pubkey, dispute: tuple[int, int] | None) -> None:
        """As marketd settles: finalize_market(None, None) after the period, or on a disputed
        market finalize_market(Some(agree), Some(disagree)), which flips the outcome at the
        threshold (no aggregate_dispute_votes: it would move the market itself)."""
        agree, disagree = dispute if dispute is not None else (None, None)
        self.program.call(
            "finalize_market",
            {"dispute_agree": agree, "dispute_disagree": disagree},
            {
                "global_config": self.program.config,
                "market": market,
                "backend_authority": self.backend.pubkey(),
            },
            [self.backend],
        )

    def _claims(self, market: Pubkey) -> None:
        """Every demo wallet holding shares of the final outcome claims its pro-rata payout."""
        account = self.program.read("MarketAccount", market)
        assert account is not None
        final = account["final_outcome"]
        for wallet in self.wallets:
            position = self.program.position(market, wallet.pubkey())
            held = self.program.read("UserPosition", position)
            if held is None or final is None or not held["shares_yes" if final else "shares_no"]:
                continue
            with contextlib.suppress(LocalTransactionError):  # e.g. NoWinnings (rounds to 0)
                self.program.call(
                    "claim_winnings",
                    {},
                    {
                        "global_config": self.program.config,
                        "market": market,
                        "position": position,
                        "user": wallet.pubkey(),
                        "resolver": account["resolver"],
                    },
                    [wallet],
                )

    def _withdraw(self, market: Pubkey, creator: Keypair) -> None:
        """The creator takes the market's lamports above rent (after the claims)."""
        with contextlib.suppress(LocalTransactionError):  # nothing above rent left
            self.program.call(
                "withdraw_liquidity", {}, {"market": market, "creator": creator.pubkey()}, [creator]
            )


class PartiallySeededError(Exception):
    """Some demo markets exist on the chain and others do not: not a chain this seed made."""


def seed_chain(
    program: LocalProgram,
    backend: Keypair,
    now: int,
    plan: Sequence[PlannedMarket] | None = None,
    *,
    sells: bool = True,
) -> bool:
    """Create and drive the demo markets on the chain unless they are there; True if it did."""
    plan = list(plan) if plan is not None else demo_plan()
    present = [program.chain.get_account(program.market(m.id)) is not None for m in plan]
    if all(present):
        return False
    if any(present):
        raise PartiallySeededError(
            f"{sum(present)} of {len(plan)} demo markets exist on the local chain"
        )
    DemoSeeder(program, backend, now, sells=sells).run(plan)
    return True
