"""Operational HTTP endpoints every service serves (`/healthz`, `/readyz`, `/metrics`) and the
lifespan of a service made of `Infra` and outbox relays."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from sirene.schemas.common import ENTITY_ID_PATTERN

from .infra import Infra
from .outbox import OutboxRelay

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ENTITY_ID_PATTERN)]
"""A path parameter holding an entity id (same rule as `sirene.schemas.EntityId`)."""


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


def infra_lifespan(
    infra: Infra,
    *,
    prepare: Sequence[Callable[[], Awaitable[None]]] = (),
    relays: Sequence[OutboxRelay] = (),
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: runs `prepare` (e.g. index creation) in order, starts `infra`, then
    the `relays`; on shutdown stops the relays (in reverse), then `infra`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for step in prepare:
            await step()
        await infra.start()
        for relay in relays:
            relay.start()
        try:
            yield
        finally:
            for relay in reversed(relays):
                await relay.stop()
            await infra.stop()

    return lifespan
