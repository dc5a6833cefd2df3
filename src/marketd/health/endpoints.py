"""Liveness and readiness. (Prometheus metrics have a port of their own:
marketd.core.metrics_server.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from marketd.core.deps import ContainerDep
from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from marketd.core.openapi import problems
from marketd.health.checks import ReadinessProbe

router = APIRouter(tags=["health"])


async def get_readiness_probe(request: Request, container: ContainerDep) -> ReadinessProbe:
    """One probe per app, built at the first /readyz, so its cached result is shared by every
    caller. Async on purpose: FastAPI runs a plain `def` dependency in a thread pool, where two
    first calls could each build a probe."""
    probe: ReadinessProbe | None = getattr(request.app.state, "readiness_probe", None)
    if probe is None or probe.container is not container:
        probe = ReadinessProbe(container)
        request.app.state.readiness_probe = probe
    return probe


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses=problems(
        {503: "`not-ready`: a required dependency is unreachable (`failed`, `checks`)."}
    ),
)
async def readyz(probe: Annotated[ReadinessProbe, Depends(get_readiness_probe)]) -> Response:
    """Ready when the database, Redis, the chain RPC and the IPFS node (each when configured)
    answer within READINESS_TIMEOUT_SECONDS; checks in READINESS_OPTIONAL_CHECKS only degrade.
    One probe's result answers for READINESS_CACHE_SECONDS."""
    readiness = await probe.readiness()
    checks = readiness.details()
    if readiness.ready:
        status = "degraded" if readiness.degraded else "ready"
        return JSONResponse({"status": status, "checks": checks})
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + "not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": "Unreachable: " + ", ".join(readiness.failed) + ".",
        "instance": "/readyz",
        "failed": readiness.failed,
        "checks": checks,
    }
    return JSONResponse(body, status_code=503, media_type=PROBLEM_MEDIA_TYPE)
