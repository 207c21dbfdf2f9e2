"""Composition root of the fanout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from sirene.runtime import Infra, ops_router
from sirene.schemas import (
    ALERT_FANOUT,
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    DEAD_LETTER,
    Channel,
    Lane,
    delivery_topic,
    fanout_shard_topic,
)

from .api import index_router
from .estimate import estimate_router
from .handlers import ProfileFollower, QuietHoursReleaser, register_alert_handlers
from .notifications import TOPICS as NOTIFICATION_TOPICS
from .notifications import register_notification_handlers
from .repository import AudienceIndex
from .service import PriorityGate
from .settings import FanoutSettings

TOPICS = [
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    ALERT_FANOUT,
    DEAD_LETTER,
    *(fanout_shard_topic(lane) for lane in Lane),
    *(delivery_topic(c, lane) for c in Channel for lane in Lane),
]


def create_app(settings: FanoutSettings | None = None, **overrides: Any) -> FastAPI:
    """Builds the fanout: audience index, profile follower, alert planners and shard
    expanders per lane, ops endpoints."""
    settings = settings or FanoutSettings(**overrides)
    infra = Infra(settings, topics=[*TOPICS, *NOTIFICATION_TOPICS], mongo=False)
    index = AudienceIndex(
        infra.redis,
        settings.index_prefix,
        buckets=settings.index_buckets,
        lease_ms=int(settings.follower_lease_s * 1000),
    )
    follower = ProfileFollower(infra, settings, index)
    releaser = QuietHoursReleaser(infra, settings, index)
    gate = PriorityGate()
    register_alert_handlers(infra, settings, index, gate)
    register_notification_handlers(infra, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await infra.start()
        await follower.start()
        releaser.start()
        try:
            yield
        finally:
            await releaser.stop()
            await follower.stop()
            await infra.stop()

    app = FastAPI(title="Sirene fanout", lifespan=lifespan)
    app.include_router(ops_router(infra))
    app.include_router(index_router(follower))
    app.include_router(
        estimate_router(index, chunk_size=settings.chunk_size, token=settings.estimate_token)
    )
    app.state.infra = infra
    app.state.index = index
    app.state.gate = gate
    app.state.follower = follower
    app.state.releaser = releaser
    return app
