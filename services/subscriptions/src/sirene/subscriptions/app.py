"""Composition root of subscriptions: builds every client once and wires routes, consumers,
the profile outbox relay and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, infra_lifespan, ops_router
from sirene.runtime.outbox import OutboxRelay
from sirene.schemas import CITIZEN_PROFILE, DEAD_LETTER, DELIVERY_RECEIPT, SMS_INBOUND

from . import metrics
from .api import Context, install_error_handlers, portal_api, router
from .codes import Codes, EmailLinks
from .handlers import register_handlers
from .mailer import Mailer
from .portal import portal_router
from .ratelimit import RateLimiter
from .repository import Repository
from .selfservice import SelfService
from .service import profile_of
from .settings import SubscriptionsSettings
from .telephony import Telephony
from .webhooks import twilio_router


def create_app(settings: SubscriptionsSettings | None = None, **overrides: Any) -> FastAPI:
    """The subscriptions app. `overrides` replace settings fields (handy in tests)."""
    settings = SubscriptionsSettings.resolve(settings, **overrides)
    infra = Infra(settings, topics=[CITIZEN_PROFILE, DELIVERY_RECEIPT, SMS_INBOUND, DEAD_LETTER])
    repo = Repository(infra.db, serialize_writes=settings.mongodb_serialize_writes)
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
        after_sent=repo.delete_erased,
        claims=infra.redis,
    )
    telephony = Telephony(settings)
    selfservice = SelfService(
        settings=settings,
        repo=repo,
        wake=relay.wake,
        codes=Codes(infra.redis, secret=settings.link_secret, attempts=settings.code_attempts),
        limiter=RateLimiter(infra.redis, namespace=settings.mongodb_db),
        telephony=telephony,
        links=EmailLinks(infra.redis, secret=settings.link_secret),
        mailer=Mailer(settings),
    )
    register_handlers(infra, repo=repo, relay=relay, selfservice=selfservice)
    base_lifespan = infra_lifespan(
        infra, prepare=[repo.ensure_indexes, repo.sweep_erased], relays=[relay]
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await telephony.start()
        try:
            async with base_lifespan(app):
                yield
        finally:
            await telephony.stop()

    app = FastAPI(
        title="Sirene subscriptions",
        description="Citizens, topics, channels and contact points; publishes citizen.profile.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.ctx = Context(settings=settings, repo=repo, relay=relay, selfservice=selfservice)
    app.state.telephony = telephony
    app.state.infra = infra
    app.include_router(ops_router(infra))
    app.include_router(router)
    app.include_router(portal_api)
    app.include_router(twilio_router)
    app.include_router(portal_router)
    install_error_handlers(app)
    return app
