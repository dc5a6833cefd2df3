"""A real local chain for the tests: LiteSVM with the faithful twin of zmart_core served over
JSON-RPC (`ChainWorld`), and the clock the chain writers are given. tests/chain/conftest.py
builds it as the `chain_world` fixture."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from solders.compute_budget import set_compute_unit_limit
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from marketd.chain.addresses import market_id_bytes, new_market_id
from marketd.chain.client import ChainClient
from marketd.chain.events import parse_program_events
from marketd.chain.idl import IdlCoder
from marketd.chain.keys import BackendKey
from marketd.chain.localnet.rpc_server import RpcEndpoint
from marketd.chain.localnet.svm import LocalChain, TxRecord
from marketd.models.base import utcnow

PROGRAM_ID = Pubkey.from_string("6s8bbbCS7oNYNnTUHgrPDHG4jqaSrD6MSxQSPVR1rxw")
SOL = 1_000_000_000


class MovableClock:
    """Wall-clock UTC shifted by an offset the test moves (never waits)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class ChainWorld:
    """A served local chain with the twin program and the usual actors."""

    def __init__(
        self, chain: LocalChain, endpoint: RpcEndpoint, client: ChainClient, coder: IdlCoder
    ) -> None:
        self.chain = chain
        self.endpoint = endpoint
        self.client = client
        self.coder = coder
        self.backend = BackendKey(self.funded())
        self.admin = self.backend.signer
        self.fee_wallet = self.funded(SOL)
        self.clock = MovableClock()
        self._nonce = 0

    # -- keys and raw transactions
    def funded(self, lamports: int = 100 * SOL) -> Keypair:
        keypair = Keypair()
        self.chain.airdrop(keypair.pubkey(), lamports)
        return keypair

    def sign(self, instructions: Sequence[Instruction], signers: Sequence[Keypair]) -> bytes:
        """Wire bytes; a distinct compute limit keeps repeated instructions distinct."""
        self._nonce += 1
        blockhash, _ = self.chain.latest_blockhash
        message = Message.new_with_blockhash(
            [set_compute_unit_limit(400_000 + self._nonce), *instructions],
            signers[0].pubkey(),
            blockhash,
        )
        return bytes(VersionedTransaction(message, list(signers)))

    def send(
        self,
        name: str,
        args: dict[str, Any],
        accounts: dict[str, Pubkey],
        signers: Sequence[Keypair],
        ok: bool = True,
    ) -> TxRecord:
        raw = self.sign([self.client.instruction(name, args, accounts)], signers)
        signature = self.chain.send_transaction(
            VersionedTransaction.from_bytes(raw), skip_preflight=True
        )
        record = self.chain.get_record(str(signature))
        assert record is not None
        assert (record.err is None) == ok, (name, record.err, record.logs)
        return record

    # -- program state
    def initialize(self, admin: Keypair | None = None, backend: Pubkey | None = None) -> None:
        admin = admin or self.admin
        self.admin = admin
        self.send(
            "initialize_global_config",
            {"backend_authority": backend or self.backend.pubkey},
            {
                "admin": admin.pubkey(),
                "global_config": self.client.global_config_address(),
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
            [admin],
        )

    def create_market(self, creator: Keypair | None = None, market_id: str | None = None) -> str:
        """create_market signed by `creator` (a fresh funded key: not marketd's), with the
        id given or 32 random bytes, as the platform's front end draws them."""
        creator = creator or self.funded()
        market_id = market_id or new_market_id()
        self.send(
            "create_market",
            {
                "market_id": market_id_bytes(market_id),
                "b_parameter": 100 * SOL,
                "initial_liquidity": 10 * SOL,
                "ipfs_question_hash": b"Q" * 46,
            },
            {
                "creator": creator.pubkey(),
                "market": self.client.market_address(market_id),
                "global_config": self.client.global_config_address(),
            },
            [creator],
        )
        return market_id

    def vote(self, market_id: str, user: Keypair, choice: bool, kind: str = "proposal") -> None:
        """The user's own submit_proposal_vote / submit_dispute_vote."""
        market = self.client.market_address(market_id)
        seeds = [b"vote", bytes(market), bytes(user.pubkey()), bytes([kind != "proposal"])]
        self.send(
            f"submit_{kind}_vote",
            {"vote": choice},
            {
                "market": market,
                "vote_record": Pubkey.find_program_address(seeds, PROGRAM_ID)[0],
                "user": user.pubkey(),
            },
            [user],
        )

    def buy(self, market_id: str, user: Keypair, outcome: bool, target_cost: int) -> None:
        """The user's own buy_shares."""
        market = self.client.market_address(market_id)
        self.send(
            "buy_shares",
            {"outcome": outcome, "target_cost": target_cost},
            {
                "global_config": self.client.global_config_address(),
                "market": market,
                "position": self.client.position_address(market, user.pubkey()),
                "user": user.pubkey(),
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
            [user],
        )

    def _market_accounts(self, market_id: str) -> dict[str, Pubkey]:
        return {
            "market": self.client.market_address(market_id),
            "global_config": self.client.global_config_address(),
        }

    def aggregate_proposal(self, market_id: str, likes: int, dislikes: int) -> None:
        self.send(
            "aggregate_proposal_votes",
            {"final_likes": likes, "final_dislikes": dislikes},
            {**self._market_accounts(market_id), "backend_authority": self.backend.pubkey},
            [self.backend.signer],
        )

    def approve(self, market_id: str) -> None:
        self.aggregate_proposal(market_id, 9, 1)
        self.send(
            "approve_proposal",
            {},
            {**self._market_accounts(market_id), "admin": self.admin.pubkey()},
            [self.admin],
        )

    def activate(self, market_id: str) -> None:
        self.send(
            "activate_market",
            {},
            {**self._market_accounts(market_id), "authority": self.admin.pubkey()},
            [self.admin],
        )

    def tick(self, seconds: int = 1) -> None:
        """Move the chain's clock on: the real program refuses resolve in the activation
        second and dispute/finalize in the resolution second (InvalidTimestamp)."""
        self.chain.set_unix_timestamp(self.chain.unix_timestamp + seconds)

    def resolve(self, market_id: str) -> None:
        self.tick()
        resolver = self.funded()
        self.send(
            "resolve_market",
            {"proposed_outcome": True, "ipfs_evidence_hash": b"E" * 46},
            {**self._market_accounts(market_id), "resolver": resolver.pubkey()},
            [resolver],
        )

    def dispute(self, market_id: str) -> None:
        self.tick()
        initiator = self.funded()
        self.send(
            "initiate_dispute",
            {},
            {**self._market_accounts(market_id), "initiator": initiator.pubkey()},
            [initiator],
        )

    def market_in(self, state: str) -> str:
        """A new market driven to `state` (Proposed, Approved, Active, Resolving, Disputed)."""
        market_id = self.create_market()
        steps: list[Callable[[str], None]] = [
            self.approve,
            self.activate,
            self.resolve,
            self.dispute,
        ]
        order = ["Proposed", "Approved", "Active", "Resolving", "Disputed"]
        for step in steps[: order.index(state)]:
            step(market_id)
        return market_id

    def buy_instruction(self, user: Keypair, market_id: str, target_cost: int) -> Instruction:
        market = self.client.market_address(market_id)
        return self.client.instruction(
            "buy_shares",
            {"outcome": True, "target_cost": target_cost},
            {
                "global_config": self.client.global_config_address(),
                "market": market,
                "position": self.client.position_address(market, user.pubkey()),
                "user": user.pubkey(),
                "protocol_fee_wallet": self.fee_wallet.pubkey(),
            },
        )

    # -- observing the chain
    def events(self, name: str, market_id: str | None = None) -> int:
        """How many `name` events landed (optionally of one market)."""
        count = 0
        wanted = market_id_bytes(market_id) if market_id is not None else None
        for record in self.chain.records():
            if record.err is not None:
                continue
            for event in parse_program_events(record.logs, PROGRAM_ID, self.coder):
                if event.name == name and wanted in (None, event.data.get("market_id")):
                    count += 1
        return count

    def transaction_count(self) -> int:
        return sum(1 for _ in self.chain.records())

    async def control(self, action: str, **body: Any) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{self.endpoint.http_url}/_control/{action}", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result
