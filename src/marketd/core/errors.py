"""RFC 9457 problem+json for every failure the API reports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from marketd.core.methods import allow_header, path_methods

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://marketd.dev/problems/"


class Problem(Exception):
    """An error the client can act on; rendered as problem+json with `status`."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
            **self.extra,
        }


class BadRequest(Problem):
    pass


class InvalidTransaction(Problem):
    status, slug, title = 422, "invalid-transaction", "Invalid transaction"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class Unavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"


class BadGateway(Problem):
    status, slug, title = 502, "bad-gateway", "Bad gateway"


class ProblemResponse(JSONResponse):
    """A problem+json body that can always be sent: a lone surrogate in what it echoes (the
    request's path as `instance`, say) becomes `?` instead of failing the encoding."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "replace")


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return ProblemResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


_HTTP_TITLES = {
    400: ("bad-request", "Bad request"),  # FastAPI: a body it cannot parse (nested too deep)
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
}


_PYDANTIC_PREFIXES = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}


def validation_error(error: Mapping[str, Any]) -> dict[str, str]:
    """One entry of a 422's `errors`: the field, a message a client can show, pydantic's code.

    Bad JSON names the body (pydantic's location is a character offset into it, and its message
    the decoder's); a rule's own ValueError text is shown without pydantic's "Value error, "
    prefix."""
    code = str(error["type"])
    if code == "json_invalid":
        return {"field": "body", "message": "request body is not valid JSON", "code": code}
    message = str(error["msg"]).removeprefix(_PYDANTIC_PREFIXES.get(code, ""))
    field = ".".join(str(part) for part in error["loc"])
    return {"field": field, "message": message, "code": code}


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [validation_error(error) for error in exc.errors()]
        if any(error["code"] == "json_invalid" for error in errors):
            detail = "The request body is not valid JSON."
        else:
            detail = "Invalid request: " + ", ".join(e["field"] for e in errors)
        problem = Problem(detail, errors=errors)
        problem.status, problem.slug, problem.title = 422, "validation-error", "Validation error"
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only.
            allow = allow_header(path_methods(request.app.router.routes, request.scope))
            if request.method == "OPTIONS":  # (a CORS preflight is answered before routing)
                return Response(status_code=204, headers={"Allow": allow})
            headers["Allow"] = allow
        slug, title = _HTTP_TITLES.get(exc.status_code, ("http-error", "HTTP error"))
        problem = Problem(str(exc.detail))
        problem.status, problem.slug, problem.title = exc.status_code, slug, title
        problem.headers = headers
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
