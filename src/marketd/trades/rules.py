"""What a relayed trade transaction must be (pure): a signed call of the market program's
buy_shares or sell_shares, for one market, signed by the wallet that submits it."""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass

from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import SanitizeError, VersionedTransaction

from marketd.chain.errors import CoderError
from marketd.chain.idl import IdlCoder
from marketd.core.inputs import INT64_MAX

MAX_TRANSACTION_BYTES = 1232  # Solana's packet limit
MAX_TRANSACTION_BASE64 = 4 * -(-MAX_TRANSACTION_BYTES // 3)
"""Characters of the longest base64 text that can decode to MAX_TRANSACTION_BYTES."""


class TradeType(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def instruction(self) -> str:
        return "buy_shares" if self is TradeType.BUY else "sell_shares"


class TradeRejected(ValueError):
    """The transaction is not an acceptable trade; `reason` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class TradeIntent:
    signature: str
    trade_type: TradeType
    market: Pubkey
    user: Pubkey
    outcome: bool
    amount: int  # target_cost (buy) or shares_to_sell (sell)
    raw: bytes


def decode_transaction(encoded: str) -> tuple[VersionedTransaction, bytes]:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TradeRejected("not_base64", "transaction is not valid base64") from exc
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise TradeRejected("too_large", f"transaction exceeds {MAX_TRANSACTION_BYTES} bytes")
    try:
        transaction = VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise TradeRejected("not_a_transaction", "bytes are not a Solana transaction") from exc
    try:
        # What the runtime checks before anything else: a fee payer that signs, as many
        # signatures as the header requires, every account index within the message's keys.
        transaction.sanitize()
    except SanitizeError as exc:
        raise TradeRejected("malformed_transaction", f"transaction is malformed: {exc}") from exc
    return transaction, raw


def parse_trade(
    encoded: str, trade_type: TradeType, coder: IdlCoder, program_id: Pubkey, wallet: Pubkey
) -> TradeIntent:
    transaction, raw = decode_transaction(encoded)
    message = transaction.message
    if isinstance(message, MessageV0) and message.address_table_lookups:
        raise TradeRejected("lookup_tables", "address lookup tables are not accepted for trades")
    if not all(transaction.verify_with_results()):
        raise TradeRejected("bad_signature", "a transaction signature does not verify")
    keys = message.account_keys
    discriminator = coder.instruction_discriminator(trade_type.instruction)
    calls = [
        ix
        for ix in message.instructions
        if keys[ix.program_id_index] == program_id and bytes(ix.data)[:8] == discriminator
    ]
    if len(calls) != 1:
        raise TradeRejected(
            "wrong_instruction",
            f"transaction must call {trade_type.instruction} of the market program exactly once",
        )
    call = calls[0]
    try:
        _name, args = coder.decode_instruction(bytes(call.data))
    except CoderError as exc:
        raise TradeRejected("bad_arguments", f"instruction arguments do not decode: {exc}") from exc
    names = [meta.name for meta in coder.instruction_accounts(trade_type.instruction)]
    if len(call.accounts) < len(names):
        raise TradeRejected("missing_accounts", "instruction has fewer accounts than the IDL")
    market_index = call.accounts[names.index("market")]
    user_index = call.accounts[names.index("user")]
    user = keys[user_index]
    if user != wallet or not message.is_signer(user_index):
        raise TradeRejected("wrong_signer", "the trade must be signed by the signed-in wallet")
    amount = args["target_cost"] if trade_type is TradeType.BUY else args["shares_to_sell"]
    if not 0 <= int(amount) <= INT64_MAX:
        raise TradeRejected(
            "amount_too_large", f"the amount must be at most {INT64_MAX} (a signed 64-bit integer)"
        )
    return TradeIntent(
        signature=str(transaction.signatures[0]),
        trade_type=trade_type,
        market=keys[market_index],
        user=user,
        outcome=bool(args["outcome"]),
        amount=int(amount),
        raw=raw,
    )
