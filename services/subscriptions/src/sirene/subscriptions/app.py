"""Composition root of subscriptions: builds every client once and wires routes, consumers,
the profile outbox relay and the lifespan."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan, ops_router
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import CITIZEN_PROFILE, DEAD_LETTER, DELIVERY_RECEIPT

from . import metrics
from .api import Context, install_error_handlers, router
from .handlers import register_handlers
from .repository import Repository
from .service import profile_of
from .settings import SubscriptionsSettings


def create_app(settings: SubscriptionsSettings | None = None, **overrides: Any) -> FastAPI:
    """The subscriptions app. `overrides` replace settings fields (handy in tests)."""
    settings = SubscriptionsSettings.resolve(settings, **overrides)
    infra = Infra(settings, topics=[CITIZEN_PROFILE, DELIVERY_RECEIPT, DEAD_LETTER], redis=False)
    repo = Repository(infra.db)
    relay = OutboxRelay(
        name="citizen-profile",
        collection=repo.citizens,
        producer=infra.producer,
        topic=CITIZEN_PROFILE,
        build=profile_of,
        poll_interval_s=settings.relay_poll_interval_s,
        batch_size=settings.relay_batch_size,
        relayed=metrics.PROFILES_RELAYED,
        lag=metrics.PROFILE_RELAY_LAG,
    )
    register_handlers(infra, repo=repo, relay=relay)

    app = FastAPI(
        title="Sirene subscriptions",
        description="Citizens, topics, channels and contact points; publishes citizen.profile.",
        version="0.1.0",
        lifespan=infra_lifespan(infra, prepare=[repo.ensure_indexes], relays=[relay]),
    )
    app.state.ctx = Context(settings=settings, repo=repo, relay=relay)
    app.state.infra = infra
    app.include_router(ops_router(infra))
    app.include_router(router)
    install_error_handlers(app)
    return app
