"""Retry tiers and the dead-letter path of the channel workers.

A task whose hand-off failed transiently is parked on a *retry tier* topic
(`delivery.<channel>.retry.<tier>`, tiers in `sirene.schemas.RETRY_TIERS`: 10 s, 1 min, 2 min,
10 min) with its `attempt` raised by one. The worker consumes its tier topics like its lanes; a
record is due at its Kafka timestamp plus the tier's delay, and the consumer waits for that
before handing the batch to the same `DeliveryPipeline`. Within one tier topic records are in
due order, so waiting for the head never delays a later one.

`RetryPolicy` says which tier follows which attempt and how many attempts a task gets. A task
is never retried past its alert's expiry: when the next attempt would start after `expires`,
the task is given up instead (receipt `expired`, dead letter with the reason). Permanent errors
and dead contacts are dead-lettered at once; exhausted attempts likewise. Every dead letter of a
task carries the task JSON as payload and a reason a human can act on.

Each attempt has its own dedup key (`dedup_key`), so attempt n+1 is claimed independently of
attempt n, while a redelivered record of the same attempt is still recognised."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from faststream.kafka import KafkaMessage

from sirene.schemas import (
    DEAD_LETTER,
    RETRY_TIERS,
    Channel,
    DeadLetter,
    DeliveryTask,
    retry_topic,
)

from .consume import RawRecord, records_of
from .kafka import BatchProducer
from .metric_defs import DEAD_LETTERS, DELIVERY_GIVEN_UP, DELIVERY_RETRIES

log = logging.getLogger(__name__)

DEDUP_PREFIX = "sirene:dedup:"


def dedup_key(task_id: str, attempt: int) -> str:
    """Redis key of one attempt of a task (attempt 1 keeps the plain task-id key)."""
    return f"{DEDUP_PREFIX}{task_id}" if attempt <= 1 else f"{DEDUP_PREFIX}{task_id}:{attempt}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per task and the tier after each failed attempt (the last tier repeats)."""

    max_attempts: int = 4
    tiers: tuple[str, ...] = ("10s", "1m", "10m")
    circuit_tier: str = "10s"
    """Where tasks wait while the provider's circuit is open (no attempt is spent)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        for tier in (*self.tiers, self.circuit_tier):
            if tier not in RETRY_TIERS:
                raise ValueError(f"unknown retry tier {tier!r}; known: {sorted(RETRY_TIERS)}")
        if not self.tiers:
            raise ValueError("at least one retry tier is needed")

    def tier_after(self, attempt: int) -> str:
        """The tier a task waits on after its attempt `attempt` failed."""
        return self.tiers[min(attempt, len(self.tiers)) - 1]

    def delay_after(self, attempt: int) -> int:
        return RETRY_TIERS[self.tier_after(attempt)]

    def used_tiers(self) -> list[str]:
        return sorted({*self.tiers, self.circuit_tier}, key=RETRY_TIERS.__getitem__)


def parse_tiers(value: str | Sequence[str]) -> tuple[str, ...]:
    """'10s,1m,10m' (or a list) → a tuple of tier names."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(item.strip() for item in items if item.strip())


@dataclass(slots=True)
class Parked:
    """Tasks to put on retry tiers and to dead-letter, collected while a batch is processed
    and written with one Kafka round trip per topic by `flush()`."""

    channel: Channel
    service: str
    retries: list[tuple[str, DeliveryTask, str]] = field(default_factory=list)
    letters: list[tuple[DeliveryTask, str, str, RawRecord | None]] = field(default_factory=list)

    def retry(self, task: DeliveryTask, tier: str, *, reason: str) -> None:
        """Park `task` (already carrying the attempt it will make) on `tier`."""
        self.retries.append((tier, task, reason))

    def give_up(
        self, task: DeliveryTask, *, reason_class: str, reason: str, record: RawRecord | None
    ) -> None:
        self.letters.append((task, reason_class, reason, record))

    async def flush(self, producer: BatchProducer) -> None:
        by_tier: dict[str, list[tuple[bytes | None, bytes]]] = {}
        for tier, task, reason in self.retries:
            by_tier.setdefault(tier, []).append(
                (task.task_id.encode(), task.model_dump_json().encode())
            )
            DELIVERY_RETRIES.labels(self.channel.value, tier, reason).inc()
        letters = [self._letter(task, reason, record) for task, _, reason, record in self.letters]
        await asyncio.gather(
            *(
                producer.send_many(retry_topic(self.channel, tier), records)
                for tier, records in by_tier.items()
            ),
            producer.send_many(
                DEAD_LETTER,
                [
                    (letter.source_topic.encode(), letter.model_dump_json().encode())
                    for letter in letters
                ],
            )
            if letters
            else asyncio.sleep(0),
        )
        for (task, reason_class, reason, _), letter in zip(self.letters, letters, strict=True):
            DELIVERY_GIVEN_UP.labels(self.channel.value, reason_class).inc()
            DEAD_LETTERS.labels(service=self.service, topic=letter.source_topic).inc()
            log.warning(
                "task dead-lettered",
                extra={
                    "channel": self.channel.value,
                    "task_id": task.task_id,
                    "attempt": task.attempt,
                    "reason": reason[:300],
                },
            )
        self.retries.clear()
        self.letters.clear()

    def _letter(self, task: DeliveryTask, reason: str, record: RawRecord | None) -> DeadLetter:
        return DeadLetter(
            tenant_id=task.tenant_id,
            service=self.service,
            source_topic=record.topic if record is not None else f"delivery.{self.channel.value}",
            partition=record.partition if record is not None else 0,
            offset=record.offset if record is not None else 0,
            key=task.task_id,
            payload=task.model_dump_json(),
            reason=reason[:2000],
        )


def due_at(record: RawRecord, tier: str) -> float:
    """When a record of a tier topic is due (epoch seconds)."""
    return float(record.timestamp) / 1000 + RETRY_TIERS[tier]


async def wait_until_due(msg: KafkaMessage, tier: str, *, clock: float | None = None) -> float:
    """Sleeps until every record of the batch is due; returns the seconds waited."""
    records = records_of(msg)
    if not records:
        return 0.0
    latest = max(due_at(record, tier) for record in records)
    wait = latest - (clock if clock is not None else time.time())
    if wait > 0:
        await asyncio.sleep(wait)
    return max(0.0, wait)


RETRY_MAX_POLL_INTERVAL_MS = (max(RETRY_TIERS.values()) + 300) * 1000
"""A retry-tier batch may wait up to the longest tier before it is handed off."""


__all__ = [
    "DEDUP_PREFIX",
    "RETRY_MAX_POLL_INTERVAL_MS",
    "Parked",
    "RetryPolicy",
    "dedup_key",
    "due_at",
    "parse_tiers",
    "wait_until_due",
]
