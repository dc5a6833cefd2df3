"""Which methods a path takes, for `Allow` (OPTIONS, 405) and CORS preflights.

Starlette answers a method a path does not take with the `Allow` of the first route whose path
matched: `/api/markets` (GET and POST, two routes) said `Allow: GET`. And the CORS middleware
answers every preflight with one list for the whole API, so a preflight for DELETE on a path
that takes none was allowed. Both now come from the routes of the requested path.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


def path_methods(routes: Sequence[BaseRoute], scope: Scope) -> tuple[str, ...]:
    """The methods of every HTTP route whose path matches `scope`'s, sorted (empty: no route
    has this path)."""
    probe = {**scope, "type": "http"}
    methods: set[str] = set()
    for route in iter_route_contexts(routes):  # with the prefixes of the included routers
        if route.methods:
            match, _ = route.matches(probe)
            if match is not Match.NONE:
                methods |= route.methods
    return tuple(sorted(methods))


def allow_header(methods: Collection[str]) -> str:
    """`Allow` of a path with `methods`: those and OPTIONS, which every path answers."""
    return ", ".join(sorted({*methods, "OPTIONS"}))


class RouteCORSMiddleware:
    """CORS whose preflight allows exactly the methods of the requested path's routes (a
    preflight for another method, or for a path with no route, is refused as Starlette refuses
    a disallowed method: 400). Simple requests are Starlette's CORS unchanged."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        allow_origins: Sequence[str],
        allow_headers: Sequence[str],
        expose_headers: Sequence[str],
        max_age: int,
    ) -> None:
        self.app = app
        self.routes = routes
        self.options: dict[str, Any] = {
            "allow_origins": allow_origins,
            "allow_headers": allow_headers,
            "expose_headers": expose_headers,
            "max_age": max_age,
        }
        self.simple = CORSMiddleware(app, **self.options)  # never sees a preflight
        self._preflights: dict[tuple[str, ...], CORSMiddleware] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                await self._preflight(path_methods(self.routes, scope))(scope, receive, send)
                return
        await self.simple(scope, receive, send)

    def _preflight(self, methods: tuple[str, ...]) -> CORSMiddleware:
        cors = self._preflights.get(methods)
        if cors is None:  # one per distinct method set: a handful for the whole API
            cors = CORSMiddleware(self.app, **(self.options | {"allow_methods": methods}))
            self._preflights[methods] = cors
        return cors
