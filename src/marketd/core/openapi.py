"""The OpenAPI document as the API really behaves: problem+json errors, the bearer scheme.

FastAPI documents a `{"detail": [...]}` 422 (`HTTPValidationError`) on every route with a
parameter, whether or not it can fail, and knows nothing of the bearer session, the request
budget or the problem+json bodies `marketd.core.errors` sends. `install_openapi` rewrites the
generated document once, from what each route really does:

- a route that depends on the session dependency carries the `bearerAuth` requirement (Swagger
  UI's Authorize button and lock icons) and can answer 401;
- a route outside the rate limiter's exempt paths can answer 429;
- a route with a body can answer 413 (over MAX_BODY_BYTES) and 400 (a malformed
  Content-Length), both from the body-size limit before anything is parsed;
- a route with a body, or a parameter that can fail validation (a type other than `str`, a
  constraint, a required query parameter), can answer 422;
- everything else a route can answer is declared on its decorator with `problems(...)`;
- the schemas' examples keep their nulls (FastAPI drops every null of the document), and a
  page of a list (`Page[Item]`) is documented with an example built from its item's.

Every one of these errors is the `Problem` component, as `application/problem+json`.
The runtime is untouched: this is documentation only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

BEARER_SCHEME = "bearerAuth"
PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

DEFAULT_DESCRIPTIONS: dict[int, str] = {
    401: (
        "No valid session: `Authorization: Bearer <token>` is missing, or the token is invalid, "
        "expired or revoked (`unauthorized`; the response carries `WWW-Authenticate: Bearer`)."
    ),
    403: "Forbidden (`forbidden`).",
    404: "Not found (`not-found`).",
    400: (
        "The `Content-Length` header is not a number, or the body cannot be parsed at all "
        "(JSON nested too deep) (`bad-request`)."
    ),
    409: "Conflicts with the current state of the resource.",
    413: (
        "The body is larger than the server takes (`payload-too-large`; `max_bytes` says the "
        "limit): refused before it is read."
    ),
    422: (
        "Invalid request (`validation-error`: `errors` lists each invalid input with where it "
        "is, e.g. `body.question` or `query.limit`)."
    ),
    429: (
        "The client's request budget is spent (`rate-limited`): retry after `Retry-After` "
        "seconds. The budget is per signed-in wallet, else per client IP."
    ),
    502: "An upstream source failed.",
    503: "Unavailable.",
}

_RATE_LIMIT_HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds until the budget allows a request again.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Limit": {"description": "Requests per window.", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {
        "description": "Requests left in the window (0 here).",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until one more request is allowed.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": "`<limit>;w=<window seconds>`.",
        "schema": {"type": "string"},
    },
}

PROBLEM_SCHEMAS: dict[str, dict[str, Any]] = {
    "Problem": {
        "title": "Problem",
        "type": "object",
        "description": (
            "RFC 9457 problem details, sent as `application/problem+json` for every error. "
            "Besides the five standard members a problem may carry extension members; those "
            "listed here are the ones marketd sends (each only on the problems named)."
        ),
        "required": ["type", "title", "status", "detail", "instance"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri",
                "description": f"The kind of problem: `{PROBLEM_BASE}<slug>`.",
                "examples": [PROBLEM_BASE + "not-found"],
            },
            "title": {
                "type": "string",
                "description": "Summary of the kind of problem (the same for every occurrence).",
                "examples": ["Not found"],
            },
            "status": {
                "type": "integer",
                "description": "The HTTP status code.",
                "examples": [404],
            },
            "detail": {
                "type": "string",
                "description": "What went wrong in this occurrence, for a person to read.",
                "examples": ["No market with id 5f0c6a7e-3b9e-4b8f-9a51-2f8e1c7d9b10."],
            },
            "instance": {
                "type": "string",
                "description": "The path of the request that failed.",
                "examples": ["/api/markets/5f0c6a7e-3b9e-4b8f-9a51-2f8e1c7d9b10"],
            },
            "errors": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                "description": "`validation-error` (422): one entry per invalid input.",
            },
            "reason": {
                "type": "string",
                "description": (
                    "Machine-readable cause. `malformed-sign-in` (422) and `sign-in-rejected` "
                    "(401): e.g. `invalid_wallet`, `bad_signature`, `expired`, `unknown_nonce`, "
                    "`nonce_used`; `invalid-transaction` (422): e.g. `not_base64`, "
                    "`malformed_transaction`, `amount_too_large`, "
                    "`bad_signature`, `wrong_signer`, `wrong_market`; `snapshot-unavailable` "
                    "(502): what each source answered."
                ),
            },
            "field": {
                "type": "string",
                "description": "`invalid-range` (422): the input at fault.",
            },
            "state": {
                "type": "string",
                "description": (
                    "`voting-closed`, `market-not-trading` (409): the market's current state."
                ),
            },
            "cid": {
                "type": "string",
                "description": "`snapshot-unavailable` (502): the canonical CID asked for.",
            },
            "max_bytes": {
                "type": "integer",
                "description": "`payload-too-large` (413): the largest body taken.",
            },
            "gateways": {
                "type": "array",
                "items": {"type": "string"},
                "description": "`snapshot-unavailable` (502): the gateways that were tried.",
            },
            "failed": {
                "type": "array",
                "items": {"type": "string"},
                "description": "`not-ready` (503 from /readyz): the checks that failed.",
            },
            "checks": {
                "type": "object",
                "additionalProperties": True,
                "description": "`not-ready` (503 from /readyz): the result of every check.",
            },
        },
        "additionalProperties": True,
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "description": "One invalid input of a `validation-error`.",
        "required": ["field", "message", "code"],
        "properties": {
            "field": {
                "type": "string",
                "description": "Where: the location, dot-separated (`body.wallet`, `query.limit`).",
                "examples": ["query.limit"],
            },
            "message": {
                "type": "string",
                "description": "What is wrong, for a person to read.",
                "examples": ["Input should be less than or equal to 100"],
            },
            "code": {
                "type": "string",
                "description": "Machine-readable kind of the error (pydantic's error type).",
                "examples": ["less_than_equal"],
            },
        },
    },
}

BEARER_SECURITY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "A session token from Sign-In With Solana: `POST /api/auth/challenge`, sign the "
        "returned `message` with the wallet, `POST /api/auth/verify`; the answer's `token` "
        "goes in `Authorization: Bearer <token>` until it expires or `POST /api/auth/logout`."
    ),
}


def problem_response(description: str) -> dict[str, Any]:
    """One response of the document: a problem+json body with `description`."""
    content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    return {"description": description, "content": content}


def problems(statuses: Mapping[int, str | None]) -> dict[int | str, dict[str, Any]]:
    """A route decorator's `responses` for the problems the route itself raises, each with
    its description (None: the status's default one). 401, 422 and 429 that come from the
    session, request validation or the rate limiter are added by `install_openapi`."""
    return {
        status: problem_response(description or DEFAULT_DESCRIPTIONS[status])
        for status, description in statuses.items()
    }


# --------------------------------------------------------------------------- route facts


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[RouteContext]:
    """The documented API routes as the app serves them: with the prefixes, tags and
    dependencies of the routers they were included through."""
    for context in iter_route_contexts(routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def depends_on(route: RouteContext, dependency: Callable[..., Any]) -> bool:
    """Whether `dependency` runs for this route (anywhere in its dependency tree)."""
    return any(d.call is dependency for d in _dependants(route.dependant))


def can_fail_validation(route: RouteContext) -> bool:
    """Whether FastAPI's request validation can reject a request to this route: it has a
    body, or a parameter that is required (other than in the path), typed other than `str`,
    or constrained (length, range, pattern...)."""
    if route.body_field is not None:
        return True
    for dependant in _dependants(route.dependant):
        in_path = {id(field) for field in dependant.path_params}
        for field in (
            *dependant.path_params,
            *dependant.query_params,
            *dependant.header_params,
            *dependant.cookie_params,
        ):
            info = field.field_info
            if info.metadata or info.annotation not in (str, str | None):
                return True
            if info.is_required() and id(field) not in in_path:
                return True
    return False


# ------------------------------------------------------------------------- the document


def _merge(responses: dict[str, Any], status: int, description: str) -> dict[str, Any]:
    """Add problem response `status`; what the route declared for it follows `description`."""
    declared = responses.get(str(status), {}).get("description")
    response = problem_response(f"{description} {declared}" if declared else description)
    responses[str(status)] = response
    return response


def _is_fastapi_422(response: dict[str, Any] | None) -> bool:
    """FastAPI's own 422 (`HTTPValidationError`): replaced, or dropped where none can occur."""
    content = (response or {}).get("content", {}).get("application/json", {})
    return str(content.get("schema", {}).get("$ref", "")).endswith("/HTTPValidationError")


def _nullable(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "null" or any(
        branch.get("type") == "null" for branch in schema.get("anyOf", ())
    )


def _restore_nulls(value: Any, schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> None:
    """Put back in an example `value` of `schema` the nulls of its required nullable properties
    (at any depth)."""
    ref = str(schema.get("$ref", ""))
    if ref:
        schema = schemas.get(ref.rsplit("/", 1)[-1], {})
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value and _nullable(properties.get(name, {})):
                value[name] = None
        for name, item in value.items():
            if name in properties:
                _restore_nulls(item, properties[name], schemas)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _restore_nulls(item, schema["items"], schemas)
    for branch in schema.get("anyOf", ()):
        if value is not None and not _nullable(branch):
            _restore_nulls(value, branch, schemas)


def _example_nulls(schemas: dict[str, Any]) -> None:
    """FastAPI encodes the document without its None values (`exclude_none`), the nulls of
    the schemas' examples with them: an example of a market then lacks its required
    `final_outcome`, and no longer validates against its own schema."""
    for schema in schemas.values():
        for example in schema.get("examples", ()):
            _restore_nulls(example, schema, schemas)


def _page_examples(schemas: dict[str, Any]) -> None:
    """A page of a list (`Page[Item]`: `items` and `next_cursor`) without an example of its own
    gets one built from its item's first example: that item alone, no next page. The example
    is written once, on the item's schema, and every list of it documents it."""
    for schema in schemas.values():
        properties = schema.get("properties", {})
        if "examples" in schema or set(properties) != {"items", "next_cursor"}:
            continue
        ref = str(properties["items"].get("items", {}).get("$ref", ""))
        item = schemas.get(ref.rsplit("/", 1)[-1], {})
        if item.get("examples"):
            schema["examples"] = [{"items": item["examples"][:1], "next_cursor": None}]


def document(
    schema: dict[str, Any],
    routes: Sequence[BaseRoute],
    *,
    session_dependency: Callable[..., Any],
    rate_limit_exempt: Collection[str],
    extra_paths: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Rewrite FastAPI's generated `schema` (in place) as the module docstring says."""
    paths: dict[str, Any] = schema.setdefault("paths", {})
    for route in api_routes(routes):
        path = str(route.path_format)
        for method in route.methods or ():
            operation = paths[path][method.lower()]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if _is_fastapi_422(responses.get("422")):
                del responses["422"]
            if depends_on(route, session_dependency):
                operation["security"] = [{BEARER_SCHEME: []}]
                unauthorized = _merge(responses, 401, DEFAULT_DESCRIPTIONS[401])
                unauthorized["headers"] = {
                    "WWW-Authenticate": {
                        "description": "`Bearer`.",
                        "schema": {"type": "string"},
                    }
                }
            if can_fail_validation(route):
                _merge(responses, 422, DEFAULT_DESCRIPTIONS[422])
            if route.body_field is not None:
                for status in (400, 413):
                    _merge(responses, status, DEFAULT_DESCRIPTIONS[status])
            if path not in rate_limit_exempt:
                limited = _merge(responses, 429, DEFAULT_DESCRIPTIONS[429])
                limited["headers"] = _RATE_LIMIT_HEADERS
            operation["responses"] = dict(sorted(responses.items()))
    paths.update(extra_paths or {})
    components: dict[str, Any] = schema.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(PROBLEM_SCHEMAS)
    _example_nulls(schemas)
    _page_examples(schemas)
    components["schemas"] = dict(sorted(schemas.items()))
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = BEARER_SECURITY_SCHEME
    return schema


def install_openapi(
    app: FastAPI,
    *,
    session_dependency: Callable[..., Any],
    rate_limit_exempt: Collection[str],
    extra_paths: Mapping[str, dict[str, Any]] | None = None,
) -> None:
    """Serve the rewritten document at the app's `openapi_url` (built once, on first use)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(
                generate(),
                app.routes,
                session_dependency=session_dependency,
                rate_limit_exempt=rate_limit_exempt,
                extra_paths=extra_paths,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
