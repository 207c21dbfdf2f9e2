"""Operational HTTP endpoints every service serves: `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from .infra import Infra


def ops_router(infra: Infra) -> APIRouter:
    """Liveness (process up), readiness (Kafka, MongoDB, Redis answer) and Prometheus metrics."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": infra.settings.service_name}

    @router.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await infra.check()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router
