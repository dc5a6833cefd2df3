"""Logging as the tests configure it."""

from __future__ import annotations

import structlog


def plain_test_logging() -> None:
    """structlog's defaults with plain tracebacks. With `rich` installed (schemathesis brings
    it) the default renderer prints each logged exception as a rich traceback with every
    frame's locals, which takes tens of milliseconds: a job retrying a failing call in a loop
    then starves the whole session's event loop."""
    structlog.reset_defaults()
    structlog.configure(
        processors=[
            *structlog.get_config()["processors"][:-1],
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )
