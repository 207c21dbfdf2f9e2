"""Composition root of channel-email."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.runtime.delivery import Outcome, delivery_topics, delivery_worker, worker_lifespan
from sirene.schemas import Channel, DeliveryTask

from .api import unsubscribe_router
from .service import PROVIDER, SmtpPool, send_email
from .settings import ChannelEmailSettings

TOPICS = delivery_topics(Channel.EMAIL)


def create_app(settings: ChannelEmailSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the e-mail worker: task consumers (lanes and retry tiers), SMTP pool, the
    one-click unsubscribe endpoint."""
    settings = settings or ChannelEmailSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    pool = SmtpPool(settings)

    async def deliver(task: DeliveryTask) -> Outcome:
        return await send_email(task, pool=pool, settings=settings)

    pipeline = delivery_worker(
        infra,
        settings,
        channel=Channel.EMAIL,
        provider=PROVIDER,
        deliver=deliver,
        rate_bucket=f"smtp:{settings.smtp_host}:{settings.smtp_port}",
    )
    app = FastAPI(title="Sirene channel-email", lifespan=worker_lifespan(infra, pool))
    app.include_router(ops_router(infra))
    app.include_router(unsubscribe_router(settings, infra.producer))
    app.state.infra = infra
    app.state.pipeline = pipeline
    return app
