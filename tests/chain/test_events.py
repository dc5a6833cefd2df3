"""Program-log parsing: public vectors, invocation stack (CPIs), truncation, program errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

from marketd.chain.errors import ProgramError, parse_custom_error_code
from marketd.chain.events import (
    ParsedLogs,
    ProgramEvent,
    UndecodedEvent,
    parse_program_events,
    parse_program_logs,
    program_error_from_logs,
)
from marketd.chain.idl import Idl, IdlCoder

OTHER = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
SYSTEM = "11111111111111111111111111111111"
MARKET_ID = bytes(range(32))
VOTER = Pubkey.from_string("ASxMiMb1AJGTU4AduPNB2CGqT1TiDqWkLvy7oCUnzw5x")


@pytest.fixture(scope="module")
def events_zmart_coder(zmart_idl_path: Path) -> IdlCoder:
    return IdlCoder(Idl.from_path(zmart_idl_path))


@pytest.fixture(scope="module")
def zmart_id(events_zmart_coder: IdlCoder) -> str:
    assert events_zmart_coder.idl.program_id is not None
    return str(events_zmart_coder.idl.program_id)


def vote_event(vote: bool, timestamp: int) -> dict[str, Any]:
    return {"market_id": MARKET_ID, "user": VOTER, "vote": vote, "timestamp": timestamp}


def data_line(coder: IdlCoder, name: str, value: dict[str, Any]) -> str:
    return "Program data: " + base64.b64encode(coder.encode_event(name, value)).decode()


def invoke(program: str, depth: int) -> str:
    return f"Program {program} invoke [{depth}]"


def success(program: str) -> str:
    return f"Program {program} success"


# ---------------------------------------------------------------------------- public vectors


ANCHOR = Path(__file__).resolve().parents[1] / "fixtures" / "anchor"
EVENT_VECTORS = json.loads((ANCHOR / "vectors.json").read_text())["events"]


def _logs_of(vector: dict[str, Any]) -> list[str]:
    if "logs" in vector:
        return list(vector["logs"])
    program = vector["program_id"]
    return [
        invoke(program, 1),
        "Program log: Instruction: Buy",
        f"Program data: {vector['program_data']}",
        f"Program {program} consumed 1000 of 200000 compute units",
        success(program),
    ]


def _normalise(value: Any) -> Any:
    """Pubkeys as base58, as the vectors spell them."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return str(value) if isinstance(value, Pubkey) else value


def test_the_public_event_vectors_cover_both_idl_formats() -> None:
    assert len(EVENT_VECTORS) == 2


@pytest.mark.parametrize("vector", EVENT_VECTORS, ids=lambda vector: str(vector["idl"]))
def test_public_event_vectors_in_both_idl_formats(vector: dict[str, Any]) -> None:
    coder = IdlCoder(Idl.from_path(ANCHOR / vector["idl"]))
    events = parse_program_events(_logs_of(vector), vector["program_id"], coder)
    assert [{"name": e.name, "data": _normalise(e.data)} for e in events] == vector["expected"]
    assert [e.index for e in events] == list(range(len(events)))


@pytest.mark.parametrize("vector", EVENT_VECTORS, ids=lambda vector: str(vector["idl"]))
def test_public_event_logs_attributed_to_another_program_yield_nothing(
    vector: dict[str, Any],
) -> None:
    coder = IdlCoder(Idl.from_path(ANCHOR / vector["idl"]))
    assert parse_program_logs(_logs_of(vector), OTHER, coder) == ParsedLogs()


# ---------------------------------------------------------------------------- invocation stack


def test_zmart_events_with_index_and_program_id_as_pubkey(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    logs = [
        invoke(zmart_id, 1),
        "Program log: Instruction: SubmitProposalVote",
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 10)),
        "Program return: " + zmart_id + " AQ==",
        success(zmart_id),
    ]
    events = parse_program_events(logs, Pubkey.from_string(zmart_id), events_zmart_coder)
    assert events == [ProgramEvent("ProposalVoteSubmitted", vote_event(True, 10), 0)]


