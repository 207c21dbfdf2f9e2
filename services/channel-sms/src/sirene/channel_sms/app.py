"""Composition root of channel-sms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.runtime.delivery import Outcome, delivery_topics, delivery_worker, worker_lifespan
from sirene.runtime.twilio import TwilioClients
from sirene.schemas import Channel, DeliveryTask

from .api import twilio_router
from .inbound import INBOUND_TOPICS, inbound_router
from .service import PROVIDER, find_sent, send_sms, sms_cost
from .settings import ChannelSmsSettings

TOPICS = [*delivery_topics(Channel.SMS), *INBOUND_TOPICS]


def create_app(settings: ChannelSmsSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the SMS worker: task consumers (both lanes), Twilio client, status webhook."""
    settings = settings or ChannelSmsSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    twilio = TwilioClients(settings)

    async def deliver(task: DeliveryTask) -> Outcome:
        return await send_sms(
            task,
            client=twilio.client,
            sender=settings.sender_for(task.tenant_id),
            public_url=settings.base_url,
        )

    async def reconcile(task: DeliveryTask, started: datetime) -> Outcome | None:
        return await find_sent(task, started, client=twilio.client)

    pipeline = delivery_worker(
        infra,
        settings,
        channel=Channel.SMS,
        provider=PROVIDER,
        deliver=deliver,
        rate_bucket=f"twilio-sms:{settings.twilio_account_sid}",
        cost=sms_cost,
        reconcile=reconcile,
    )
    app = FastAPI(title="Sirene channel-sms", lifespan=worker_lifespan(infra, twilio))
    app.include_router(ops_router(infra))
    app.include_router(twilio_router(settings, infra.producer))
    app.include_router(inbound_router(settings, infra.producer))
    app.state.infra = infra
    app.state.pipeline = pipeline
    return app
