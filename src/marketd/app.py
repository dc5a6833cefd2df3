"""Composition root: builds the container from settings and wires the HTTP application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from marketd import __version__
from marketd.activity.endpoints import router as activity_router
from marketd.auth.dependencies import RequestCaller, require_wallet
from marketd.auth.endpoints import router as auth_router
from marketd.auth.origin import require_configured_domain
from marketd.config import Settings
from marketd.core.bodylimit import BodyLimitMiddleware
from marketd.core.container import Container
from marketd.core.crash import InternalErrorMiddleware
from marketd.core.docs import Document, install_docs
from marketd.core.errors import install_error_handlers
from marketd.core.gc_tuning import tune_garbage_collector
from marketd.core.jobs import JobHost
from marketd.core.logging import AccessLogMiddleware
from marketd.core.methods import RouteCORSMiddleware
from marketd.core.metrics_server import start_metrics_server
from marketd.core.openapi import install_openapi
from marketd.core.ratelimit import EXEMPT_PATHS, RateLimitMiddleware
from marketd.discussions.endpoints import router as discussions_router
from marketd.health.endpoints import router as health_router
from marketd.markets.endpoints import router as markets_router
from marketd.realtime.docs import (
    OPERATION_ID,
    PROTOCOL_MEDIA_TYPE,
    PROTOCOL_PATH,
    protocol_markdown,
    websocket_path_item,
)
from marketd.realtime.endpoints import router as realtime_router
from marketd.realtime.service import Realtime
from marketd.snapshots.endpoints import router as snapshots_router
from marketd.trades.endpoints import router as trades_router
from marketd.users.endpoints import router as users_router
from marketd.votes.endpoints import router as votes_router
from marketd.worker import build_jobs, chain_services

DESCRIPTION = f"""Off-chain backend of the zmart prediction-market platform on Solana.

Errors are RFC 9457 `application/problem+json` (the `Problem` schema); each route lists the
ones it can answer. Text anywhere (path, query, body, cursor) must not hold NUL or lone
surrogates, and moments must lie from 1970 to before 9999 (UTC): else a 422. A failure of the
server itself is a 500 problem (`internal-error`) that says nothing more.

Lists are cursor-paginated: pass the `next_cursor` of a page back as `cursor`. Amounts are
integers (lamports; shares with 9 decimals); prices are decimal strings.

Routes with a lock need `Authorization: Bearer <token>` from Sign-In With Solana
(`/api/auth/challenge`, then `/api/auth/verify`): paste the token under **Authorize**.
Every route except `/healthz` and `/readyz` spends the client's request budget (per wallet
when signed in, else per IP); each answer carries `RateLimit-*` headers, and a spent budget
answers 429.

**Live events**: the WebSocket `/ws` (subscribe to markets, resume with `sinceSeq`). Its
protocol is under [realtime](#/realtime/{OPERATION_ID}) below, and as a
[markdown document]({PROTOCOL_PATH}).
"""


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    run_jobs: bool = False,
) -> FastAPI:
    """The API; with `run_jobs` the process also runs the background jobs (`marketd run`)."""
    settings = settings or (container.settings if container else Settings())
    require_configured_domain(settings)
    owns_container = container is None
    container = container or Container.build(settings)
    log = structlog.get_logger("marketd")
    realtime = Realtime(container)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await log.ainfo(
            "starting",
            database="embedded sqlite" if settings.is_embedded_database else "postgresql",
            redis=container.redis is not None,
            jobs=run_jobs,
        )
        async with contextlib.AsyncExitStack() as stack:
            if settings.metrics_port is not None:
                metrics = start_metrics_server(
                    settings.metrics_host, settings.metrics_port, candidates=settings.workers
                )
                stack.callback(metrics.close)
                app.state.metrics_server = metrics
                await log.ainfo("metrics", address=f"{settings.metrics_host}:{metrics.port}")
            await realtime.start()
            stack.push_async_callback(realtime.stop)  # after the jobs stop: close frames last
            if run_jobs:
                chain = await stack.enter_async_context(chain_services(container))
                host = JobHost(build_jobs(container, chain))
                host.start()
                stack.push_async_callback(host.stop)
            yield
        if owns_container:
            await container.close()

    app = FastAPI(
        title="marketd",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs and /redoc without a CDN
        redoc_url=None,
        # Metrics are Prometheus (marketd.core.metrics); FastAPI's native OpenTelemetry would
        # look up the global providers, in the environment, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.container = container
    app.state.realtime = realtime
    install_error_handlers(app)
    install_docs(app, documents={PROTOCOL_PATH: Document(protocol_markdown(), PROTOCOL_MEDIA_TYPE)})
    install_openapi(
        app,
        session_dependency=require_wallet,
        rate_limit_exempt=EXEMPT_PATHS,
        extra_paths={"/ws": websocket_path_item()},
    )
    for router in (
        health_router,
        auth_router,
        markets_router,
        activity_router,
        votes_router,
        discussions_router,
        trades_router,
        users_router,
        snapshots_router,
        realtime_router,
    ):
        app.include_router(router)

    # Outermost last: CORS answers preflights before the limiter counts them; the limiter
    # counts a flood of oversized bodies before they are refused unread; an unexpected
    # exception anywhere inside CORS answers a problem+json 500 with the CORS headers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=container.limiter,
        sign_in=container.sign_in_limiter,
        caller=RequestCaller(container),
        wallets=container.address_wallets,
    )
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(
        RouteCORSMiddleware,
        routes=app.router.routes,  # a preflight allows the methods of the path it asks about
        allow_origins=settings.cors_origins,
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
        max_age=600,
    )
    app.add_middleware(AccessLogMiddleware)
    return app


def create_served_app(settings: Settings | None = None, *, run_jobs: bool = False) -> FastAPI:
    """The app of a serving process (`serve`, `run`; with WORKERS > 1 uvicorn calls this
    factory in each worker, which builds its settings from the environment): the app, then the
    process's garbage collector tuned."""
    app = create_app(settings, run_jobs=run_jobs)
    tune_garbage_collector()
    return app
