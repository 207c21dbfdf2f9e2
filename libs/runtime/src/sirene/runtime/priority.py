"""A semaphore that serves its waiters by priority: the channel workers' provider concurrency is
shared by the urgent lane, the retry tiers and the bulk lane, and a warning must never queue
behind a newsletter's hand-offs that happened to ask first (GOV.UK Notify's lesson: a priority
queue that is not enforced where the work waits makes priority messages slower)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sirene.schemas import Lane

LANE_PRIORITY = {Lane.URGENT: 0, Lane.BULK: 1}
"""Lower goes first."""


class PrioritySemaphore:
    """`value` slots; a released slot goes to the waiter of the lowest priority number (FIFO
    among equals), never to a lower priority while a higher one waits. Single event loop."""

    def __init__(self, value: int, *, priorities: int = 2) -> None:
        if value < 1:
            raise ValueError("value must be at least 1")
        self._free = value
        self._waiters: list[deque[asyncio.Future[None]]] = [deque() for _ in range(priorities)]

    def waiting(self, priority: int | None = None) -> int:
        """How many wait (at one priority, or at all)."""
        queues = self._waiters if priority is None else [self._waiters[priority]]
        return sum(1 for q in queues for f in q if not f.done())

    async def acquire(self, priority: int) -> None:
        """Takes a slot, waiting behind every waiter of the same or a higher priority."""
        if self._free > 0 and not self.waiting():
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted in the same moment as cancelled: pass the slot on
            else:
                self._waiters[priority].remove(future)
            raise

    def release(self) -> None:
        """Gives a slot back: straight to the most urgent waiter, else to the pool."""
        for queue in self._waiters:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._free += 1

    @asynccontextmanager
    async def slot(self, priority: int) -> AsyncIterator[None]:
        """`async with sem.slot(priority):` — acquire and always release."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
