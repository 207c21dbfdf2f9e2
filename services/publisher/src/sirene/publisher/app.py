"""Composition root of the publisher: builds every client once and wires routes, consumers,
the alert outbox relay, the scheduler, the staff console and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan, ops_router
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import ALERT_FANOUT, ALERT_PUBLISHED, DEAD_LETTER, DELIVERY_RECEIPT

from . import metrics
from .accounts import LoginGuard, Sessions
from .api import Context, install_error_handlers, public_router, router, staff_router
from .console import install_console
from .handlers import register_handlers
from .repository import Repository
from .scheduler import Scheduler
from .service import alert_event
from .settings import PublisherSettings


def create_app(settings: PublisherSettings | None = None, **overrides: Any) -> FastAPI:
    """The publisher app. `overrides` replace settings fields (handy in tests)."""
    settings = PublisherSettings.resolve(settings, **overrides)
    infra = Infra(settings, topics=[ALERT_PUBLISHED, ALERT_FANOUT, DELIVERY_RECEIPT, DEAD_LETTER])
    repo = Repository(infra.db, serialize_writes=settings.mongodb_serialize_writes)
    relay = OutboxRelay(
        name="alert-published",
        collection=repo.alerts,
        producer=infra.producer,
        topic=ALERT_PUBLISHED,
        build=alert_event,
        poll_interval_s=settings.relay_poll_interval_s,
        batch_size=settings.relay_batch_size,
        relayed=metrics.ALERTS_RELAYED,
        lag=metrics.ALERT_RELAY_LAG,
        claims=infra.redis,
    )
    scheduler = Scheduler(
        redis=infra.redis,
        repo=repo,
        wake=relay.wake,
        interval_s=settings.schedule_poll_interval_s,
        default_duration_s=settings.default_duration_s,
    )
    register_handlers(infra, repo=repo)
    http = httpx.AsyncClient(timeout=httpx.Timeout(3.0))
    base = infra_lifespan(infra, prepare=[repo.ensure_indexes], relays=[relay])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with base(app):
            scheduler.start()
            try:
                yield
            finally:
                await scheduler.stop()
                await http.aclose()

    app = FastAPI(
        title="Sirene publisher",
        description="Alerts and posts by town-hall staff: staff console and API, four-eyes "
        "approval, scheduling, CAP 1.2; emits alert.published; live progress.",
        version="0.2.0",
        lifespan=lifespan,
    )
    app.state.ctx = Context(
        settings=settings,
        repo=repo,
        relay=relay,
        sessions=Sessions(infra.redis, ttl_s=settings.session_ttl_s),
        logins=LoginGuard(
            infra.redis, limit=settings.login_max_failures, window_s=settings.login_window_s
        ),
        http=http,
    )
    app.state.infra = infra
    app.include_router(ops_router(infra))
    app.include_router(router)
    app.include_router(staff_router)
    app.include_router(public_router)
    install_console(app, assets_dir=settings.assets_dir)
    install_error_handlers(app)
    return app
