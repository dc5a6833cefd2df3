"""Every error of the chain layer, in one tree.

    Exception
    ├── CoderError              these bytes or this IDL are not what we expected
    │   ├── IdlParseError
    │   ├── BorshDecodeError ─┐
    │   ├── BorshEncodeError ─┴── UnknownNameError
    ├── ProgramError            the program refused an instruction (carried by TransactionFailed)
    └── ChainError              talking to the chain failed; `retryable`: may trying again pass?
        ├── RpcUnavailable          (retryable) network, HTTP status, unhealthy or lagging node
        ├── RpcRejected             (permanent) the node refused the request as malformed
        ├── TransactionFailed       ran (preflight or on chain) and failed; see `retryable`
        ├── BlockhashExpired        (retryable by re-signing) can never land any more
        ├── ConfirmationTimeout     (retryable) neither landed nor expired within the wait
        ├── MarketNotOnChain        (retryable) the outbox's market or GlobalConfig has no account
        ├── StaleBlockhash          (retryable) re-signing now would rebuild the spent transaction
        └── StreamError             (retryable) the event stream lost its source; it backfills
            ├── StreamGapError          a listed transaction could not be fetched
            ├── SubscriptionError       the node refused the logs subscription
            └── HistoryGapError         the checkpoint is older than the node's history

Coder errors form one hierarchy so a caller can catch `CoderError` for "these bytes or this IDL
are not what we expected", or the narrower kinds when it matters which side failed. They are not
`ChainError`s: retrying cannot fix them, and the outbox logs them as the bugs they are.
`ProgramError` is different in kind: it is the program telling us it refused an instruction
(Anchor custom error codes, >= 6000 for the program's own `#[error_code]` enum).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from solders.transaction_status import TransactionErrorFieldless

if TYPE_CHECKING:
    from marketd.chain.stream import Checkpoint


# ------------------------------------------------------------------------------------- coder
class CoderError(Exception):
    """Base class of every error raised by the IDL model, Borsh coder and log parser."""


class IdlParseError(CoderError):
    """The IDL document is malformed or uses a construct this coder does not support."""


class BorshDecodeError(CoderError):
    """Bytes do not decode: too short, trailing bytes, bad tag, or unknown discriminator."""


class BorshEncodeError(CoderError):
    """A value does not fit its IDL type: out-of-range int, wrong length, missing field, ..."""


class UnknownNameError(BorshDecodeError, BorshEncodeError):
    """No instruction/account/event/type of that name in the IDL.

    It is both a decode and an encode error, so code catching either of them sees it whichever
    direction it was coding in.
    """


# ------------------------------------------------------------------------------------- program
class ProgramError(Exception):
    """An instruction failed with a program error code, resolved against the IDL when possible."""

    def __init__(self, code: int, name: str | None = None, msg: str | None = None) -> None:
        self.code = code
        self.name = name
        self.msg = msg
        label = name if name is not None else "unknown program error"
        super().__init__(f"{label} ({code}){': ' + msg if msg else ''}")


_CUSTOM_ERROR = re.compile(r"custom program error: 0x([0-9a-fA-F]+)")


def parse_custom_error_code(text: str) -> int | None:
    """The code in a runtime message such as ``... failed: custom program error: 0x1770``."""
    match = _CUSTOM_ERROR.search(text)
    return int(match.group(1), 16) if match else None


# ------------------------------------------------------------------------------------- chain
# Program errors that may pass when tried again later, so a caller should retry, not give up.
RETRYABLE_PROGRAM_ERRORS = frozenset({"DisputePeriodNotEnded", "ProtocolPaused"})
# (a tuple: solders' error enums are not hashable)
# Runtime failures of the transaction as a whole that an operator or time can fix.
_RETRYABLE_TX_ERRORS = (
    TransactionErrorFieldless.AccountInUse,
    TransactionErrorFieldless.AccountNotFound,
    TransactionErrorFieldless.InsufficientFundsForFee,
    TransactionErrorFieldless.WouldExceedMaxBlockCostLimit,
    TransactionErrorFieldless.WouldExceedMaxAccountCostLimit,
    TransactionErrorFieldless.ClusterMaintenance,
)


class ChainError(Exception):
    """Base of the chain layer's I/O errors; `retryable` says whether trying again may succeed:
    yes, unless a kind says otherwise (`RpcRejected`; `TransactionFailed` per failure)."""

    retryable: bool = True


class RpcUnavailable(ChainError):
    """The RPC node could not answer (network, HTTP status, unhealthy): try again later."""


class RpcRejected(ChainError):
    """The node refused the request as malformed; the same request will never pass."""

    retryable = False


class BlockhashExpired(ChainError):
    """The transaction's blockhash expired before it landed: re-sign to try again."""


class ConfirmationTimeout(ChainError):
    """The transaction neither landed nor expired while we waited."""


class TransactionFailed(ChainError):
    """The transaction failed in preflight (`landed=False`) or on chain (`landed=True`)."""

    def __init__(
        self,
        err: Any,
        *,
        landed: bool,
        program_error: ProgramError | None = None,
        logs: Sequence[str] = (),
        signature: str | None = None,
    ) -> None:
        self.err = err
        self.landed = landed
        self.program_error = program_error
        self.logs = list(logs)
        self.signature = signature
        self.retryable = (
            program_error.name in RETRYABLE_PROGRAM_ERRORS
            if program_error is not None
            else err in _RETRYABLE_TX_ERRORS
        )
        where = "on chain" if landed else "in preflight"
        super().__init__(f"transaction failed {where}: {self.reason}")

    @property
    def reason(self) -> str:
        """The program error's IDL name when there is one, else the runtime's error."""
        if self.program_error is not None:
            return str(self.program_error)
        return str(self.err)

    @property
    def error_name(self) -> str:
        """A short machine-readable name: the IDL error name or the runtime error kind."""
        if self.program_error is not None and self.program_error.name is not None:
            return self.program_error.name
        if self.program_error is not None:
            return f"ProgramError{self.program_error.code}"
        if isinstance(self.err, TransactionErrorFieldless):
            return str(self.err).rsplit(".", 1)[-1]
        return type(self.err).__name__


class MarketNotOnChain(ChainError):
    """The market (or the GlobalConfig) has no account yet: retry later."""


class StaleBlockhash(ChainError):
    """Re-signing now would reproduce the spent transaction: wait for a newer blockhash."""


# ------------------------------------------------------------------------------------- stream
class StreamError(ChainError):
    """The program's event stream lost its source; `follow` backs off and backfills again."""


class StreamGapError(StreamError):
    """A listed transaction could not be fetched; continuing would skip it."""


class SubscriptionError(StreamError):
    """The node refused the logs subscription."""


class HistoryGapError(StreamError):
    """The checkpoint is older than the node's transaction history (see chain/stream.py)."""

    def __init__(self, checkpoint: Checkpoint, first_available_slot: int) -> None:
        super().__init__(
            f"checkpoint {checkpoint.signature} (slot {checkpoint.slot}) is older than the "
            f"node's transaction history, which starts at slot {first_available_slot}: the "
            "program's transactions in between cannot be read from this node"
        )
        self.checkpoint = checkpoint
        self.first_available_slot = first_available_slot