def test_data_from_programs_we_call_is_ignored(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    foreign = data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(False, 99))
    logs = [
        invoke(zmart_id, 1),
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 1)),
        invoke(SYSTEM, 2),
        success(SYSTEM),
        invoke(OTHER, 2),
        foreign,  # same bytes as one of our events, but emitted by the callee
        invoke(SYSTEM, 3),
        success(SYSTEM),
        foreign,
        f"Program {OTHER} consumed 10 of 100 compute units",
        success(OTHER),
        data_line(events_zmart_coder, "DisputeVoteSubmitted", vote_event(False, 2)),
        success(zmart_id),
    ]
    events = parse_program_events(logs, zmart_id, events_zmart_coder)
    assert [(e.name, e.data["timestamp"], e.index) for e in events] == [
        ("ProposalVoteSubmitted", 1, 0),
        ("DisputeVoteSubmitted", 2, 1),
    ]


def test_our_program_called_through_cpi(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    foreign = data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(False, 99))
    logs = [
        invoke(OTHER, 1),
        foreign,
        invoke(zmart_id, 2),
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 5)),
        success(zmart_id),
        foreign,
        success(OTHER),
        invoke(zmart_id, 1),  # a second top-level instruction of the same transaction
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 6)),
        success(zmart_id),
    ]
    events = parse_program_events(logs, zmart_id, events_zmart_coder)
    assert [(e.data["timestamp"], e.index) for e in events] == [(5, 0), (6, 1)]


def test_invoke_depth_resynchronises_after_missing_exit_lines(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    foreign = data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(False, 99))
    logs = [
        invoke(zmart_id, 1),
        invoke(SYSTEM, 2),  # no exit line for either
        invoke(OTHER, 1),
        foreign,
        success(OTHER),
        f"Program {SYSTEM} success",  # an exit for a program no longer on the stack
        foreign,
    ]
    assert parse_program_events(logs, zmart_id, events_zmart_coder) == []


def test_look_alike_lines_are_not_events(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    payload = data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 1))
    logs = [
        invoke(zmart_id, 1),
        "Program log: " + payload,
        "Program consumption: 1399850 units remaining",
        f"Program {zmart_id} consumed 5 of 10 compute units",
        success(zmart_id),
        payload,  # emitted outside any invocation
    ]
    assert parse_program_logs(logs, zmart_id, events_zmart_coder) == ParsedLogs()


def test_failed_invocation_pops_the_stack(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    logs = [
        invoke(zmart_id, 1),
        invoke(OTHER, 2),
        f"Program {OTHER} failed: custom program error: 0x1",
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 3)),
        f"Program {zmart_id} failed: custom program error: 0x1",
    ]
    events = parse_program_events(logs, zmart_id, events_zmart_coder)
    assert [e.data["timestamp"] for e in events] == [3]


def test_multiple_base64_chunks_are_concatenated(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    encoded = events_zmart_coder.encode_event("ProposalVoteSubmitted", vote_event(True, 4))
    chunks = " ".join(base64.b64encode(part).decode() for part in (encoded[:8], encoded[8:]))
    logs = [invoke(zmart_id, 1), f"Program data: {chunks}", success(zmart_id)]
    events = parse_program_events(logs, zmart_id, events_zmart_coder)
    assert events == [ProgramEvent("ProposalVoteSubmitted", vote_event(True, 4), 0)]


# ------------------------------------------------------------------- truncation and bad data


def test_log_truncated_stops_parsing(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    logs = [
        invoke(zmart_id, 1),
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 1)),
        "Log truncated",
        data_line(events_zmart_coder, "ProposalVoteSubmitted", vote_event(True, 2)),
    ]
    parsed = parse_program_logs(logs, zmart_id, events_zmart_coder)
    assert parsed.truncated
    assert [e.data["timestamp"] for e in parsed.events] == [1]
    assert parse_program_events(logs, zmart_id, events_zmart_coder) == parsed.events


