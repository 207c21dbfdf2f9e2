"""Composition root of channel-sms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from twilio.rest import Client

from sirene.runtime import Infra, ops_router
from sirene.runtime.twilio import create_twilio_client
from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    DeliveryTask,
    Lane,
    delivery_topic,
)

from .api import twilio_router
from .handlers import register_task_handlers
from .metrics import METRICS
from .pipeline import DeliveryPipeline, Outcome
from .service import PROVIDER, send_sms
from .settings import ChannelSmsSettings

TOPICS = [
    *(delivery_topic(Channel.SMS, lane) for lane in Lane),
    DELIVERY_RECEIPT,
    DEAD_LETTER,
]


def create_app(settings: ChannelSmsSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the SMS worker: task consumers (both lanes), Twilio client, status webhook."""
    settings = settings or ChannelSmsSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    twilio: dict[str, Client] = {}

    async def deliver(task: DeliveryTask) -> Outcome:
        return await send_sms(
            task, client=twilio["client"], sender=settings.twilio_from, public_url=settings.base_url
        )

    pipeline = DeliveryPipeline(
        channel=Channel.SMS,
        provider=PROVIDER,
        service=settings.service_name,
        producer=infra.producer,
        redis=infra.redis,
        deliver=deliver,
        metrics=METRICS,
        concurrency=settings.provider_concurrency,
        dedup_ttl_s=settings.dedup_ttl_s,
    )
    register_task_handlers(infra, pipeline, max_records=settings.batch_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The twilio HTTP client owns an aiohttp session, which belongs to the running loop.
        twilio["client"], http = create_twilio_client(settings)
        try:
            await infra.start()
            try:
                yield
            finally:
                await infra.stop()
        finally:
            await http.close()

    app = FastAPI(title="Sirene channel-sms", lifespan=lifespan)
    app.include_router(ops_router(infra))
    app.include_router(twilio_router(settings, infra.producer))
    app.state.infra = infra
    app.state.pipeline = pipeline
    return app
