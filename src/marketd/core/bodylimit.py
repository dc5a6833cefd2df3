"""Refuse request bodies over a size before anything parses them (413 problem+json).

A JSON body is read and parsed in full before validation can say it is wrong: without a limit
a 10 MB body costs tens of MB of memory and a parse, eight at once stall the event loop. The
declared ``Content-Length`` is checked first; a chunked body is counted as it arrives and cut
off at the limit. Once refused, whatever the application still tries to send is dropped: the
413 is the answer.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketd.core.errors import PROBLEM_MEDIA_TYPE, BadRequest, Problem


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(scope, send, BadRequest("The Content-Length header is not a number."))
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(scope, send, self._too_large())
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    await _refuse(scope, send, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"Request bodies are limited to {self.max_bytes} bytes.", max_bytes=self.max_bytes
        )


async def _refuse(scope: Scope, send: Send, problem: Problem) -> None:
    payload = json.dumps(problem.body(scope.get("path", ""))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None
