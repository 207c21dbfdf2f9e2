"""Device tokens the provider declared gone (APNs 410 Unregistered / BadDeviceToken, FCM
UNREGISTERED), remembered in Redis so the next alert neither calls the provider for them again
nor waits for subscriptions to have deactivated the device: such a task fails at once as
`contact_dead` and, where the tenant enabled it, falls back to SMS.

Keys are `sirene:push:gone:<sha256(token)>` (no token in Redis key names), kept `ttl_s`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis

from sirene.runtime.delivery import Outcome
from sirene.schemas import DeliveryTask, ErrorClass, ReceiptStatus

GONE_PREFIX = "sirene:push:gone:"


def gone_key(token: str) -> str:
    return GONE_PREFIX + hashlib.sha256(token.encode()).hexdigest()


class GoneTokens:
    """See the module docstring."""

    def __init__(self, redis: Redis, *, ttl_s: int) -> None:
        self._redis = redis
        self._ttl_s = ttl_s

    async def mark(self, token: str, reason: str) -> None:
        await self._redis.set(gone_key(token), reason[:40], ex=self._ttl_s)

    async def forget(self, token: str) -> None:
        await self._redis.delete(gone_key(token))

    async def check(self, tasks: Sequence[DeliveryTask]) -> list[Outcome | None]:
        """One round trip for the batch: CONTACT_DEAD for a task whose token is gone."""
        if not tasks:
            return []
        marks = await self._redis.mget([gone_key(task.address) for task in tasks])
        return [
            None
            if mark is None
            else Outcome(
                ReceiptStatus.FAILED,
                error_code=(mark.decode() if isinstance(mark, bytes) else str(mark))[:40],
                error_class=ErrorClass.CONTACT_DEAD,
                detail="device token was reported gone earlier; not sent",
                provider="fcm"
                if task.push_platform and task.push_platform.value == "fcm"
                else None,
            )
            for task, mark in zip(tasks, marks, strict=True)
        ]
