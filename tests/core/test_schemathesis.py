"""Schemathesis against the app's own /openapi.json, in process, on both backends (#19).

For every operation, schemathesis generates requests from the document (those of routes with
a security requirement carry a real session; logout a session of its own) and each answer must
be no 5xx, with a status, a content type, the headers and a body the document lists for the
operation. Examples are bounded per operation (`PASSES`) and derandomized, so a run is
reproducible and its cost fixed: ~900 requests per backend, 12 s embedded and 17 s on
PostgreSQL + Redis (16 s and 20 s under coverage).

Hypothesis drives a synchronous test, and the app lives on the test's event loop: the examples
run in a worker thread, and each request is handed to the loop (`run_coroutine_threadsafe`)
while the test awaits that thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

PASSES = {
    "valid": (GenerationMode.POSITIVE, 25),
    "invalid": (GenerationMode.NEGATIVE, 10),
    "known market": (GenerationMode.POSITIVE, 15),
}
"""Examples per operation and backend: requests the document allows, requests it says are
invalid (each must get a documented 4xx), and, for the routes of one market, requests about a
market that exists (generated ids are unknown ones: 404 before the other inputs are used)."""

T = TypeVar("T")
LOGOUT = "/api/auth/logout"

SKIPPED = {"/ws", "/readyz"}
"""`/ws` is a WebSocket (its protocol has tests of its own); `/readyz` probes the chain RPC and
the IPFS node, which the test settings point nowhere (its 503 has tests of its own)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _request(case: schemathesis.Case, session: dict[str, str]) -> dict[str, Any]:
    """The httpx arguments of `case`, signed in when the operation has a security requirement."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    if case.operation.definition.raw.get("security"):
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **session}
    if "data" in kwargs:  # bytes as requests takes them: httpx calls them content
        kwargs["content"] = kwargs.pop("data")
    for unused in ("auth", "timeout", "cookies"):  # no route takes cookies
        kwargs.pop(unused, None)
    return kwargs


async def test_the_api_answers_as_its_document_says(api: Any) -> None:
    _, session = await api.sign_in()
    document = (await api.client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    loop = asyncio.get_running_loop()
    client: httpx.AsyncClient = api.client
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path not in SKIPPED
    ]
    assert len(operations) >= 20
    market = await api.market(session)  # a PROPOSED market for the market routes
    tried: dict[tuple[str, str], list[int]] = {}

    def on_loop(work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=60)

    def run(operation: Any, pass_name: str) -> None:
        mode, count = PASSES[pass_name]
        known = {}
        if pass_name == "known market":
            known = {"path_parameters": {"market_id": market}}

        @settings(
            max_examples=count,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, **known))
        def examples(case: schemathesis.Case) -> None:
            signed_in = session
            if operation.path == LOGOUT:  # a session of its own: logging out ends it
                signed_in = on_loop(api.sign_in())[1]
            kwargs = _request(case, signed_in)
            response = on_loop(client.request(**kwargs))
            tried.setdefault((pass_name, operation.label), []).append(response.status_code)
            case.validate_response(response, checks=CHECKS, headers=kwargs.get("headers"))

        try:
            examples()
        except Unsatisfiable:
            # Negative: the operation has nothing that can be made invalid (no parameter,
            # no body; or only free text).
            assert mode is GenerationMode.NEGATIVE, operation.label

    def run_all(runs: list[Callable[[], None]]) -> None:
        for one in runs:
            one()

    runs = [
        lambda op=op, name=name: run(op, name)
        for op in operations
        for name in PASSES
        if name != "known market" or "{market_id}" in op.path
    ]
    await asyncio.to_thread(run_all, runs)
    positive = {label for name, label in tried if name == "valid"}
    assert positive == {operation.label for operation in operations}
    assert sum(name == "invalid" for name, _ in tried) >= 15
    assert sum(name == "known market" for name, _ in tried) == 7
    # The session is real: proposals are created, a known market's pages are read.
    assert 201 in tried[("valid", "POST /api/markets")]
    assert 200 in tried[("known market", "GET /api/markets/{market_id}/prices")]
