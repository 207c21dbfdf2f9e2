"""Composition root of channel-voice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.runtime.delivery import Outcome, delivery_topics, delivery_worker, worker_lifespan
from sirene.runtime.twilio import TwilioClients
from sirene.schemas import Channel, DeliveryTask

from .api import twilio_router
from .repository import ScriptStore
from .service import PROVIDER, place_call, store_scripts
from .settings import ChannelVoiceSettings

TOPICS = delivery_topics(Channel.VOICE)


def create_app(settings: ChannelVoiceSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the voice worker: task consumers (both lanes), Twilio client, call webhooks."""
    settings = settings or ChannelVoiceSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    scripts = ScriptStore(infra.redis)
    twilio = TwilioClients(settings)

    async def deliver(task: DeliveryTask) -> Outcome:
        return await place_call(
            task,
            client=twilio.client,
            sender=settings.twilio_from,
            public_url=settings.base_url,
            machine_detection=settings.machine_detection,
        )

    async def prepare(tasks: Sequence[DeliveryTask]) -> list[Outcome | None]:
        return await store_scripts(tasks, scripts=scripts, script_grace_s=settings.script_grace_s)

    pipeline = delivery_worker(
        infra,
        settings,
        channel=Channel.VOICE,
        provider=PROVIDER,
        deliver=deliver,
        rate_bucket=f"twilio-voice:{settings.twilio_account_sid}",
        precheck=prepare,
    )
    app = FastAPI(title="Sirene channel-voice", lifespan=worker_lifespan(infra, twilio))
    app.include_router(ops_router(infra))
    app.include_router(twilio_router(settings, infra.producer, scripts, pipeline))
    app.state.infra = infra
    app.state.pipeline = pipeline
    return app
