"""Unit tests of the priority semaphore the channel workers share between lanes."""

from __future__ import annotations

import asyncio

import pytest

from sirene.runtime.priority import LANE_PRIORITY, PrioritySemaphore
from sirene.schemas import Lane

URGENT, BULK = LANE_PRIORITY[Lane.URGENT], LANE_PRIORITY[Lane.BULK]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_freed_slot_goes_to_the_urgent_waiter_even_if_bulk_asked_first() -> None:
    sem = PrioritySemaphore(1)
    order: list[str] = []
    await sem.acquire(BULK)  # the slot is busy

    async def take(name: str, priority: int) -> None:
        async with sem.slot(priority):
            order.append(name)
            await asyncio.sleep(0)

    waiters = [asyncio.create_task(take(f"bulk-{i}", BULK)) for i in range(3)]
    await _settle()
    waiters.append(asyncio.create_task(take("urgent-0", URGENT)))
    waiters.append(asyncio.create_task(take("urgent-1", URGENT)))
    await _settle()
    assert sem.waiting(BULK) == 3
    assert sem.waiting(URGENT) == 2
    sem.release()
    await asyncio.gather(*waiters)
    assert order == ["urgent-0", "urgent-1", "bulk-0", "bulk-1", "bulk-2"]
    assert sem.waiting() == 0


async def test_slots_are_bounded_and_returned() -> None:
    sem = PrioritySemaphore(3)
    active = peak = 0

    async def work(priority: int) -> None:
        nonlocal active, peak
        async with sem.slot(priority):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.001)
            active -= 1

    await asyncio.gather(*(work(i % 2) for i in range(40)))
    assert peak == 3
    # all three slots are free again: three acquisitions succeed without waiting
    for _ in range(3):
        await asyncio.wait_for(sem.acquire(BULK), 0.1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sem.acquire(URGENT), 0.05)


async def test_a_cancelled_waiter_neither_blocks_others_nor_leaks_a_slot() -> None:
    sem = PrioritySemaphore(1)
    await sem.acquire(BULK)
    cancelled = asyncio.create_task(sem.acquire(URGENT))
    waiting = asyncio.create_task(sem.acquire(BULK))
    await _settle()
    cancelled.cancel()
    await _settle()
    sem.release()
    await asyncio.wait_for(waiting, 1)
    assert sem.waiting() == 0
    sem.release()
    await asyncio.wait_for(sem.acquire(URGENT), 0.1)  # the one slot is back
