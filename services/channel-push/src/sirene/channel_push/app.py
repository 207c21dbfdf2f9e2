"""Composition root of channel-push."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.runtime.delivery import (
    Outcome,
    delivery_topics,
    delivery_worker,
    sms_fallback,
    worker_lifespan,
)
from sirene.schemas import Channel, DeliveryTask, ErrorClass, ReceiptStatus

from .service import PROVIDER, PushClients
from .settings import ChannelPushSettings
from .tokens import GoneTokens

TOPICS = delivery_topics(Channel.PUSH)


def create_app(settings: ChannelPushSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the push worker: task consumers (both lanes), APNs and FCM clients."""
    settings = settings or ChannelPushSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    clients = PushClients(settings)  # started by the lifespan: aioapns binds to the running loop
    gone = GoneTokens(infra.redis, ttl_s=settings.gone_token_ttl_s)

    async def deliver(task: DeliveryTask) -> Outcome:
        outcome = await clients.deliver(task)
        if outcome.error_class is ErrorClass.CONTACT_DEAD:
            await gone.mark(task.address, outcome.error_code or "gone")
        return outcome

    def fallback(task: DeliveryTask, outcome: Outcome) -> DeliveryTask | None:
        # only a token that is gone for good; a malformed payload would fail as SMS too
        if (
            outcome.status is ReceiptStatus.FAILED
            and outcome.error_class is ErrorClass.CONTACT_DEAD
        ):
            return sms_fallback(task)
        return None

    pipeline = delivery_worker(
        infra,
        settings,
        channel=Channel.PUSH,
        provider=PROVIDER,
        deliver=deliver,
        fallback=fallback,
        precheck=gone.check,
    )
    app = FastAPI(title="Sirene channel-push", lifespan=worker_lifespan(infra, clients))
    app.include_router(ops_router(infra))
    app.state.infra = infra
    app.state.pipeline = pipeline
    app.state.clients = clients
    app.state.gone_tokens = gone
    return app
