"""Liveness and readiness. (Prometheus metrics have a port of their own:
marketd.core.metrics_server.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from marketd.core.deps import ContainerDep
from marketd.core.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from marketd.health.checks import ReadinessSettings, check_readiness

router = APIRouter(tags=["health"])


def get_readiness_settings() -> ReadinessSettings:
    """Read per probe, so a changed environment needs no restart; overridable in tests."""
    return ReadinessSettings()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable"}})
async def readyz(
    container: ContainerDep,
    config: Annotated[ReadinessSettings, Depends(get_readiness_settings)],
) -> Response:
    """Ready when the database, Redis, the chain RPC and the IPFS node (each when configured)
    answer within READINESS_TIMEOUT_SECONDS; checks in READINESS_OPTIONAL_CHECKS only degrade."""
    readiness = await check_readiness(container, config)
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
