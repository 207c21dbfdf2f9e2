"""Abuse limits in Redis: fixed-window counters per client address, phone number, number prefix,
e-mail address and tenant. Every SMS or call a registration would trigger costs money (and
every verification e-mail lands in someone's mailbox), so a request counts against every scope
before anything is sent, and the first exhausted scope refuses it (429).

Keys hold a hash of the counted value, never the phone number or address itself, and expire
with their window."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from sirene.runtime.errors import DomainError

from . import metrics
from .settings import Limit, RateLimits

KEY_PREFIX = "sub:rl:"


class RateLimitedError(DomainError):
    """Too many requests in one scope (429 with `Retry-After`)."""

    status_code = 429

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"rate_limited_{scope}", retry_after=retry_after)
        self.scope = scope
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Scope:
    """One counter: its name (metric label, message code), what it counts and its limit."""

    name: str
    value: str
    limit: Limit


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


def counter_key(namespace: str, scope: Scope, now: float) -> str:
    """Redis key of the scope's current window."""
    window = int(now // scope.limit.window_s)
    return (
        f"{KEY_PREFIX}{namespace}:{scope.name}:{scope.limit.window_s}:{window}:"
        f"{_digest(scope.value)}"
    )


def number_prefix(e164: str, cut: int) -> str:
    """The number range a number belongs to: E.164 without its last `cut` digits."""
    return e164[:-cut] if len(e164) > cut + 4 else e164


def registration_scopes(
    limits: RateLimits, *, tenant: str, ip: str, phone: str | None
) -> list[Scope]:
    """The scopes a registration (or login) that sends a code to `phone` counts against."""
    scopes = [Scope("ip", ip, limits.ip), Scope("tenant", tenant, limits.tenant)]
    if phone is not None:
        scopes.insert(1, Scope("number", phone, limits.number))
        scopes.insert(2, Scope("prefix", number_prefix(phone, limits.prefix_cut), limits.prefix))
    return scopes


def email_scopes(limits: RateLimits, *, tenant: str, ip: str, email: str) -> list[Scope]:
    """The scopes a verification e-mail counts against: the client address and the tenant
    (shared with phone registrations) and the e-mail address (case-insensitive)."""
    return [
        Scope("ip", ip, limits.ip),
        Scope("email", email.lower(), limits.email),
        Scope("tenant", tenant, limits.tenant),
    ]


class RateLimiter:
    """Counts requests in Redis. Contract: `hit(scopes)` increments every scope's counter in
    one round trip and raises `RateLimitedError` for the first one over its limit; nothing is
    sent or stored by the caller before `hit` returned."""

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self.redis = redis
        # Deployments (and test runs) that share a Redis keep their own counters.
        self.namespace = namespace

    async def hit(self, scopes: list[Scope]) -> None:
        now = time.time()
        keys = [counter_key(self.namespace, scope, now) for scope in scopes]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, scope in zip(keys, scopes, strict=True):
                pipe.incr(key)
                pipe.expire(key, scope.limit.window_s, nx=True)
            results = await pipe.execute()
        for index, scope in enumerate(scopes):
            count = int(results[2 * index])
            if count > scope.limit.count:
                metrics.RATE_LIMITED.labels(scope=scope.name).inc()
                window = scope.limit.window_s
                retry_after = max(1, int(window - now % window))
                raise RateLimitedError(scope.name, retry_after)

    async def forget(self, values: list[str]) -> int:
        """Deletes the counters of erased phone numbers, prefixes and e-mail addresses (GDPR
        erasure)."""
        digests = {_digest(v) for v in values}
        deleted = 0
        match = f"{KEY_PREFIX}{self.namespace}:*"
        async for key in self.redis.scan_iter(match=match, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name.rsplit(":", 1)[-1] in digests:
                deleted += await self.redis.delete(key)
        return deleted
