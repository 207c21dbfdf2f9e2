"""The delivery pipeline every channel worker runs on a batch of tasks: decode (poison →
dead-letter), drop expired tasks (receipt `expired`), claim each task in Redis, hand the claimed
ones to the provider with bounded concurrency, and emit all receipts in one Kafka batch.

This module is channel-agnostic and kept byte-identical in channel-sms, channel-voice and
channel-push (a test checks that) until it moves to `sirene.runtime`; services may not import
each other.

Contract: `DeliveryPipeline.handle()` is called once per consumed batch. It returns after every
receipt of the batch is acknowledged by Kafka, so the offsets committed afterwards never run
ahead of the receipts. A task whose claim already exists (redelivery after a crash or a
rebalance) is skipped: no second provider call, no second receipt. If Redis or Kafka fail, it
raises and the batch is consumed again; claimed tasks then stay claimed (at most one send)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from faststream.kafka import KafkaMessage
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis

from sirene.runtime import BatchProducer, dead_letter, decode_records
from sirene.schemas import (
    DELIVERY_RECEIPT,
    Channel,
    DeliveryReceipt,
    DeliveryTask,
    ErrorClass,
    Lane,
    ReceiptStatus,
    utcnow,
)

log = logging.getLogger(__name__)

DEDUP_PREFIX = "sirene:dedup:"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_END_TO_END_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the provider said about one hand-off."""

    status: ReceiptStatus
    provider_ref: str | None = None
    error_code: str | None = None
    error_class: ErrorClass | None = None
    detail: str | None = None
    provider: str | None = None
    """Overrides the pipeline's provider name (e.g. 'fcm' on the push channel)."""


Deliver = Callable[[DeliveryTask], Awaitable[Outcome]]
"""Hands one task to the provider. Must not raise for provider errors: it returns a FAILED
outcome with the error class instead (an exception is recorded as FAILED/TRANSIENT)."""


@dataclass(frozen=True, slots=True)
class ChannelMetrics:
    """Prometheus collectors of one channel worker. Labels are bounded: channel, lane, status,
    error_class, reason; never a number, token or text."""

    handoffs: Counter
    skipped: Counter
    receipts: Counter
    provider_seconds: Histogram
    publish_to_handoff_seconds: Histogram

    @classmethod
    def declare(cls, channel: Channel) -> ChannelMetrics:
        """Declares the collectors once per process (call from the service's `metrics.py`)."""
        prefix = f"sirene_{channel.value}"
        return cls(
            handoffs=Counter(
                f"{prefix}_handoffs_total",
                "Tasks handed to the provider, by lane, resulting status and error class.",
                ["channel", "lane", "status", "error_class"],
            ),
            skipped=Counter(
                f"{prefix}_tasks_skipped_total",
                "Tasks not handed to the provider: 'duplicate' (already claimed) or 'expired'.",
                ["channel", "lane", "reason"],
            ),
            receipts=Counter(
                f"{prefix}_receipts_total",
                "Receipts emitted to delivery.receipt (hand-offs and provider callbacks).",
                ["channel", "status", "error_class"],
            ),
            provider_seconds=Histogram(
                f"{prefix}_provider_request_seconds",
                "Duration of one provider API request, by outcome ('ok' or 'error').",
                ["channel", "outcome"],
                buckets=_LATENCY_BUCKETS,
            ),
            publish_to_handoff_seconds=Histogram(
                f"{prefix}_publish_to_handoff_seconds",
                "Time from the alert's publication to the provider accepting the task.",
                ["channel", "lane"],
                buckets=_END_TO_END_BUCKETS,
            ),
        )

    def count_receipts(self, receipts: Sequence[DeliveryReceipt]) -> None:
        for receipt in receipts:
            self.receipts.labels(
                channel=receipt.channel.value,
                status=receipt.status.value,
                error_class=receipt.error_class.value if receipt.error_class else "",
            ).inc()


def receipt_for(task: DeliveryTask, outcome: Outcome, *, provider: str) -> DeliveryReceipt:
    """The receipt of a task's hand-off (or expiry)."""
    return DeliveryReceipt(
        tenant_id=task.tenant_id,
        task_id=task.task_id,
        alert_id=task.alert_id,
        citizen_id=task.citizen_id,
        channel=task.channel,
        status=outcome.status,
        exercise=task.exercise,
        provider=outcome.provider or provider,
        provider_ref=outcome.provider_ref,
        error_code=outcome.error_code,
        error_class=outcome.error_class,
        detail=outcome.detail[:500] if outcome.detail else None,
        attempt=task.attempt,
        published_at=task.published_at,
    )


