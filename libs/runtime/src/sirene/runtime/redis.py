"""Redis wiring."""

from __future__ import annotations

from redis.asyncio import Redis

from .settings import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    """A pooled asyncio Redis client (bytes in, bytes out)."""
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=5,
        health_check_interval=30,
        client_name=settings.service_name,
    )
