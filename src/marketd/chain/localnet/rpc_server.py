"""Solana JSON-RPC 2.0 over a `LocalChain`, so production clients (solana-py) run unchanged.

One Starlette app serves, on the RPC port:

* ``POST /``: the JSON-RPC methods marketd uses, with Solana's exact result and error shapes
  (single and batch requests); reads answer at the commitment asked for (finalized by default,
  as Solana does);
* ``WS /``: PubSub: ``logsSubscribe`` (``"all"`` or ``{"mentions": [key]}``) and
  ``signatureSubscribe``, notifying when a transaction reaches the subscription's commitment;
* ``GET /health``: ``ok``, like a validator;
* ``POST /_control/<action>`` (only when controls are on: tests and the demo): test controls
  (advance_slots, pause_slots, resume_slots, set_clock, expire_blockhash, drop_next_sends,
  front_run_next_send, close_subscriptions) and ``GET /_control/state``.

PubSub is served on RPC port + 1 as well, where Agave serves it (8899 -> 8900), by a second
server sharing the subscriptions. With `slot_seconds` a `SlotTicker` produces the slots in real
time.

Run it in-process with ``async with serve_local_rpc(chain) as endpoint:`` (a free port pair is
picked) or standalone with ``python -m marketd.chain.localnet.rpc_server --data-dir DIR``
(cluster timing by default; ``--slot-ms 0`` for the deterministic one).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import base58
import uvicorn
from solders.account import Account
from solders.hash import Hash
from solders.message import MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from marketd.chain.localnet.svm import (
    CLUSTER_CONFIRMATION_SLOTS,
    ChainEvent,
    ChainTiming,
    Commitment,
    InvalidTransactionError,
    LocalChain,
    PreflightFailureError,
    SignatureVerificationError,
    SimulationResult,
    TxRecord,
)
from marketd.chain.localnet.ticker import SlotTicker

SOLANA_CORE_VERSION = "2.1.21"
FEATURE_SET = 0
MAX_SIGNATURE_STATUSES = 256
MAX_MULTIPLE_ACCOUNTS = 100
MAX_SIGNATURES_LIMIT = 1000
MAX_PROGRAM_ACCOUNT_FILTERS = 4
WS_CLOSE_GOING_AWAY = 1001

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
UNSUPPORTED_TRANSACTION_VERSION = -32015

Json = Any


class RpcError(Exception):
    """A JSON-RPC error object: code, message and optional data."""

    def __init__(self, code: int, message: str, data: Json = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Json]:
        error: dict[str, Json] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def _invalid(detail: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {detail}")


# --------------------------------------------------------------------- parameter readers
def _arg(params: Sequence[Json], index: int) -> Json:
    if index >= len(params):
        raise _invalid(f"missing parameter {index}")
    return params[index]


def _config(params: Sequence[Json], index: int) -> dict[str, Json]:
    config = params[index] if index < len(params) else None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _invalid(f"parameter {index} must be a configuration object")
    return config


def _pubkey(value: Json) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except (TypeError, ValueError) as exc:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from exc


def _signature(value: Json) -> Signature:
    try:
        return Signature.from_string(value)
    except (TypeError, ValueError) as exc:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from exc


def _commitment(config: dict[str, Json], name: str = "commitment") -> Commitment:
    raw = config.get(name) or Commitment.FINALIZED.value
    try:
        return Commitment(raw)
    except ValueError as exc:
        raise _invalid(f"unknown commitment {raw!r}") from exc


def _non_negative_int(value: Json, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"{name} must be a non-negative integer")
    return value


def _decode(data: Json, encoding: str) -> bytes:
    if not isinstance(data, str):
        raise _invalid("encoded data must be a string")
    try:
        if encoding == "base64":
            return base64.b64decode(data, validate=True)
        if encoding == "base58":
            return bytes(base58.b58decode(data))
    except (ValueError, binascii.Error) as exc:
        raise RpcError(INVALID_PARAMS, f"invalid {encoding} encoding: {exc}") from exc
    raise _invalid(f"unsupported encoding: {encoding}")


def _decode_transaction(params: Sequence[Json], config: dict[str, Json]) -> VersionedTransaction:
    raw = _decode(_arg(params, 0), config.get("encoding") or "base58")
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise RpcError(
            INVALID_PARAMS,
            f"failed to deserialize solana_transaction::versioned::VersionedTransaction: {exc}",
        ) from exc


# --------------------------------------------------------------------- JSON shapes
def _encode_account(account: Account, config: dict[str, Json]) -> dict[str, Json]:
    data = account.data
    data_slice = config.get("dataSlice")
    if data_slice:
        offset = _non_negative_int(data_slice.get("offset"), "dataSlice.offset")
        length = _non_negative_int(data_slice.get("length"), "dataSlice.length")
        data = data[offset : offset + length]
    encoding = config.get("encoding") or "binary"
    encoded: Json
    if encoding in ("base64", "jsonParsed"):
        # jsonParsed falls back to base64 when no parser knows the owner, as on Solana.
        encoded = [base64.b64encode(data).decode(), "base64"]
    elif encoding == "base58":
        encoded = [base58.b58encode(data).decode(), "base58"]
    elif encoding == "binary":
        encoded = base58.b58encode(data).decode()
    else:
        raise _invalid(f"unsupported account encoding: {encoding}")
    return {
        "data": encoded,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(account.data),
    }


def _status(err: Json) -> dict[str, Json]:
    return {"Ok": None} if err is None else {"Err": err}


def _simulation_json(
    result: SimulationResult, accounts: list[Json] | None = None, **extra: Json
) -> dict[str, Json]:
    return {
        "err": result.err,
        "logs": result.logs,
        "accounts": accounts,
        "unitsConsumed": result.units_consumed,
        "returnData": result.return_data,
        **extra,
    }


def _transaction_json(tx: VersionedTransaction) -> dict[str, Json]:
    message = tx.message
    header = message.header
    encoded: dict[str, Json] = {
        "accountKeys": [str(key) for key in message.account_keys],
        "header": {
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            "numRequiredSignatures": header.num_required_signatures,
        },
        "instructions": [
            {
                "accounts": list(ix.accounts),
                "data": base58.b58encode(bytes(ix.data)).decode(),
                "programIdIndex": ix.program_id_index,
                "stackHeight": None,
            }
            for ix in message.instructions
        ],
        "recentBlockhash": str(message.recent_blockhash),
    }
    if isinstance(message, MessageV0):
        encoded["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "writableIndexes": list(lookup.writable_indexes),
                "readonlyIndexes": list(lookup.readonly_indexes),
            }
            for lookup in message.address_table_lookups
        ]
    return {"message": encoded, "signatures": [str(sig) for sig in tx.signatures]}


def _transaction_meta(record: TxRecord) -> dict[str, Json]:
    meta: dict[str, Json] = {
        "computeUnitsConsumed": record.compute_units,
        "err": record.err,
        "fee": record.fee,
        "innerInstructions": record.inner_instructions,
        "loadedAddresses": {
            "readonly": record.loaded_readonly,
            "writable": record.loaded_writable,
        },
        "logMessages": record.logs,
        "postBalances": record.post_balances,
        "postTokenBalances": [],
        "preBalances": record.pre_balances,
        "preTokenBalances": [],
        "rewards": [],
        "status": _status(record.err),
    }
    if record.return_data is not None:
        meta["returnData"] = record.return_data
    return meta


AccountFilter = Callable[[bytes], bool]


def _parse_filter(rule: Json) -> AccountFilter:
    """Turn one getProgramAccounts filter into a predicate, validating it up front."""
    if isinstance(rule, dict) and "dataSize" in rule:
        size = _non_negative_int(rule["dataSize"], "dataSize")
        return lambda data: len(data) == size
    if isinstance(rule, dict) and "memcmp" in rule:
        memcmp = rule["memcmp"]
        if not isinstance(memcmp, dict):
            raise _invalid("memcmp must be an object")
        offset = _non_negative_int(memcmp.get("offset"), "memcmp.offset")
        expected = _decode(memcmp.get("bytes"), memcmp.get("encoding") or "base58")
        return lambda data: data[offset : offset + len(expected)] == expected
    raise _invalid(f"unsupported filter: {rule!r}")


# --------------------------------------------------------------------- methods
class RpcMethods:
    """The JSON-RPC methods: each takes the params list and returns the `result` JSON."""

    def __init__(self, chain: LocalChain) -> None:
        self._chain = chain
        self._handlers: dict[str, Callable[[list[Json]], Json]] = {
            "getAccountInfo": self.get_account_info,
            "getBalance": self.get_balance,
            "getBlockHeight": self.get_block_height,
            "getFeeForMessage": self.get_fee_for_message,
            "getHealth": lambda _params: "ok",
            "getFirstAvailableBlock": self.minimum_ledger_slot,
            "getLatestBlockhash": self.get_latest_blockhash,
            "getMinimumBalanceForRentExemption": self.get_minimum_balance_for_rent_exemption,
            "getMultipleAccounts": self.get_multiple_accounts,
            "getProgramAccounts": self.get_program_accounts,
            "getSignatureStatuses": self.get_signature_statuses,
            "getSignaturesForAddress": self.get_signatures_for_address,
            "getSlot": self.get_slot,
            "getTransaction": self.get_transaction,
            "getVersion": lambda _params: {
                "solana-core": SOLANA_CORE_VERSION,
                "feature-set": FEATURE_SET,
            },
            "isBlockhashValid": self.is_blockhash_valid,
            "minimumLedgerSlot": self.minimum_ledger_slot,
            "requestAirdrop": self.request_airdrop,
            "sendTransaction": self.send_transaction,
            "simulateTransaction": self.simulate_transaction,
        }

    def call(self, method: str, params: list[Json]) -> Json:
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        return handler(params)

    def _context(self, commitment: Commitment) -> dict[str, Json]:
        return {"apiVersion": SOLANA_CORE_VERSION, "slot": self._chain.slot_at(commitment)}

    def _with_context(
        self, value: Json, commitment: Commitment = Commitment.PROCESSED
    ) -> dict[str, Json]:
        return {"context": self._context(commitment), "value": value}

    def _account_or_none(
        self, pubkey: Pubkey, config: dict[str, Json], commitment: Commitment
    ) -> Json:
        account = self._chain.get_account(pubkey, commitment)
        return None if account is None else _encode_account(account, config)

    # ---- accounts (each read sees the state of the bank at the commitment asked for)
    def get_account_info(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0))
        config = _config(params, 1)
        commitment = _commitment(config)
        return self._with_context(self._account_or_none(pubkey, config, commitment), commitment)

    def get_multiple_accounts(self, params: list[Json]) -> Json:
        keys = _arg(params, 0)
        if not isinstance(keys, list):
            raise _invalid("expected a list of addresses")
        if len(keys) > MAX_MULTIPLE_ACCOUNTS:
            raise _invalid(f"Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")
        config = _config(params, 1)
        commitment = _commitment(config)
        pubkeys = [_pubkey(key) for key in keys]
        return self._with_context(
            [self._account_or_none(key, config, commitment) for key in pubkeys], commitment
        )

    def get_program_accounts(self, params: list[Json]) -> Json:
        owner = _pubkey(_arg(params, 0))
        config = _config(params, 1)
        filters = config.get("filters") or []
        if not isinstance(filters, list) or len(filters) > MAX_PROGRAM_ACCOUNT_FILTERS:
            raise _invalid(f"filters must be a list of at most {MAX_PROGRAM_ACCOUNT_FILTERS}")
        predicates = [_parse_filter(rule) for rule in filters]
        commitment = _commitment(config)
        found = [
            {"account": _encode_account(account, config), "pubkey": str(key)}
            for key, account in self._chain.program_accounts(owner, commitment)
            if all(matches(account.data) for matches in predicates)
        ]
        return self._with_context(found, commitment) if config.get("withContext") else found

    def get_balance(self, params: list[Json]) -> Json:
        pubkey = _pubkey(_arg(params, 0))
        commitment = _commitment(_config(params, 1))
        return self._with_context(self._chain.get_balance(pubkey, commitment), commitment)

    def get_minimum_balance_for_rent_exemption(self, params: list[Json]) -> Json:
        size = _non_negative_int(_arg(params, 0), "data length")
        return self._chain.minimum_balance_for_rent_exemption(size)

    # ---- slots and blockhashes
    def get_slot(self, params: list[Json]) -> Json:
        return self._chain.slot_at(_commitment(_config(params, 0)))

    def get_block_height(self, params: list[Json]) -> Json:
        # Block height equals the slot on this chain (no skipped slots).
        return self._chain.slot_at(_commitment(_config(params, 0)))

    def get_latest_blockhash(self, params: list[Json]) -> Json:
        commitment = _commitment(_config(params, 0))
        blockhash, last_valid = self._chain.blockhash_at(commitment)
        return self._with_context(
            {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}, commitment
        )

    def minimum_ledger_slot(self, params: list[Json]) -> Json:
        """The oldest slot whose transactions this node still has (history is pruned)."""
        return self._chain.first_available_slot

    def is_blockhash_valid(self, params: list[Json]) -> Json:
        try:
            blockhash = Hash.from_string(_arg(params, 0))
        except Exception as exc:  # solders raises its own ParseHashError
            raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from exc
        return self._with_context(self._chain.is_blockhash_valid(blockhash))

    def get_fee_for_message(self, params: list[Json]) -> Json:
        raw = _decode(_arg(params, 0), "base64")
        try:
            message = from_bytes_versioned(raw)
        except ValueError as exc:
            raise _invalid(f"invalid message: {exc}") from exc
        return self._with_context(self._chain.fee_for_message(message))

    # ---- transactions
    def send_transaction(self, params: list[Json]) -> Json:
        config = _config(params, 1)
        tx = _decode_transaction(params, config)
        try:
            signature = self._chain.send_transaction(
                tx,
                skip_preflight=bool(config.get("skipPreflight")),
                # Agave simulates against the bank of preflightCommitment (finalized by default).
                preflight_commitment=_commitment(config, "preflightCommitment"),
            )
        except InvalidTransactionError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid transaction: {exc}") from exc
        except SignatureVerificationError as exc:
            raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE, str(exc)) from exc
        except PreflightFailureError as exc:
            raise RpcError(
                SEND_TRANSACTION_PREFLIGHT_FAILURE,
                f"Transaction simulation failed: {exc}",
                _simulation_json(exc.result),
            ) from exc
        return str(signature)

    def simulate_transaction(self, params: list[Json]) -> Json:
        config = _config(params, 1)
        tx = _decode_transaction(params, config)
        replace = bool(config.get("replaceRecentBlockhash"))
        sig_verify = bool(config.get("sigVerify"))
        if replace and sig_verify:
            raise _invalid("sigVerify may not be used with replaceRecentBlockhash")
        try:
            result = self._chain.simulate_transaction(
                tx,
                sig_verify=sig_verify,
                replace_recent_blockhash=replace,
                commitment=_commitment(config),
            )
        except InvalidTransactionError as exc:
            raise RpcError(INVALID_PARAMS, f"invalid transaction: {exc}") from exc
        accounts = None
        accounts_config = config.get("accounts")
        if accounts_config:
            accounts = []
            for key in accounts_config.get("addresses") or []:
                pubkey = _pubkey(key)
                account = result.post_accounts.get(pubkey) or self._chain.get_account(pubkey)
                accounts.append(
                    None
                    if account is None
                    else _encode_account(
                        account, {"encoding": accounts_config.get("encoding") or "base64"}
                    )
                )
        extra: dict[str, Json] = {"fee": result.fee}
        if config.get("innerInstructions"):
            extra["innerInstructions"] = result.inner_instructions
        if replace:
            blockhash, last_valid = self._chain.latest_blockhash
            extra["replacementBlockhash"] = {
                "blockhash": str(blockhash),
                "lastValidBlockHeight": last_valid,
            }
        return self._with_context(_simulation_json(result, accounts, **extra))

    def request_airdrop(self, params: list[Json]) -> Json:
        recipient = _pubkey(_arg(params, 0))
        lamports = _non_negative_int(_arg(params, 1), "lamports")
        return str(self._chain.airdrop(recipient, lamports))

    def get_signature_statuses(self, params: list[Json]) -> Json:
        signatures = _arg(params, 0)
        if not isinstance(signatures, list):
            raise _invalid("expected a list of signatures")
        if len(signatures) > MAX_SIGNATURE_STATUSES:
            raise _invalid(f"Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")
        statuses: list[Json] = []
        for signature in signatures:
            record = self._chain.get_record(str(_signature(signature)))
            if record is None:
                statuses.append(None)
                continue
            statuses.append(
                {
                    "confirmationStatus": self._chain.commitment_of(record).value,
                    "confirmations": self._chain.confirmations(record),
                    "err": record.err,
                    "slot": record.slot,
                    "status": _status(record.err),
                }
            )
        return self._with_context(statuses)

    def get_transaction(self, params: list[Json]) -> Json:
        signature = _signature(_arg(params, 0))
        config = _config(params, 1)
        commitment = _commitment(config)
        if commitment is Commitment.PROCESSED:
            raise _invalid("Method does not support commitment below `confirmed`")
        record = self._chain.get_record(str(signature))
        if record is None or not self._chain.is_visible(record, commitment):
            return None
        tx = record.transaction()
        is_v0 = isinstance(tx.message, MessageV0)
        max_version = config.get("maxSupportedTransactionVersion")
        if is_v0 and max_version is None:
            raise RpcError(
                UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try "
                "the request again with the following configuration parameter: "
                '"maxSupportedTransactionVersion": 0',
            )
        encoding = config.get("encoding") or "json"
        transaction: Json
        if encoding in ("json", "jsonParsed"):
            transaction = _transaction_json(tx)
        elif encoding in ("base64", "base58"):
            transaction = [
                base64.b64encode(record.raw).decode()
                if encoding == "base64"
                else base58.b58encode(record.raw).decode(),
                encoding,
            ]
        else:
            raise _invalid(f"unsupported transaction encoding: {encoding}")
        result: dict[str, Json] = {
            "blockTime": record.block_time,
            "meta": _transaction_meta(record),
            "slot": record.slot,
            "transaction": transaction,
        }
        if max_version is not None:
            result["version"] = 0 if is_v0 else "legacy"
        return result

    def get_signatures_for_address(self, params: list[Json]) -> Json:
        address = str(_pubkey(_arg(params, 0)))
        config = _config(params, 1)
        limit = config.get("limit")
        limit = MAX_SIGNATURES_LIMIT if limit is None else _non_negative_int(limit, "limit")
        if not 1 <= limit <= MAX_SIGNATURES_LIMIT:
            raise _invalid(f"Invalid limit; max {MAX_SIGNATURES_LIMIT}")
        before, until = config.get("before"), config.get("until")
        commitment = _commitment(config)
        if commitment is Commitment.PROCESSED:
            raise _invalid("Method does not support commitment below `confirmed`")
        records = self._chain.signatures_for_address(
            address,
            before=str(_signature(before)) if before is not None else None,
            until=str(_signature(until)) if until is not None else None,
            limit=limit,
            commitment=commitment,
        )
        return [
            {
                "blockTime": record.block_time,
                "confirmationStatus": self._chain.commitment_of(record).value,
                "err": record.err,
                "memo": None,
                "signature": record.signature,
                "slot": record.slot,
            }
            for record in records
        ]


def handle_jsonrpc(methods: RpcMethods, request: Json) -> Json:
    """Answer one parsed JSON-RPC request object (not a batch).

    Requests without an id are answered too (with a null id), as Solana's server does.
    """
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return _error_response(None, RpcError(INVALID_REQUEST, "Invalid Request"))
    request_id = request.get("id")
    params = request.get("params", [])
    try:
        if not isinstance(params, list):
            raise _invalid("params must be an array")
        result = methods.call(request["method"], params)
    except RpcError as exc:
        return _error_response(request_id, exc)
    return {"jsonrpc": "2.0", "result": result, "id": request_id}


def _error_response(request_id: Json, error: RpcError) -> dict[str, Json]:
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


def handle_jsonrpc_body(methods: RpcMethods, body: bytes) -> Json:
    """Answer a raw HTTP body: one request or a batch."""
    try:
        payload = json.loads(body)
    except ValueError:
        return _error_response(None, RpcError(PARSE_ERROR, "Parse error"))
    if isinstance(payload, list):
        if not payload:
            return _error_response(None, RpcError(INVALID_REQUEST, "Invalid Request"))
        return [handle_jsonrpc(methods, item) for item in payload]
    return handle_jsonrpc(methods, payload)


# --------------------------------------------------------------------- websocket subscriptions
_CLOSE = object()
"""Queue sentinel: the connection's writer closes the socket when it reads this."""


