"""Composition root of the publisher: builds every client once and wires routes, consumers,
the alert outbox relay and the lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan, ops_router
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import ALERT_FANOUT, ALERT_PUBLISHED, DEAD_LETTER, DELIVERY_RECEIPT

from . import metrics
from .api import Context, install_error_handlers, router
from .handlers import register_handlers
from .repository import Repository
from .service import alert_event
from .settings import PublisherSettings


def create_app(settings: PublisherSettings | None = None, **overrides: Any) -> FastAPI:
    """The publisher app. `overrides` replace settings fields (handy in tests)."""
    settings = PublisherSettings.resolve(settings, **overrides)
    infra = Infra(
        settings,
        topics=[ALERT_PUBLISHED, ALERT_FANOUT, DELIVERY_RECEIPT, DEAD_LETTER],
        redis=False,
    )
    repo = Repository(infra.db)
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
    )
    register_handlers(infra, repo=repo)

    app = FastAPI(
        title="Sirene publisher",
        description="Alerts and posts by town-hall staff; emits alert.published; live progress.",
        version="0.1.0",
        lifespan=infra_lifespan(infra, prepare=[repo.ensure_indexes], relays=[relay]),
    )
    app.state.ctx = Context(settings=settings, repo=repo, relay=relay)
    app.state.infra = infra
    app.include_router(ops_router(infra))
    app.include_router(router)
    install_error_handlers(app)
    return app
