"""A token-bucket rate limiter in Redis, shared by every worker process that sends through the
same provider account (e.g. Twilio's 1 call/s per account, ~100 SMS segments/s per short code).

Contract: `await limiter.acquire(cost)` returns once `cost` tokens were taken from the bucket
`sirene:ratelimit:<name>` (refilled at `rate_per_s`, holding at most `burst`). The bucket lives in
Redis, so N processes together never exceed the rate; the clock is Redis' own (`TIME`), so the
hosts' clocks do not matter. One Redis round trip per grant; when the bucket is empty the caller
sleeps exactly until enough tokens will have accrued, so there is no busy polling.

A rate of 0 disables the limiter (`acquire` returns at once)."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from .metric_defs import RATE_LIMIT_WAIT_SECONDS

RATE_LIMIT_PREFIX = "sirene:ratelimit:"

# KEYS[1] bucket; ARGV: rate per second, burst, cost. Returns {granted (0/1), wait in µs}.
# State: hash {tokens, ts (µs)}. Taking is all-or-nothing, so a cost of several SMS segments
# is never split across grants.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed > 0 then
  tokens = math.min(burst, tokens + elapsed * rate / 1000000)
  ts = now
end
local granted = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  granted = 1
else
  wait = math.ceil((cost - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return {granted, wait}
"""


class RateLimiter:
    """A Redis token bucket; see the module docstring."""

    def __init__(
        self, redis: Redis, name: str, *, rate_per_s: float, burst: float | None = None
    ) -> None:
        if rate_per_s < 0:
            raise ValueError("rate_per_s must be >= 0")
        self.redis = redis
        self.key = f"{RATE_LIMIT_PREFIX}{name}"
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, burst if burst is not None else rate_per_s / 10)
        self.label = name.split(":", 1)[0][:40]
        self._script = redis.register_script(_TAKE)
        # Waiters queue locally first, so one process does not stampede Redis with every
        # waiting hand-off; grants stay first come, first served within the process.
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    async def try_take(self, cost: float = 1.0) -> float:
        """Takes `cost` tokens if there are enough: 0.0; otherwise the seconds to wait before
        there will be (nothing is taken)."""
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the bucket size {self.burst}")
        granted, wait_us = await self._script(
            keys=[self.key], args=[repr(self.rate_per_s), repr(self.burst), repr(cost)]
        )
        return 0.0 if int(granted) else int(wait_us) / 1_000_000

    async def acquire(self, cost: float = 1.0) -> None:
        """Waits until `cost` tokens are taken."""
        if not self.enabled:
            return
        cost = min(cost, self.burst)  # a message bigger than the bucket still goes, alone
        started = time.perf_counter()
        async with self._lock:
            while True:
                wait = await self.try_take(cost)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
        RATE_LIMIT_WAIT_SECONDS.labels(self.label).observe(time.perf_counter() - started)

    async def reset(self) -> None:
        """Forgets the bucket's state (a full bucket next time)."""
        await self.redis.delete(self.key)


__all__ = ["RATE_LIMIT_PREFIX", "RateLimiter"]