@dataclass(eq=False)
class _Connection:
    websocket: WebSocket
    outbox: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    subscriptions: set[int] = field(default_factory=set)
    after_reply: list[Json] = field(default_factory=list)
    """Notifications that must follow the reply being prepared (see `reply`)."""

    def reply(self, message: Json) -> None:
        """Queue a reply, then whatever its handling asked to send after it."""
        self.outbox.put_nowait(message)
        for item in self.after_reply:
            self.outbox.put_nowait(item)
        self.after_reply.clear()

    async def pump(self) -> None:
        """The only writer of this socket, so replies and notifications never interleave."""
        while True:
            item = await self.outbox.get()
            if item is _CLOSE:
                await self.websocket.close(WS_CLOSE_GOING_AWAY)
                return
            await self.websocket.send_text(json.dumps(item))


@dataclass(frozen=True)
class _LogsSubscription:
    connection: _Connection
    mentions: str | None
    commitment: Commitment


@dataclass(frozen=True)
class _SignatureSubscription:
    connection: _Connection
    signature: str
    commitment: Commitment


class SubscriptionHub:
    """Websocket connections and their subscriptions, fed by chain events.

    ``logsSubscribe`` and ``signatureSubscribe`` notify when a transaction reaches the
    subscription's commitment (finalized by default, as Solana does); a signature subscription
    notifies once and is then removed, as on Solana (also at once when the transaction already
    reached that commitment when subscribing).
    """

    def __init__(self, chain: LocalChain) -> None:
        self._chain = chain
        self._subscriptions: dict[int, _LogsSubscription | _SignatureSubscription] = {}
        self._connections: set[_Connection] = set()
        self._next_id = 0
        self.detach = chain.add_listener(self._on_event)

    @property
    def subscription_count(self) -> int:
        return len(self._subscriptions)

    def connect(self, websocket: WebSocket) -> _Connection:
        connection = _Connection(websocket)
        self._connections.add(connection)
        return connection

    def disconnect(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        for subscription_id in connection.subscriptions:
            self._subscriptions.pop(subscription_id, None)
        connection.subscriptions.clear()

    def close_all(self) -> int:
        """Ask every connection to close (like a validator restart); returns how many."""
        connections = list(self._connections)
        for connection in connections:
            self.disconnect(connection)
            connection.outbox.put_nowait(_CLOSE)
        return len(connections)

    def handle(self, connection: _Connection, text: str) -> Json:
        try:
            request = json.loads(text)
        except ValueError:
            return _error_response(None, RpcError(PARSE_ERROR, "Parse error"))
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error_response(None, RpcError(INVALID_REQUEST, "Invalid Request"))
        request_id = request.get("id")
        params = request.get("params", [])
        method = request["method"]
        try:
            if not isinstance(params, list):
                raise _invalid("params must be an array")
            if method == "logsSubscribe":
                result: Json = self._subscribe_logs(connection, params)
            elif method == "signatureSubscribe":
                result = self._subscribe_signature(connection, params)
            elif method in ("logsUnsubscribe", "signatureUnsubscribe"):
                result = self._unsubscribe(connection, params)
            else:
                raise RpcError(METHOD_NOT_FOUND, "Method not found")
        except RpcError as exc:
            return _error_response(request_id, exc)
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _add(
        self, connection: _Connection, subscription: _LogsSubscription | _SignatureSubscription
    ) -> int:
        self._next_id += 1
        self._subscriptions[self._next_id] = subscription
        connection.subscriptions.add(self._next_id)
        return self._next_id

    def _subscribe_logs(self, connection: _Connection, params: list[Json]) -> int:
        log_filter = _arg(params, 0)
        mentions: str | None = None
        if isinstance(log_filter, dict) and "mentions" in log_filter:
            keys = log_filter["mentions"]
            if not isinstance(keys, list) or len(keys) != 1:
                raise RpcError(INVALID_PARAMS, "Invalid Request: Only 1 address supported")
            mentions = str(_pubkey(keys[0]))
        elif log_filter not in ("all", "allWithVotes"):
            raise _invalid("unsupported logs filter")
        commitment = _commitment(_config(params, 1))
        return self._add(connection, _LogsSubscription(connection, mentions, commitment))

    def _subscribe_signature(self, connection: _Connection, params: list[Json]) -> int:
        signature = str(_signature(_arg(params, 0)))
        commitment = _commitment(_config(params, 1))
        subscription = _SignatureSubscription(connection, signature, commitment)
        subscription_id = self._add(connection, subscription)
        record = self._chain.get_record(signature)
        if record is not None and self._chain.is_visible(record, commitment):
            self._notify_signature(subscription_id, subscription, record, after_reply=True)
        return subscription_id

    def _unsubscribe(self, connection: _Connection, params: list[Json]) -> bool:
        subscription_id = _arg(params, 0)
        if subscription_id not in connection.subscriptions:
            raise _invalid("Invalid subscription id.")
        connection.subscriptions.discard(subscription_id)
        del self._subscriptions[subscription_id]
        return True

    def _on_event(self, event: ChainEvent) -> None:
        record = event.record
        for subscription_id, subscription in list(self._subscriptions.items()):
            if subscription.commitment is not event.commitment:
                continue
            if isinstance(subscription, _SignatureSubscription):
                if subscription.signature == record.signature:
                    self._notify_signature(subscription_id, subscription, record)
                continue
            if subscription.mentions is not None and (
                subscription.mentions not in record.account_keys
            ):
                continue
            subscription.connection.outbox.put_nowait(
                {
                    "jsonrpc": "2.0",
                    "method": "logsNotification",
                    "params": {
                        "result": {
                            "context": {"slot": record.slot},
                            "value": {
                                "signature": record.signature,
                                "err": record.err,
                                "logs": record.logs,
                            },
                        },
                        "subscription": subscription_id,
                    },
                }
            )

    def _notify_signature(
        self,
        subscription_id: int,
        subscription: _SignatureSubscription,
        record: TxRecord,
        *,
        after_reply: bool = False,
    ) -> None:
        connection = subscription.connection
        self._subscriptions.pop(subscription_id, None)
        connection.subscriptions.discard(subscription_id)
        notification = {
            "jsonrpc": "2.0",
            "method": "signatureNotification",
            "params": {
                "result": {"context": {"slot": record.slot}, "value": {"err": record.err}},
                "subscription": subscription_id,
            },
        }
        if after_reply:
            connection.after_reply.append(notification)
        else:
            connection.outbox.put_nowait(notification)


async def _websocket_endpoint(websocket: WebSocket) -> None:
    hub: SubscriptionHub = websocket.app.state.hub
    await websocket.accept()
    connection = hub.connect(websocket)
    writer = asyncio.create_task(connection.pump())
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode(errors="replace")
            connection.reply(hub.handle(connection, text))
    finally:
        hub.disconnect(connection)
        writer.cancel()
        # The socket is gone either way; a send that failed on it has nothing left to report.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


# --------------------------------------------------------------------- HTTP endpoints
async def _jsonrpc_endpoint(request: Request) -> Response:
    methods: RpcMethods = request.app.state.methods
    return JSONResponse(handle_jsonrpc_body(methods, await request.body()))


async def _health_endpoint(request: Request) -> Response:
    return PlainTextResponse("ok")


def _control_state(
    chain: LocalChain, hub: SubscriptionHub, ticker: SlotTicker | None
) -> dict[str, Json]:
    blockhash, last_valid = chain.latest_blockhash
    return {
        "subscriptions": hub.subscription_count,
        "slot": chain.slot,
        "confirmedSlot": chain.slot_at(Commitment.CONFIRMED),
        "finalizedSlot": chain.slot_at(Commitment.FINALIZED),
        "firstAvailableSlot": chain.first_available_slot,
        "blockHeight": chain.block_height,
        "unixTimestamp": chain.unix_timestamp,
        "blockhash": str(blockhash),
        "lastValidBlockHeight": last_valid,
        "ticking": ticker is not None and not ticker.paused,
    }


def _control_transaction(body: dict[str, Json]) -> VersionedTransaction:
    raw = _decode(body.get("transaction"), "base64")
    try:
        return VersionedTransaction.from_bytes(raw)
    except ValueError as exc:
        raise _invalid(f"not a transaction: {exc}") from exc


async def _control_endpoint(request: Request) -> Response:
    chain: LocalChain = request.app.state.chain
    hub: SubscriptionHub = request.app.state.hub
    ticker: SlotTicker | None = request.app.state.ticker
    action = request.path_params["action"]
    body: Json = {}
    if request.method == "POST":
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    extra: dict[str, Json] = {}
    try:
        if action == "state":
            pass
        elif action == "advance_slots":
            chain.advance_slots(_non_negative_int(body.get("slots", 1), "slots"))
        elif action == "set_clock":
            timestamp = body.get("unix_timestamp")
            if isinstance(timestamp, bool) or not isinstance(timestamp, int):
                raise _invalid("unix_timestamp must be an integer")
            chain.set_unix_timestamp(timestamp)
        elif action == "expire_blockhash":
            chain.expire_blockhash()
        elif action == "drop_next_sends":
            chain.drop_next_sends(_non_negative_int(body.get("count", 1), "count"))
        elif action == "front_run_next_send":
            chain.front_run_next_send(_control_transaction(body))
        elif action == "close_subscriptions":
            extra["closed"] = hub.close_all()
        elif action in ("pause_slots", "resume_slots"):
            if ticker is None:
                return JSONResponse({"error": "slots are not ticking"}, status_code=409)
            ticker.pause() if action == "pause_slots" else ticker.resume()
        else:
            return JSONResponse({"error": f"unknown control {action}"}, status_code=404)
    except RpcError as exc:
        return JSONResponse({"error": exc.message}, status_code=400)
    return JSONResponse({**_control_state(chain, hub, ticker), **extra})


def build_app(
    chain: LocalChain,
    *,
    controls: bool = True,
    ticker: SlotTicker | None = None,
    hub: SubscriptionHub | None = None,
) -> Starlette:
    """The RPC app (JSON-RPC and PubSub on one port); `app.state.hub.detach()` unhooks it from
    the chain when done. `controls`: serve the test controls under /_control/ (tests, demo)."""
    routes = [
        Route("/", _jsonrpc_endpoint, methods=["POST"]),
        WebSocketRoute("/", _websocket_endpoint),
        Route("/health", _health_endpoint, methods=["GET"]),
    ]
    if controls:
        routes.append(Route("/_control/{action}", _control_endpoint, methods=["GET", "POST"]))
    app = Starlette(routes=routes)
    app.state.chain = chain
    app.state.methods = RpcMethods(chain)
    app.state.hub = hub or SubscriptionHub(chain)
    app.state.ticker = ticker
    return app


def build_pubsub_app(hub: SubscriptionHub) -> Starlette:
    """The PubSub-only app of RPC port + 1, where Agave serves its websocket."""
    app = Starlette(routes=[WebSocketRoute("/", _websocket_endpoint)])
    app.state.hub = hub
    return app


# --------------------------------------------------------------------- serving
@dataclass(frozen=True)
class RpcEndpoint:
    http_url: str
    ws_url: str
    """PubSub on RPC port + 1, where Agave serves it (the RPC port serves it as well)."""


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host and reports readiness."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def _uvicorn_config(app: Starlette, log_level: str = "warning", **kwargs: Json) -> uvicorn.Config:
    return uvicorn.Config(
        app, ws="websockets-sansio", lifespan="off", log_level=log_level, **kwargs
    )


PORT_PAIR_ATTEMPTS = 50


def _listening_socket(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says it is TCP; without it every answer waited ~40 ms for Nagle and
    # delayed ACKs (uvicorn's own bind does the same).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_port_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Sockets bound to `port` and `port + 1` (port 0: a free pair is found)."""
    attempts = PORT_PAIR_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        rpc = _listening_socket(host, port)
        try:
            pubsub = _listening_socket(host, rpc.getsockname()[1] + 1)
        except OSError:
            rpc.close()
            if attempt + 1 == attempts:
                raise
            continue
        return rpc, pubsub
    raise AssertionError("unreachable")  # pragma: no cover


async def _start(server: EmbeddedServer, sock: socket.socket) -> asyncio.Task[None]:
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait([serving, ready], return_when=asyncio.FIRST_COMPLETED)
    if not server.ready.is_set():
        ready.cancel()
        serving.result()  # re-raises why startup failed
    return serving


@contextlib.asynccontextmanager
async def serve_local_rpc(
    chain: LocalChain,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    controls: bool = True,
    slot_seconds: float | None = None,
) -> AsyncIterator[RpcEndpoint]:
    """Serve `chain` on host:port (0 = a free port) and its PubSub also on port + 1, for the
    duration of the block.

    `slot_seconds`: produce slots in real time (a `SlotTicker`), for a chain in cluster timing;
    None leaves the slots to the transactions and the controls. `controls`: serve the test
    controls (in-process servers are test or demo chains, so they are on by default).
    """
    rpc_sock, pubsub_sock = bind_port_pair(host, port)
    ticker = SlotTicker(chain, slot_seconds) if slot_seconds is not None else None
    app = build_app(chain, controls=controls, ticker=ticker)
    hub: SubscriptionHub = app.state.hub
    bound_port = rpc_sock.getsockname()[1]
    servers = [
        EmbeddedServer(_uvicorn_config(app)),
        EmbeddedServer(_uvicorn_config(build_pubsub_app(hub))),
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        for server, sock in zip(servers, (rpc_sock, pubsub_sock), strict=True):
            tasks.append(await _start(server, sock))
        if ticker is not None:
            tasks.append(asyncio.create_task(ticker.run()))
        yield RpcEndpoint(f"http://{host}:{bound_port}", f"ws://{host}:{bound_port + 1}")
    finally:
        hub.close_all()
        hub.detach()
        if ticker is not None:
            tasks[-1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[-1]
        for server in servers:
            server.should_exit = True
        for task in tasks[: len(servers)]:
            await task
        rpc_sock.close()
        pubsub_sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Standalone: ``python -m marketd.chain.localnet.rpc_server --data-dir DIR``."""
    parser = argparse.ArgumentParser(description="Local Solana JSON-RPC endpoint over LiteSVM")
    parser.add_argument("--data-dir", type=Path, help="persist accounts and history here")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8899, help="JSON-RPC (and PubSub); PubSub also on port + 1"
    )
    parser.add_argument(
        "--program",
        action="append",
        default=[],
        metavar="PROGRAM_ID=PATH",
        help="load an SBF program (repeatable)",
    )
    add_timing_arguments(parser)
    parser.add_argument(
        "--test-controls", action="store_true", help="serve the test controls under /_control/"
    )
    args = parser.parse_args(argv)
    timing, slot_seconds = timing_from_arguments(args)
    chain = LocalChain(args.data_dir, timing=timing)
    for spec in args.program:
        program_id, _, path = spec.partition("=")
        chain.load_program(Pubkey.from_string(program_id), Path(path))
    asyncio.run(_serve_forever(chain, args.host, args.port, args.test_controls, slot_seconds))


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slot-ms",
        type=int,
        default=400,
        help="milliseconds per slot (0: deterministic, a slot per transaction)",
    )
    parser.add_argument(
        "--confirmation-slots",
        type=int,
        default=CLUSTER_CONFIRMATION_SLOTS,
        help="slots from landing to confirmed",
    )
    parser.add_argument(
        "--history-slots", type=int, default=None, help="slots of history kept (default: all)"
    )


def timing_from_arguments(args: argparse.Namespace) -> tuple[ChainTiming, float | None]:
    if args.slot_ms <= 0:
        return ChainTiming(history_slots=args.history_slots), None
    timing = ChainTiming.cluster(args.confirmation_slots, args.history_slots)
    return timing, args.slot_ms / 1000


async def _serve_forever(
    chain: LocalChain, host: str, port: int, controls: bool, slot_seconds: float | None
) -> None:
    async with serve_local_rpc(
        chain, host, port, controls=controls, slot_seconds=slot_seconds
    ) as endpoint:
        print(f"local chain: JSON-RPC {endpoint.http_url}, PubSub {endpoint.ws_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    main()