def test_undecodable_data_is_reported_and_keeps_its_index(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    good = events_zmart_coder.encode_event("ProposalVoteSubmitted", vote_event(True, 7))
    lines = {
        "bad base64": "Program data: !!not-base64!!",
        "unknown event": "Program data: " + base64.b64encode(bytes(16)).decode(),
        "short body": "Program data: " + base64.b64encode(good[:-1]).decode(),
    }
    logs = [
        invoke(zmart_id, 1),
        *lines.values(),
        "Program data: " + base64.b64encode(good).decode(),
    ]
    seen: list[UndecodedEvent] = []
    events = parse_program_events(logs, zmart_id, events_zmart_coder, on_error=seen.append)
    assert events == [ProgramEvent("ProposalVoteSubmitted", vote_event(True, 7), 3)]
    assert [u.index for u in seen] == [0, 1, 2]
    assert [u.payload for u in seen] == [
        line.removeprefix("Program data: ") for line in lines.values()
    ]
    assert "invalid base64" in seen[0].reason
    assert seen[1].reason == "not an event of this IDL"
    assert "needs 8 bytes" in seen[2].reason
    assert parse_program_logs(logs, zmart_id, events_zmart_coder).undecoded == seen


def test_no_callback_still_returns_decodable_events(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    logs = [invoke(zmart_id, 1), "Program data: %%%", success(zmart_id)]
    assert parse_program_events(logs, zmart_id, events_zmart_coder) == []


# ---------------------------------------------------------------------------- program errors


def test_program_error_resolved_from_the_idl(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    known = events_zmart_coder.error_for_code(6000)
    assert known is not None
    logs = [
        invoke(zmart_id, 1),
        f"Program log: AnchorError occurred. Error Code: {known.name}. Error Number: 6000. "
        "Error Message: x.",
        f"Program {zmart_id} consumed 5 of 10 compute units",
        f"Program {zmart_id} failed: custom program error: 0x1770",
    ]
    error = program_error_from_logs(logs, zmart_id, events_zmart_coder)
    assert error is not None
    assert (error.code, error.name, error.msg) == (6000, known.name, known.msg)
    assert str(error) == f"{known.name} (6000): {known.msg}"


def test_anchor_framework_error_named_from_the_log(
    events_zmart_coder: IdlCoder, zmart_id: str
) -> None:
    logs = [
        invoke(zmart_id, 1),
        "Program log: AnchorError caused by account: market. Error Code: AccountNotInitialized. "
        "Error Number: 3012. Error Message: The program expected this account to be already "
        "initialized.",
        f"Program {zmart_id} failed: custom program error: 0xbc4",
    ]
    error = program_error_from_logs(logs, Pubkey.from_string(zmart_id), events_zmart_coder)
    assert error is not None
    assert (error.code, error.name, error.msg) == (3012, "AccountNotInitialized", None)


def test_unknown_code_without_anchor_log(events_zmart_coder: IdlCoder, zmart_id: str) -> None:
    logs = [invoke(zmart_id, 1), f"Program {zmart_id} failed: custom program error: 0x2a"]
    error = program_error_from_logs(logs, zmart_id, events_zmart_coder)
    assert error is not None
    assert (error.code, error.name) == (42, None)
    assert str(error) == "unknown program error (42)"


@pytest.mark.parametrize(
    "tail",
    [
        # the failure started in a program we called: its code is not ours
        [
            invoke(SYSTEM, 2),
            f"Program {SYSTEM} failed: custom program error: 0x1",
            "Program {ours} failed: custom program error: 0x1",
        ],
        # a runtime failure without an error code
        ["Program {ours} failed: invalid account data for instruction"],
        # success
        ["Program {ours} success"],
    ],
)
def test_no_program_error_of_ours(
    events_zmart_coder: IdlCoder, zmart_id: str, tail: list[str]
) -> None:
    logs = [invoke(zmart_id, 1), *(line.replace("{ours}", zmart_id) for line in tail)]
    assert program_error_from_logs(logs, zmart_id, events_zmart_coder) is None


def test_parse_custom_error_code() -> None:
    assert parse_custom_error_code("failed: custom program error: 0x1770") == 6000
    assert parse_custom_error_code("custom program error: 0xBC4") == 3012
    assert parse_custom_error_code("failed: invalid program argument") is None


def test_program_error_is_an_exception() -> None:
    with pytest.raises(ProgramError, match=r"Closed \(6000\): market closed"):
        raise ProgramError(6000, "Closed", "market closed")
