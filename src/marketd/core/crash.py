"""An unexpected exception still answers problem+json, inside CORS.

Starlette renders an unhandled exception in its ServerErrorMiddleware, the outermost layer:
outside CORS (a browser sees no `Access-Control-Allow-Origin` and reports a network error
instead of the status) and as `text/plain`. This middleware sits just inside CORS: it logs the
exception with its traceback and answers a 500 problem that says nothing internal. An
exception after the response has started cannot be answered any more: it is logged and
re-raised, and the server closes the connection.
"""

from __future__ import annotations

import json

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

log = structlog.get_logger("marketd.errors")


def internal_error_body(path: str) -> bytes:
    return json.dumps(
        {
            "type": PROBLEM_BASE + "internal-error",
            "title": "Internal server error",
            "status": 500,
            "detail": "The server failed to answer this request; it has been logged.",
            "instance": path,
        }
    ).encode()


class InternalErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            await log.aexception(
                "unhandled exception", method=scope.get("method"), path=scope.get("path")
            )
            if started:
                raise
            body = internal_error_body(scope.get("path", ""))
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
