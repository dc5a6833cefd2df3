"""Responses without a body."""

from __future__ import annotations

from starlette.responses import Response


def no_content() -> Response:
    """A 204: no body and so no content type. (For a 204 route returning None, FastAPI keeps
    its JSON response's `application/json` and the content length of the `null` it drops.)"""
    return Response(status_code=204)