async def emit_receipts(
    producer: BatchProducer, metrics: ChannelMetrics, receipts: Sequence[DeliveryReceipt]
) -> None:
    """Sends receipts to `delivery.receipt` in one batch (key: alert id) and counts them."""
    if not receipts:
        return
    await producer.send_many(
        DELIVERY_RECEIPT,
        [(r.alert_id.encode(), r.model_dump_json().encode()) for r in receipts],
    )
    metrics.count_receipts(receipts)


async def claim(redis: Redis, tasks: Sequence[DeliveryTask], *, ttl_s: int) -> list[bool]:
    """`SET sirene:dedup:<task_id> <attempt> NX EX <ttl>` for every task in one round trip;
    True where this worker won the claim."""
    if not tasks:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for task in tasks:
            pipe.set(f"{DEDUP_PREFIX}{task.task_id}", task.attempt, nx=True, ex=ttl_s)
        results = await pipe.execute()
    return [bool(result) for result in results]


class DeliveryPipeline:
    """Runs batches of one channel's tasks through expiry, dedup, hand-off and receipts."""

    def __init__(
        self,
        *,
        channel: Channel,
        provider: str,
        service: str,
        producer: BatchProducer,
        redis: Redis,
        deliver: Deliver,
        metrics: ChannelMetrics,
        concurrency: int,
        dedup_ttl_s: int,
    ) -> None:
        self.channel = channel
        self.provider = provider
        self.service = service
        self.producer = producer
        self.redis = redis
        self.deliver = deliver
        self.metrics = metrics
        self.dedup_ttl_s = dedup_ttl_s
        self._semaphore = asyncio.Semaphore(concurrency)

    async def handle(self, msg: KafkaMessage, *, lane: Lane) -> None:
        """Processes one consumed batch (see the module docstring for the guarantees)."""
        decoded = await decode_records(
            msg, DeliveryTask, producer=self.producer, service=self.service
        )
        now = utcnow()
        receipts: list[DeliveryReceipt] = []
        live: list[DeliveryTask] = []
        for record, task in decoded:
            if task.channel != self.channel:
                await dead_letter(
                    self.producer,
                    service=self.service,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    reason=f"task for channel {task.channel.value} on a {self.channel.value} topic",
                )
            elif task.expires <= now:
                self.metrics.skipped.labels(self.channel.value, lane.value, "expired").inc()
                receipts.append(
                    receipt_for(
                        task,
                        Outcome(ReceiptStatus.EXPIRED, detail="expired before hand-off"),
                        provider=self.provider,
                    )
                )
            else:
                live.append(task)

        claims = await claim(self.redis, live, ttl_s=self.dedup_ttl_s)
        claimed = [task for task, won in zip(live, claims, strict=True) if won]
        duplicates = len(live) - len(claimed)
        if duplicates:
            self.metrics.skipped.labels(self.channel.value, lane.value, "duplicate").inc(duplicates)
            log.info(
                "skipped already claimed tasks",
                extra={"channel": self.channel.value, "lane": lane.value, "count": duplicates},
            )

        outcomes = await asyncio.gather(*(self._hand_off(task, lane) for task in claimed))
        receipts.extend(
            receipt_for(task, outcome, provider=self.provider)
            for task, outcome in zip(claimed, outcomes, strict=True)
        )
        await emit_receipts(self.producer, self.metrics, receipts)

    async def _hand_off(self, task: DeliveryTask, lane: Lane) -> Outcome:
        async with self._semaphore:
            started = time.perf_counter()
            try:
                outcome = await self.deliver(task)
            except Exception as exc:  # a provider-library bug must not lose the whole batch
                log.exception(
                    "provider hand-off raised",
                    extra={"channel": self.channel.value, "task_id": task.task_id},
                )
                outcome = Outcome(
                    ReceiptStatus.FAILED,
                    error_code=type(exc).__name__[:40],
                    error_class=ErrorClass.TRANSIENT,
                    detail="unexpected error during hand-off",
                )
            elapsed = time.perf_counter() - started
        failed = outcome.status is ReceiptStatus.FAILED
        self.metrics.provider_seconds.labels(
            self.channel.value, "error" if failed else "ok"
        ).observe(elapsed)
        self.metrics.handoffs.labels(
            self.channel.value,
            lane.value,
            outcome.status.value,
            outcome.error_class.value if outcome.error_class else "",
        ).inc()
        if not failed:
            self.metrics.publish_to_handoff_seconds.labels(self.channel.value, lane.value).observe(
                max(0.0, (utcnow() - task.published_at).total_seconds())
            )
        return outcome
