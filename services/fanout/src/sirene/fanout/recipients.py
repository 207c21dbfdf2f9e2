"""Who an alert reached, so that its Update or Cancel (CAP `references`) reaches exactly them.

Layout: `<prefix>:rcpt:<tenant>:<alert id>` — a Redis set of the citizen ids that got at least
one task of the alert, kept until two days after the alert expires (Redis expiry; an Update
or Cancel of an expired alert has nobody left to warn). An alert that references another is
expanded over that set instead of its audience: citizens who subscribed since do not get a
correction of something they never received, and everyone who got the original gets it
(as long as they still have the channel; an erased citizen is gone)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

from redis.asyncio import Redis

from sirene.schemas import utcnow

from .repository import AudienceIndex, Recipient

KEEP_AFTER_EXPIRY = timedelta(days=2)


class RecipientLog:
    """Records and streams the recipients of each alert."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, tenant: str, alert_id: str) -> str:
        return f"{self._prefix}:rcpt:{tenant}:{alert_id}"

    async def record(
        self, tenant: str, alert_id: str, citizen_ids: Iterable[str], *, expires: datetime
    ) -> None:
        """Adds citizens to the alert's recipients (idempotent, one round trip)."""
        members = list(citizen_ids)
        if not members:
            return
        ttl = max(60, int((expires - utcnow() + KEEP_AFTER_EXPIRY).total_seconds()))
        key = self._key(tenant, alert_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(key, *members)
        pipe.expire(key, ttl)
        await pipe.execute()

    async def recipients(
        self, index: AudienceIndex, tenant: str, alert_id: str, *, chunk_size: int
    ) -> AsyncIterator[list[Recipient]]:
        """Streams the current profiles of the alert's recipients in chunks."""
        cursor = 0
        key = self._key(tenant, alert_id)
        while True:
            cursor, members = await self._redis.sscan(key, cursor, count=chunk_size)
            if members:
                ids = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
                yield await index.profiles(tenant, ids)
            if cursor == 0:
                break
