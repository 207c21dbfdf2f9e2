"""Abuse limits of the public endpoints: fixed-window counters in Redis, per client IP and per
contact (hashed: no address or IP is stored in clear)."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis


def fingerprint(value: str) -> str:
    """A short, non-reversible key part for an IP address or a contact."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:20]


class Limiter:
    """Counts events per key and window; `hit` says whether one more is allowed."""

    def __init__(self, redis: Redis, prefix: str = "sirene:issues:rl") -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, scope: str, subject: str, *, limit: int, window_s: int) -> int | None:
        """Counts one event of `subject` in `scope`; returns None if within `limit` per
        `window_s`, else the seconds until the window ends (for Retry-After)."""
        key = f"{self._prefix}:{scope}:{fingerprint(subject)}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        if int(count) > limit:
            return max(1, int(ttl))
        return None
