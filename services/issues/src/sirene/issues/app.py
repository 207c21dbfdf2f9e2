"""Composition root of issues: builds every client once and wires routes and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from sirene.runtime import Infra, ops_router
from sirene.runtime.errors import install_error_handlers
from sirene.schemas import NOTIFICATION_REQUESTED

from . import metrics, service
from .api import Context, admin, public, staff
from .handlers import register_handlers
from .limits import Limiter
from .notify import NotificationRelay
from .open311 import build_router
from .portal import router as portal_router
from .repository import Repository
from .settings import IssuesSettings
from .signin import LoginGuard, Sessions
from .stats import ReportGauges


def create_app(settings: IssuesSettings | None = None, **overrides: Any) -> FastAPI:
    """The issues app. `overrides` replace settings fields (handy in tests)."""
    settings = IssuesSettings.resolve(settings, **overrides)
    infra = Infra(settings, topics=[NOTIFICATION_REQUESTED])
    repo = Repository(infra.db)
    relay = NotificationRelay(
        repo=repo, producer=infra.producer, interval_s=settings.notify_interval_s
    )
    register_handlers(infra)
    gauges = ReportGauges(repo, list(settings.api_tokens))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await repo.ensure_indexes()
        for tenant in settings.api_tokens:
            await service.ensure_tenant_defaults(repo=repo, tenant=tenant)
        await infra.start()
        relay.start()
        gauges.start()
        try:
            yield
        finally:
            await gauges.stop()
            await relay.stop()
            await infra.stop()

    app = FastAPI(
        title="Sirene issues",
        description="Citizen reports of problems in public space (Mängelmelder), Open311 "
        "GeoReport v2, routing to departments, status workflow with notifications.",
        version="0.2.0",
        lifespan=lifespan,
    )
    app.state.ctx = Context(
        settings=settings,
        repo=repo,
        limiter=Limiter(infra.redis),
        relay=relay,
        sessions=Sessions(infra.redis, ttl_s=settings.session_ttl_s),
        logins=LoginGuard(
            infra.redis, limit=settings.login_max_failures, window_s=settings.login_window_s
        ),
    )
    app.state.infra = infra
    install_error_handlers(app, catalogue=service.MESSAGES, rejected=metrics.REJECTED)
    app.include_router(ops_router(infra))
    # staff and admin paths first: `/api/v1/admin/config` must never be read as the public
    # `/api/v1/{tenant}/config` of a tenant called "admin"
    app.include_router(admin)
    app.include_router(staff)
    app.include_router(public)
    app.include_router(build_router())
    app.include_router(portal_router)
    app.mount(
        "/portal/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="portal-static",
    )
    app.mount(
        "/portal/assets/leaflet",
        StaticFiles(directory=settings.assets_dir / "leaflet" / "dist", check_dir=False),
        name="portal-leaflet",
    )
    return app
