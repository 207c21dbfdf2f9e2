"""Composition root of channel-push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.schemas import DEAD_LETTER, DELIVERY_RECEIPT, Channel, Lane, delivery_topic

from .handlers import register_task_handlers
from .metrics import METRICS
from .pipeline import DeliveryPipeline
from .service import PROVIDER, PushClients
from .settings import ChannelPushSettings

TOPICS = [
    *(delivery_topic(Channel.PUSH, lane) for lane in Lane),
    DELIVERY_RECEIPT,
    DEAD_LETTER,
]


def create_app(settings: ChannelPushSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the push worker: task consumers (both lanes), APNs and FCM clients."""
    settings = settings or ChannelPushSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    clients = PushClients(settings)
    pipeline = DeliveryPipeline(
        channel=Channel.PUSH,
        provider=PROVIDER,
        service=settings.service_name,
        producer=infra.producer,
        redis=infra.redis,
        deliver=clients.deliver,
        metrics=METRICS,
        concurrency=settings.provider_concurrency,
        dedup_ttl_s=settings.dedup_ttl_s,
    )
    register_task_handlers(infra, pipeline, max_records=settings.batch_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await clients.start()  # aioapns binds its pool to the running loop
        try:
            await infra.start()
            try:
                yield
            finally:
                await infra.stop()
        finally:
            await clients.stop()

    app = FastAPI(title="Sirene channel-push", lifespan=lifespan)
    app.include_router(ops_router(infra))
    app.state.infra = infra
    app.state.pipeline = pipeline
    app.state.clients = clients
    return app
