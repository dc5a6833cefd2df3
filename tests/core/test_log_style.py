"""One log-event style over src/ (README, "Contributing"): the event is a plain lowercase phrase
saying what happened, every value a keyword argument (`log.warning("job crashed; restarting",
job=name)`), so that JSON logs carry the values as fields and one event is one searchable text."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "marketd"
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
METHODS = LEVELS | {"a" + level for level in LEVELS}  # structlog's async variants
LOGGER = re.compile(r"(^|\.)_?log(ger)?$")  # log, logger, self.log
IDENTIFIER = re.compile(r"[a-z0-9]+([_.][a-z0-9]+)+")  # trade_relay_failed, relay.failed
PLACEHOLDER = re.compile(r"%[-#0 +]*\d*(\.\d+)?[sdrfixX]|\{\w*\}")


@dataclass(frozen=True)
class LogCall:
    where: str
    event: ast.expr | None
    positional: int


def log_calls(source: str, where: str) -> list[LogCall]:
    """Every `<logger>.<level>(...)` call of a module."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in METHODS
            and LOGGER.search(ast.unparse(node.func.value))
        ):
            event = node.args[0] if node.args else None
            calls.append(LogCall(f"{where}:{node.lineno}", event, len(node.args)))
    return calls


def breaks_style(call: LogCall) -> str | None:
    """Why the call's event breaks the style (None: it keeps it)."""
    if call.positional != 1 or call.event is None:
        return "one positional argument, the event; values go as keywords"
    if not isinstance(call.event, ast.Constant) or not isinstance(call.event.value, str):
        return "the event is a string literal (no f-string, concatenation or format call)"
    event = call.event.value
    if PLACEHOLDER.search(event):
        return "no placeholders in the event; values go as keywords"
    if IDENTIFIER.fullmatch(event):
        return "a phrase in words, not an identifier"
    return None


def src_log_calls() -> list[LogCall]:
    return [
        call
        for path in sorted(SRC.rglob("*.py"))
        for call in log_calls(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    ]


def test_every_log_event_in_src_is_a_phrase_with_keyword_values() -> None:
    calls = src_log_calls()
    assert len(calls) > 50  # the scan finds src's loggers
    offenders = [f"{call.where}: {why}" for call in calls if (why := breaks_style(call))]
    assert offenders == []


@pytest.mark.parametrize(
    "line",
    [
        'log.info("job starting", job=name)',
        'await log.awarning("lock release failed; it expires", lock=name)',
        'self.log.info("request", method=method)',
        'log.exception("chain event stream failed; reconnecting")',
        'log.warning("no SOLANA_RPC_URL: chain jobs are off")',
    ],
)
def test_phrases_with_keyword_values_keep_the_style(line: str) -> None:
    [call] = log_calls(line, "example")
    assert breaks_style(call) is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('log.info("trade_relay_failed", signature=s)', "not an identifier"),
        ('log.info("chain.outbox.retry")', "not an identifier"),
        ('log.warning("upload confirmed by %s", name)', "one positional argument"),
        ('log.warning("gateway %s failed")', "no placeholders"),
        ('log.info("market {market_id} approved")', "no placeholders"),
        ('log.info(f"market {market_id} approved")', "string literal"),
        ('log.info("market " + market_id)', "string literal"),
        ("logger.error(message)", "string literal"),
        ("log.info()", "one positional argument"),
    ],
)
def test_identifiers_placeholders_and_built_events_break_it(line: str, why: str) -> None:
    [call] = log_calls(line, "example")
    reason = breaks_style(call)
    assert reason is not None and why in reason


def test_other_calls_named_like_levels_are_not_log_calls() -> None:
    assert log_calls("warnings.warn('x'); self._log.append_many(events); bus.info('x')", "x") == []
