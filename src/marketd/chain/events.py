"""Anchor events and program errors from a transaction's log messages.

The runtime writes one line per step::

    Program <id> invoke [<depth>]        a program starts (depth 1 = top-level instruction)
    Program log: <text>                  msg! from the running program
    Program data: <base64> [<base64>..]  sol_log_data from the running program (Anchor `emit!`)
    Program return: <id> <base64>        set_return_data
    Program <id> consumed N of M compute units
    Program <id> success | Program <id> failed: <reason>
    Log truncated                        the runtime's log limit was hit; nothing follows

A program cannot forge these lines (its own text always comes after "Program log: "), so an
invocation stack rebuilt from them tells which program emitted each "Program data:" line. Only
lines emitted while *our* program is the running one (top of the stack) are decoded; data from
programs it calls, or that call it, is ignored.

Event index: every "Program data:" line of our program takes the next index, whether or not it
decodes. Indices therefore stay stable when a newer IDL learns to decode more events, which is
what the indexer's (tx signature, event index) idempotency key needs.

Failed transactions: their logs are parsed like any other; the events in them never happened on
chain, so callers must skip transactions whose meta reports an error.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from solders.pubkey import Pubkey

from marketd.chain.errors import CoderError, ProgramError, parse_custom_error_code
from marketd.chain.idl import IdlCoder

_INVOKE = re.compile(r"Program (\S+) invoke \[(\d+)\]")
_EXIT = re.compile(r"Program (\S+) (success|failed: (.*))")
_ANCHOR_ERROR = re.compile(r"Program log: AnchorError .*?Error Code: (\w+)\. Error Number: (\d+)\.")
_DATA_PREFIX = "Program data: "
_TRUNCATED = "Log truncated"


@dataclass(frozen=True)
class ProgramEvent:
    name: str
    data: dict[str, Any]
    index: int  # position among this transaction's "Program data:" lines of the program


@dataclass(frozen=True)
class UndecodedEvent:
    """A "Program data:" line of our program that is not a decodable event of the IDL."""

    index: int
    payload: str  # the text after "Program data: "
    reason: str


@dataclass(frozen=True)
class ParsedLogs:
    events: list[ProgramEvent] = field(default_factory=list)
    undecoded: list[UndecodedEvent] = field(default_factory=list)
    truncated: bool = False  # "Log truncated": events after the limit are missing


class _InvocationStack:
    """Which program is running, rebuilt from invoke/exit lines."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    @property
    def current(self) -> str | None:
        return self.frames[-1] if self.frames else None

    def feed(self, line: str) -> tuple[str, str] | None:
        """Track one line; on an exit line return (program, "success" or the failure reason)."""
        if invoke := _INVOKE.fullmatch(line):
            # The depth resynchronises the stack even if an exit line went missing.
            del self.frames[int(invoke.group(2)) - 1 :]
            self.frames.append(invoke.group(1))
        elif exit_ := _EXIT.fullmatch(line):
            program = exit_.group(1)
            if program in self.frames:
                del self.frames[len(self.frames) - 1 - self.frames[::-1].index(program) :]
            return program, exit_.group(3) or exit_.group(2)
        return None


def _decode_payload(payload: str) -> bytes:
    """Base64 chunks of one sol_log_data call, concatenated (Anchor writes a single chunk)."""
    return b"".join(base64.b64decode(chunk, validate=True) for chunk in payload.split())


def parse_program_logs(
    logs: Sequence[str], program_id: Pubkey | str, coder: IdlCoder
) -> ParsedLogs:
    """Events emitted by `program_id`, what of its data did not decode, and truncation."""
    ours = str(program_id)
    stack = _InvocationStack()
    result = ParsedLogs()
    index = 0
    for line in logs:
        if line.startswith(_TRUNCATED):
            return ParsedLogs(result.events, result.undecoded, truncated=True)
        if line.startswith(_DATA_PREFIX):
            if stack.current == ours:
                payload = line[len(_DATA_PREFIX) :]
                _decode_into(result, index, payload, coder)
                index += 1
            continue
        stack.feed(line)
    return result


def _decode_into(result: ParsedLogs, index: int, payload: str, coder: IdlCoder) -> None:
    try:
        decoded = coder.decode_event(_decode_payload(payload))
    except (binascii.Error, ValueError) as exc:
        result.undecoded.append(UndecodedEvent(index, payload, f"invalid base64: {exc}"))
        return
    except CoderError as exc:
        result.undecoded.append(UndecodedEvent(index, payload, str(exc)))
        return
    if decoded is None:
        result.undecoded.append(UndecodedEvent(index, payload, "not an event of this IDL"))
    else:
        result.events.append(ProgramEvent(decoded[0], decoded[1], index))


def parse_program_events(
    logs: Sequence[str],
    program_id: Pubkey | str,
    coder: IdlCoder,
    *,
    on_error: Callable[[UndecodedEvent], None] | None = None,
) -> list[ProgramEvent]:
    """Decoded events of `program_id`, in order; `on_error` sees each line that did not decode.

    Parsing stops quietly at "Log truncated"; use `parse_program_logs` to learn that it did.
    """
    parsed = parse_program_logs(logs, program_id, coder)
    if on_error is not None:
        for undecoded in parsed.undecoded:
            on_error(undecoded)
    return parsed.events


def program_error_from_logs(
    logs: Sequence[str], program_id: Pubkey | str, coder: IdlCoder
) -> ProgramError | None:
    """The error that failed the transaction, when it came from `program_id` itself.

    The first "failed:" line is where the failure started (callers then fail with it too); a
    failure that started in another program, or one without an error code, yields None. The name
    and message come from the IDL `errors` list, else from Anchor's "AnchorError ..." log line
    (which also names Anchor's own framework errors, codes below 6000).
    """
    ours = str(program_id)
    stack = _InvocationStack()
    anchor_names: dict[int, str] = {}
    for line in logs:
        if stack.current == ours and (anchor := _ANCHOR_ERROR.match(line)):
            anchor_names[int(anchor.group(2))] = anchor.group(1)
        exited = stack.feed(line)
        if exited is None or exited[1] == "success":
            continue
        program, reason = exited
        code = parse_custom_error_code(reason)
        if program != ours or code is None:
            return None
        known = coder.error_for_code(code)
        if known is not None:
            return ProgramError(code, known.name, known.msg)
        return ProgramError(code, anchor_names.get(code))
    return None
