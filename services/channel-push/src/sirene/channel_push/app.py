"""Composition root of channel-push."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.runtime.delivery import delivery_topics, delivery_worker, worker_lifespan
from sirene.schemas import Channel

from .service import PROVIDER, PushClients
from .settings import ChannelPushSettings

TOPICS = delivery_topics(Channel.PUSH)


def create_app(settings: ChannelPushSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the push worker: task consumers (both lanes), APNs and FCM clients."""
    settings = settings or ChannelPushSettings(**overrides)
    infra = Infra(settings, topics=TOPICS, mongo=False)
    clients = PushClients(settings)  # started by the lifespan: aioapns binds to the running loop
    pipeline = delivery_worker(
        infra, settings, channel=Channel.PUSH, provider=PROVIDER, deliver=clients.deliver
    )
    app = FastAPI(title="Sirene channel-push", lifespan=worker_lifespan(infra, clients))
    app.include_router(ops_router(infra))
    app.state.infra = infra
    app.state.pipeline = pipeline
    app.state.clients = clients
    return app
