"""Redis wiring."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from .settings import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    """An asyncio Redis client (bytes in, bytes out) on a bounded pool that makes callers wait
    for a free connection instead of failing when many tasks use Redis at once."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        client_name=settings.service_name,
    )
    return Redis(connection_pool=pool)
