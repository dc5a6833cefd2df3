"""`ChainClient`: the production path to the program, over solana-py's `AsyncClient`.

It reads and decodes the program's accounts with the IDL, builds and signs transactions (recent
blockhash, optional compute-unit price), sends them with preflight and confirms them by polling
`getSignatureStatuses` until confirmed or until the blockhash can no longer land.

Errors are typed (chain/errors.py: `ChainError` and its kinds) so callers can decide what to do
without parsing text: `RpcUnavailable`, `RpcRejected`, `TransactionFailed` (its `program_error`
names the program's error from the IDL), `BlockhashExpired`, `ConfirmationTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import base58
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.models import TxOpts
from solders.account_decoder import UiAccountEncoding
from solders.commitment_config import CommitmentLevel
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.rpc.config import RpcAccountInfoConfig, RpcProgramAccountsConfig
from solders.rpc.errors import RpcCustomErrorFieldless, SendTransactionPreflightFailureMessage
from solders.rpc.filter import Memcmp
from solders.rpc.requests import GetProgramAccounts
from solders.rpc.responses import GetProgramAccountsWithContextResp
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)

from marketd.chain import addresses
from marketd.chain.errors import (
    BlockhashExpired,
    ChainError,
    ConfirmationTimeout,
    ProgramError,
    RpcRejected,
    RpcUnavailable,
    TransactionFailed,
)
from marketd.chain.events import program_error_from_logs
from marketd.chain.idl import IdlCoder
from marketd.chain.program import program_coder, program_id
from marketd.config import Settings
from marketd.shared.market_state import MarketState

MARKET_ACCOUNT = "MarketAccount"
GLOBAL_CONFIG_ACCOUNT = "GlobalConfig"

_REJECTED_CUSTOM = (
    RpcCustomErrorFieldless.TransactionSignatureVerificationFailure,
    RpcCustomErrorFieldless.TransactionSignatureLenMismatch,
)
_REJECTED_NAMES = (
    "InvalidParams",
    "InvalidRequest",
    "MethodNotFound",
    "ParseError",
    "UnsupportedTransactionVersion",
)


# ------------------------------------------------------------------------------------- errors
class _PreflightFailed(ChainError):
    """Internal: preflight simulation failed; `send` turns it into a precise error."""

    def __init__(self, payload: SendTransactionPreflightFailureMessage) -> None:
        super().__init__(payload.message)
        self.payload = payload


# ------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class RecentBlockhash:
    blockhash: Hash
    last_valid_block_height: int


@dataclass(frozen=True)
class SignedTransaction:
    """Wire bytes of a signed transaction and what is needed to follow it."""

    raw: bytes
    signature: str
    blockhash: str
    last_valid_block_height: int

    @property
    def transaction(self) -> VersionedTransaction:
        return VersionedTransaction.from_bytes(self.raw)


@dataclass(frozen=True)
class SignatureState:
    """Where a landed transaction stands; `err` is None for success."""

    signature: str
    slot: int
    confirmation: str  # processed | confirmed | finalized
    err: Any

    @property
    def is_confirmed(self) -> bool:
        return self.confirmation in ("confirmed", "finalized")


@dataclass(frozen=True)
class AddressSignature:
    """One transaction that involves an address (`getSignaturesForAddress`, newest first)."""

    signature: str
    block_time: int | None  # unix seconds; None when the node does not know it
    failed: bool
    slot: int


@dataclass(frozen=True)
class ProgramAccounts:
    """Every account of one kind the program owns, decoded, and the slot they reflect."""

    slot: int  # the RPC context slot
    accounts: list[tuple[Pubkey, dict[str, Any]]]  # (address, every decoded field)


@dataclass(frozen=True)
class MarketAccount:
    address: Pubkey
    market_id: str
    state: MarketState
    creator: Pubkey
    data: dict[str, Any]  # every decoded field, IDL names


@dataclass(frozen=True)
class GlobalConfigAccount:
    address: Pubkey
    admin: Pubkey
    backend_authority: Pubkey
    protocol_fee_wallet: Pubkey
    proposal_approval_threshold: int  # basis points
    dispute_success_threshold: int  # basis points
    data: dict[str, Any]


def _confirmation_name(status: TransactionConfirmationStatus | None) -> str:
    """solders' enum (unhashable, so no dict) as Solana's JSON word."""
    if status == TransactionConfirmationStatus.Finalized:
        return "finalized"
    if status == TransactionConfirmationStatus.Confirmed:
        return "confirmed"
    return "processed"


def _rpc_error_kind(payload: Any) -> type[ChainError]:
    if payload in _REJECTED_CUSTOM:
        return RpcRejected
    if any(name in type(payload).__name__ for name in _REJECTED_NAMES):
        return RpcRejected
    return RpcUnavailable


@asynccontextmanager
async def _rpc_errors() -> AsyncIterator[None]:
    """Turn solana-py's exceptions into the client's typed errors."""
    try:
        yield
    except SolanaRpcException as exc:
        raise RpcUnavailable(f"RPC transport error: {exc.__cause__ or exc}") from exc
    except RPCNoResultException as exc:
        raise RpcRejected(str(exc)) from exc
    except RPCException as exc:
        payload = exc.args[0] if exc.args else exc
        if isinstance(payload, SendTransactionPreflightFailureMessage):
            raise _PreflightFailed(payload) from exc
        raise _rpc_error_kind(payload)(f"RPC error: {payload}") from exc


# ------------------------------------------------------------------------------------- client
class ChainClient:
    """Reads, builds, signs, sends and confirms transactions of one program."""

    DEFAULT_POLL_INTERVAL: ClassVar[float] = 0.5

    def __init__(
        self,
        rpc: AsyncClient,
        coder: IdlCoder,
        program: Pubkey,
        *,
        commitment: Commitment = Confirmed,
        compute_unit_price: int = 0,
        compute_unit_limit: int | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rpc_url: str | None = None,
    ) -> None:
        self.rpc = rpc
        self.rpc_url = rpc_url
        """The URL `rpc` talks to, when known: the event stream derives its websocket from it
        (solana-py's client does not say)."""
        self.coder = coder
        self.program_id = program
        self.commitment = commitment
        self.compute_unit_price = compute_unit_price  # micro-lamports per compute unit
        self.compute_unit_limit = compute_unit_limit
        self.poll_interval = poll_interval
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, *, rpc_url: str | None = None, **options: Any
    ) -> ChainClient:
        """A client of the configured program at `rpc_url` (default SOLANA_RPC_URL)."""
        url = rpc_url or settings.solana_rpc_url
        if url is None:
            raise ValueError("no RPC URL: set SOLANA_RPC_URL or start the local chain")
        commitment = options.pop("commitment", Confirmed)
        return cls(
            AsyncClient(url, commitment=commitment),
            program_coder(settings),
            program_id(settings),
            commitment=commitment,
            rpc_url=url,
            **options,
        )

    async def close(self) -> None:
        await self.rpc.close()

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ addresses
    def market_address(self, market_id: str) -> Pubkey:
        return addresses.market_address(self.program_id, market_id)

    def global_config_address(self) -> Pubkey:
        return addresses.global_config_address(self.program_id)

    def position_address(self, market: Pubkey, user: Pubkey) -> Pubkey:
        return addresses.position_address(self.program_id, market, user)

    # ------------------------------------------------------------------ reads
    async def account_data(self, address: Pubkey) -> bytes | None:
        async with _rpc_errors():
            response = await self.rpc.get_account_info(address, commitment=self.commitment)
        account = response.value
        return None if account is None else bytes(account.data)

    async def balance(self, address: Pubkey) -> int:
        """The address's lamports (0 for an account that does not exist)."""
        async with _rpc_errors():
            response = await self.rpc.get_balance(address, commitment=self.commitment)
        return int(response.value)

    async def signatures_for_address(
        self, address: Pubkey, *, before: str | None = None, limit: int = 1000
    ) -> list[AddressSignature]:
        """One page of the transactions involving `address`, newest first, older than
        `before` (a signature) when given."""
        async with _rpc_errors():
            response = await self.rpc.get_signatures_for_address(
                address,
                before=None if before is None else Signature.from_string(before),
                limit=limit,
                commitment=self.commitment,
            )
        return [
            AddressSignature(
                str(item.signature), item.block_time, item.err is not None, int(item.slot)
            )
            for item in response.value
        ]

    async def program_accounts(self, account: str) -> ProgramAccounts:
        """Every `account` (an IDL account name) of the program, decoded, with the RPC context
        slot they reflect (withContext: solana-py's own helper cannot ask for it, so the request
        is built with solders and sent through solana-py's provider)."""
        discriminator = self.coder.account_discriminator(account)
        config = RpcProgramAccountsConfig(
            RpcAccountInfoConfig(
                encoding=UiAccountEncoding.Base64,
                commitment=CommitmentLevel.from_string(str(self.commitment)),
            ),
            filters=[Memcmp(offset=0, bytes_=base58.b58encode(discriminator).decode())],
            with_context=True,
        )
        request = GetProgramAccounts(self.program_id, config)
        async with _rpc_errors():
            response = await self.rpc._provider.make_request(
                request, GetProgramAccountsWithContextResp
            )
        decoded = [
            (
                keyed.pubkey,
                self.coder.decode_account(account, bytes(keyed.account.data), allow_trailing=True),
            )
            for keyed in response.value
        ]
        return ProgramAccounts(int(response.context.slot), decoded)

    async def market(self, market_id: str) -> MarketAccount | None:
        """The market's account, decoded; None when it does not exist (yet)."""
        address = self.market_address(market_id)
        data = await self.account_data(address)
        if data is None:
            return None
        fields = self.coder.decode_account(MARKET_ACCOUNT, data, allow_trailing=True)
        return MarketAccount(
            address=address,
            market_id=addresses.market_id_from_bytes(fields["market_id"]),
            state=MarketState.from_program_name(fields["state"]),
            creator=fields["creator"],
            data=fields,
        )

    async def global_config(self) -> GlobalConfigAccount | None:
        address = self.global_config_address()
        data = await self.account_data(address)
        if data is None:
            return None
        fields = self.coder.decode_account(GLOBAL_CONFIG_ACCOUNT, data, allow_trailing=True)
        return GlobalConfigAccount(
            address=address,
            admin=fields["admin"],
            backend_authority=fields["backend_authority"],
            protocol_fee_wallet=fields["protocol_fee_wallet"],
            proposal_approval_threshold=fields["proposal_approval_threshold"],
            dispute_success_threshold=fields["dispute_success_threshold"],
            data=fields,
        )

    # ------------------------------------------------------------------ building and signing
    def instruction(
        self, name: str, args: Mapping[str, Any], accounts: Mapping[str, Pubkey]
    ) -> Instruction:
        """An instruction of the program; accounts by IDL name (fixed addresses filled in)."""
        metas = []
        for meta in self.coder.instruction_accounts(name):
            key = accounts.get(meta.name, meta.address)
            if key is None:
                raise KeyError(f"{name}: account {meta.name!r} not given")
            metas.append(AccountMeta(key, is_signer=meta.signer, is_writable=meta.writable))
        return Instruction(self.program_id, self.coder.encode_instruction(name, args), metas)

    def budget_instructions(self) -> list[Instruction]:
        """ComputeBudget instructions to prepend (none unless a price or limit is set)."""
        budget = []
        if self.compute_unit_limit is not None:
            budget.append(set_compute_unit_limit(self.compute_unit_limit))
        if self.compute_unit_price > 0:
            budget.append(set_compute_unit_price(self.compute_unit_price))
        return budget

    async def latest_blockhash(self) -> RecentBlockhash:
        async with _rpc_errors():
            response = await self.rpc.get_latest_blockhash(commitment=self.commitment)
        value = response.value
        return RecentBlockhash(value.blockhash, value.last_valid_block_height)

    def sign(
        self,
        instructions: Sequence[Instruction],
        signers: Sequence[Keypair],
        recent: RecentBlockhash,
    ) -> SignedTransaction:
        """Sign with `signers` (the first pays the fee), compute budget first."""
        if not signers:
            raise ValueError("a transaction needs at least its fee payer as signer")
        message = Message.new_with_blockhash(
            [*self.budget_instructions(), *instructions], signers[0].pubkey(), recent.blockhash
        )
        transaction = VersionedTransaction(message, list(signers))
        return SignedTransaction(
            raw=bytes(transaction),
            signature=str(transaction.signatures[0]),
            blockhash=str(recent.blockhash),
            last_valid_block_height=recent.last_valid_block_height,
        )

    async def build(
        self, instructions: Sequence[Instruction], signers: Sequence[Keypair]
    ) -> SignedTransaction:
        return self.sign(instructions, signers, await self.latest_blockhash())

    # ------------------------------------------------------------------ sending
    async def send(self, raw: bytes, *, skip_preflight: bool = False) -> str:
        """Send signed wire bytes; returns the signature.

        A preflight answering AlreadyProcessed means these very bytes landed before: that is
        success for an at-least-once sender, so the signature is returned.
        """
        transaction = _parse_transaction(raw)
        signature = str(transaction.signatures[0])
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=skip_preflight,
            preflight_commitment=self.commitment,
        )
        try:
            async with _rpc_errors():
                await self.rpc.send_raw_transaction(raw, opts)
        except _PreflightFailed as exc:
            err = exc.payload.data.err
            if err == TransactionErrorFieldless.AlreadyProcessed:
                return signature
            if err == TransactionErrorFieldless.BlockhashNotFound:
                raise BlockhashExpired(f"{signature}: blockhash not found") from exc
            logs = list(exc.payload.data.logs or [])
            raise TransactionFailed(
                err,
                landed=False,
                program_error=self.program_error(err, logs, transaction),
                logs=logs,
                signature=signature,
            ) from exc
        return signature

    def program_error(
        self, err: Any, logs: Sequence[str], transaction: VersionedTransaction | None
    ) -> ProgramError | None:
        """Our program's error behind `err`: from the logs, else from the failed instruction."""
        if logs:
            found = program_error_from_logs(logs, self.program_id, self.coder)
            if found is not None:
                return found
        if not (
            isinstance(err, TransactionErrorInstructionError)
            and isinstance(err.err, InstructionErrorCustom)
            and transaction is not None
        ):
            return None
        message = transaction.message
        instruction = message.instructions[err.index]
        if message.account_keys[instruction.program_id_index] != self.program_id:
            return None
        code = err.err.code
        known = self.coder.error_for_code(code)
        if known is None:
            return ProgramError(code)
        return ProgramError(code, known.name, known.msg)

    async def signature_status(self, signature: str) -> SignatureState | None:
        """The transaction's status, or None when the node has never seen it land."""
        return (await self.signature_statuses([signature]))[0]

    async def signature_statuses(self, signatures: Sequence[str]) -> list[SignatureState | None]:
        """Statuses of up to 256 signatures in one request (None = not landed)."""
        if not signatures:
            return []
        async with _rpc_errors():
            response = await self.rpc.get_signature_statuses(
                [Signature.from_string(signature) for signature in signatures],
                search_transaction_history=True,
            )
        return [
            None
            if status is None
            else SignatureState(
                signature=signature,
                slot=status.slot,
                confirmation=_confirmation_name(status.confirmation_status),
                err=status.err,
            )
            for signature, status in zip(signatures, response.value, strict=True)
        ]

    async def block_height(self) -> int:
        async with _rpc_errors():
            response = await self.rpc.get_block_height(commitment=self.commitment)
        return int(response.value)

    async def blockhash_expired(self, raw: bytes, last_valid_block_height: int | None) -> bool:
        """True once a transaction with this blockhash can no longer land.

        Either the block height passed the blockhash's last valid height, or the node no longer
        accepts the blockhash (getFeeForMessage answers null for an unknown blockhash, which
        also covers a blockhash whose last valid height we never learnt, as for user-signed
        transactions).
        """
        if last_valid_block_height is not None and (
            await self.block_height() > last_valid_block_height
        ):
            return True
        message = _parse_transaction(raw).message
        async with _rpc_errors():
            fee = await self.rpc.get_fee_for_message(
                cast(MessageV0, message), commitment=self.commitment
            )
        return fee.value is None

    async def confirm(
        self, signed: SignedTransaction, *, wait_seconds: float = 60.0
    ) -> SignatureState:
        """Poll until the transaction is confirmed, failed on chain, expired or `wait_seconds` pass.

        Raises TransactionFailed (landed with an error), BlockhashExpired (never landed and
        cannot any more; checked twice so a landing just before expiry is not missed) or
        ConfirmationTimeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            state = await self.signature_status(signed.signature)
            if state is None and await self.blockhash_expired(
                signed.raw, signed.last_valid_block_height
            ):
                state = await self.signature_status(signed.signature)
                if state is None:
                    raise BlockhashExpired(f"{signed.signature}: expired before landing")
            if state is not None:
                self.check_landed(state, signed.raw)
                if state.is_confirmed:
                    return state
            if loop.time() >= deadline:
                raise ConfirmationTimeout(f"{signed.signature}: not confirmed in {wait_seconds}s")
            await self._sleep(self.poll_interval)

    def check_landed(self, state: SignatureState, raw: bytes) -> None:
        if state.err is None:
            return
        transaction = _parse_transaction(raw)
        raise TransactionFailed(
            state.err,
            landed=True,
            program_error=self.program_error(state.err, [], transaction),
            signature=state.signature,
        )

    async def send_and_confirm(
        self, signed: SignedTransaction, *, wait_seconds: float = 60.0
    ) -> SignatureState:
        await self.send(signed.raw)
        return await self.confirm(signed, wait_seconds=wait_seconds)


def _parse_transaction(raw: bytes) -> VersionedTransaction:
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcRejected(f"not a transaction: {exc}") from exc
