"""A token-bucket rate limiter in Redis, shared by every worker process that sends through the
same provider account (e.g. Twilio's 1 call/s per account, ~100 SMS segments/s per short code).

Contract: `await limiter.acquire(cost, priority)` returns once `cost` tokens were taken from the
bucket `sirene:ratelimit:<name>` (refilled at `rate_per_s`, holding at most `burst`). The bucket
lives in Redis, so N processes together never exceed the rate; the clock is Redis' own (`TIME`),
so the hosts' clocks do not matter.

Within a process, waiters queue locally by priority (0 = urgent first, FIFO among equals), so an
urgent warning never waits for tokens behind bulk hand-offs that asked first. One pump task per
limiter serves the queue: each Redis round trip asks for the costs of the waiters at the head
(as many as the bucket can hold) and grants the longest prefix the bucket can pay for, so one
round trip serves every token that accrued meanwhile, and a busy event loop does not turn into a
ceiling of one grant per loop turn. When the bucket is empty, the pump sleeps exactly until the
next waiter's cost will have accrued (or a more urgent waiter arrives): no busy polling.

A rate of 0 disables the limiter (`acquire` returns at once)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from redis.asyncio import Redis

from .metric_defs import RATE_LIMIT_WAIT_SECONDS

RATE_LIMIT_PREFIX = "sirene:ratelimit:"

# KEYS[1] bucket; ARGV: rate per second, burst, then the costs of the waiters in the order they
# are to be served. Grants the longest prefix the bucket can pay for; returns {granted count,
# µs until the first refused cost will have accrued (0 if all were granted)}. State: hash
# {tokens, ts (µs)}. Taking is all-or-nothing per cost, so several SMS segments are never split.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
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
for i = 3, #ARGV do
  local cost = tonumber(ARGV[i])
  if tokens >= cost then
    tokens = tokens - cost
    granted = granted + 1
  else
    wait = math.ceil((cost - tokens) * 1000000 / rate)
    break
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return {granted, wait}
"""

_MAX_BATCH = 256
"""At most this many waiters are offered to the bucket in one round trip."""


class RateLimiter:
    """A Redis token bucket with a local priority queue; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        *,
        rate_per_s: float,
        burst: float | None = None,
        priorities: int = 2,
    ) -> None:
        if rate_per_s < 0:
            raise ValueError("rate_per_s must be >= 0")
        self.redis = redis
        self.key = f"{RATE_LIMIT_PREFIX}{name}"
        self.rate_per_s = rate_per_s
        self.burst = max(1.0, burst if burst is not None else rate_per_s / 10)
        self.label = name.split(":", 1)[0][:40]
        self._script = redis.register_script(_TAKE)
        self._queues: list[deque[tuple[float, asyncio.Future[None]]]] = [
            deque() for _ in range(priorities)
        ]
        self._pump: asyncio.Task[None] | None = None
        # while the pump sleeps for the cost of the waiter at the head, a waiter of a more
        # urgent priority wakes it, so it is offered first instead of after that sleep
        self._sleeping_for: int | None = None
        self._overtaken = asyncio.Event()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def waiting(self, priority: int | None = None) -> int:
        """How many wait for tokens in this process (at one priority, or at all)."""
        queues = self._queues if priority is None else [self._queues[priority]]
        return sum(1 for q in queues for _, f in q if not f.done())

    async def _take(self, costs: list[float]) -> tuple[int, float]:
        granted, wait_us = await self._script(
            keys=[self.key],
            args=[repr(self.rate_per_s), repr(self.burst), *(repr(c) for c in costs)],
        )
        return int(granted), int(wait_us) / 1_000_000

    async def try_take(self, cost: float = 1.0) -> float:
        """Takes `cost` tokens if there are enough: 0.0; otherwise the seconds to wait before
        there will be (nothing is taken). Bypasses the local queue."""
        if cost > self.burst:
            raise ValueError(f"cost {cost} exceeds the bucket size {self.burst}")
        granted, wait = await self._take([cost])
        return 0.0 if granted else wait

    async def acquire(self, cost: float = 1.0, priority: int = 0) -> None:
        """Waits until `cost` tokens are taken; waiters of a lower `priority` number go first."""
        if not self.enabled:
            return
        cost = min(cost, self.burst)  # a message bigger than the bucket still goes, alone
        started = time.perf_counter()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append((cost, future))
        if self._sleeping_for is not None and priority < self._sleeping_for:
            self._overtaken.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._serve(), name=f"ratelimit:{self.label}")
        # A cancelled waiter stays queued as a done future; the pump drops it unserved.
        await future
        RATE_LIMIT_WAIT_SECONDS.labels(self.label).observe(time.perf_counter() - started)

    def _head(self) -> list[tuple[int, float, asyncio.Future[None]]]:
        """The waiters to offer the bucket, in serving order, as many as it could pay for."""
        batch: list[tuple[int, float, asyncio.Future[None]]] = []
        total = 0.0
        for index, queue in enumerate(self._queues):
            while queue and queue[0][1].done():
                queue.popleft()  # cancelled while waiting
            for cost, future in queue:
                if future.done():
                    continue
                if batch and (total + cost > self.burst or len(batch) >= _MAX_BATCH):
                    return batch
                batch.append((index, cost, future))
                total += cost
        return batch

    async def _serve(self) -> None:
        """The pump: grants queued waiters in priority order until none is left."""
        try:
            while batch := self._head():
                granted, wait = await self._take([cost for _, cost, _ in batch])
                for index, _, future in batch[:granted]:
                    queue = self._queues[index]
                    # only appends and the pump's own pops touch a queue, so a granted waiter
                    # is still at the head of its queue, behind nothing but cancelled ones
                    while queue[0][1] is not future:
                        queue.popleft()
                    queue.popleft()
                    if not future.done():
                        future.set_result(None)
                if granted < len(batch):
                    # sleep `wait`, or less if a more urgent waiter arrives (a timer on the
                    # event: no task per sleep, so the pump costs a loaded loop few turns)
                    self._sleeping_for = batch[granted][0]
                    self._overtaken.clear()
                    timer = asyncio.get_running_loop().call_later(wait, self._overtaken.set)
                    try:
                        await self._overtaken.wait()
                    finally:
                        timer.cancel()
                        self._sleeping_for = None
        except BaseException as exc:
            # Redis unreachable (or the pump cancelled): every waiter learns it, none hangs
            for queue in self._queues:
                while queue:
                    _, future = queue.popleft()
                    if not future.done():
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                        else:
                            future.cancel()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._pump = None
            self._sleeping_for = None

    async def close(self) -> None:
        """Stops the pump (waiters are cancelled)."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def reset(self) -> None:
        """Forgets the bucket's state (a full bucket next time)."""
        await self.redis.delete(self.key)


__all__ = ["RATE_LIMIT_PREFIX", "RateLimiter"]
