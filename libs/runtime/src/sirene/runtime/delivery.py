"""The delivery pipeline every channel worker (channel-sms, channel-voice, channel-push) runs on
a batch of tasks: decode (poison → dead-letter), drop expired tasks (receipt `expired`), claim
each task in Redis, hand the claimed ones to the provider with bounded concurrency, and emit all
receipts in one Kafka batch. Also the wiring around it: one subscriber per lane
(`register_task_handlers`, `delivery_worker`), the topics of a channel worker
(`delivery_topics`), its common settings (`ChannelSettings`) and its lifespan
(`worker_lifespan`).

This module is channel-agnostic: a worker supplies its channel, its provider name and a
`Deliver` function. Metrics are the shared `sirene_delivery_*` / `sirene_provider_*` /
`sirene_publish_*` collectors of `sirene.runtime.metric_defs`, labelled by `channel`.

Contract: `DeliveryPipeline.handle()` is called once per consumed batch. It returns after every
receipt of the batch is acknowledged by Kafka, so the offsets committed afterwards never run
ahead of the receipts. Each task's state lives in Redis under `sirene:dedup:<task_id>`:

- no key: never handed off (or released) — the worker takes a short *lease* (`SET NX`, `lease_s`)
  right before the provider call, so only tasks really about to be sent are held;
- `lease|…`: a hand-off is in flight (here or in another worker). The rest of the batch is
  processed, then the handler waits briefly and raises, so the batch is redelivered and the task
  looked at again; a lease left by a crashed worker expires after `lease_s` and the task is sent
  then — a task is never lost to a crash;
- `done|<status>|<ref>|<code>|<class>`: the provider took it or refused it for good (kept
  `dedup_ttl_s`). Redelivery never calls the provider again; it re-emits the stored receipt, so a
  receipt lost to a failed Kafka write is recovered.

A transient provider failure releases the key (a retry may claim it again) and emits a FAILED
receipt with error class `transient`. The one window for a second send is a crash between the
provider accepting a task and its `done` mark (at most `lease_s` later it is sent again)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from pydantic import Field
from redis.asyncio import Redis

from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    Channel,
    DeliveryReceipt,
    DeliveryTask,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
    utcnow,
)

from .consume import decode_records
from .infra import Infra
from .kafka import BatchProducer, dead_letter
from .metric_defs import (
    DELIVERY_HANDOFFS,
    DELIVERY_RECEIPTS,
    DELIVERY_SKIPPED,
    PROVIDER_REQUEST_SECONDS,
    PUBLISH_TO_HANDOFF_SECONDS,
)
from .settings import ServiceSettings

log = logging.getLogger(__name__)

DEDUP_PREFIX = "sirene:dedup:"


class ChannelSettings(ServiceSettings):
    """Settings every channel worker has. Subclasses set their own `env_prefix` and may
    override the defaults (e.g. fewer concurrent voice calls, more concurrent pushes)."""

    provider_concurrency: int = Field(
        default=64, ge=1, le=1000, description="Provider requests in flight per worker process."
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Tasks consumed per batch and lane."
    )
    dedup_ttl_s: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long a handed-off task's mark is kept."
    )
    lease_s: int = Field(
        default=60,
        ge=5,
        le=3600,
        description="How long an in-flight hand-off holds its task; a crashed worker's tasks "
        "are sent again after this.",
    )


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


def delivery_topics(channel: Channel) -> list[str]:
    """The topics a channel worker creates at start-up: its two lanes, receipts, dead letters."""
    return [*(delivery_topic(channel, lane) for lane in Lane), DELIVERY_RECEIPT, DEAD_LETTER]


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


def count_receipts(receipts: Sequence[DeliveryReceipt]) -> None:
    """Counts emitted receipts in `sirene_delivery_receipts_total`."""
    for receipt in receipts:
        DELIVERY_RECEIPTS.labels(
            channel=receipt.channel.value,
            status=receipt.status.value,
            error_class=receipt.error_class.value if receipt.error_class else "",
        ).inc()


async def emit_receipts(producer: BatchProducer, receipts: Sequence[DeliveryReceipt]) -> None:
    """Sends receipts to `delivery.receipt` (key: task id, so one big alert's receipts spread
    over every partition) and counts them. A batch goes through the batch path; a single
    receipt (a provider callback) through the lingering producer, which coalesces concurrent
    callbacks instead of sending one-record batches."""
    if not receipts:
        return
    if len(receipts) == 1:
        receipt = receipts[0]
        await producer.send(
            DELIVERY_RECEIPT, receipt.model_dump_json().encode(), receipt.task_id.encode()
        )
    else:
        await producer.send_many(
            DELIVERY_RECEIPT,
            [(r.task_id.encode(), r.model_dump_json().encode()) for r in receipts],
        )
    count_receipts(receipts)


LEASE = "lease"
DONE = "done"


def done_mark(outcome: Outcome) -> str:
    """The Redis value recording a final hand-off outcome."""
    return "|".join(
        (
            DONE,
            outcome.status.value,
            outcome.provider_ref or "",
            outcome.error_code or "",
            outcome.error_class.value if outcome.error_class else "",
            outcome.provider or "",
        )
    )


def outcome_of(mark: str) -> Outcome:
    """The outcome a `done` mark recorded."""
    _, status, ref, code, error_class, provider = (mark.split("|") + [""] * 6)[:6]
    return Outcome(
        ReceiptStatus(status),
        provider_ref=ref or None,
        error_code=code or None,
        error_class=ErrorClass(error_class) if error_class else None,
        detail="hand-off already recorded (redelivery)",
        provider=provider or None,
    )


async def task_states(redis: Redis, tasks: Sequence[DeliveryTask]) -> list[str | None]:
    """The dedup state of every task, in one round trip."""
    if not tasks:
        return []
    raw = await redis.mget([f"{DEDUP_PREFIX}{task.task_id}" for task in tasks])
    return [v.decode() if isinstance(v, bytes) else v for v in raw]


def is_final(outcome: Outcome) -> bool:
    """Whether a hand-off outcome ends the task (transient failures do not)."""
    return outcome.error_class is not ErrorClass.TRANSIENT


class TasksInFlightError(RuntimeError):
    """Some tasks of the batch are leased by an in-flight hand-off; redeliver the batch."""


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
        concurrency: int,
        dedup_ttl_s: int,
        lease_s: int = 60,
        in_flight_backoff_s: float = 1.0,
    ) -> None:
        self.channel = channel
        self.provider = provider
        self.service = service
        self.producer = producer
        self.redis = redis
        self.deliver = deliver
        self.dedup_ttl_s = dedup_ttl_s
        self.lease_s = lease_s
        self.in_flight_backoff_s = in_flight_backoff_s
        self._semaphore = asyncio.Semaphore(concurrency)
        # Expose the channel's latency series from the start (empty), not only after a send.
        for lane in Lane:
            PUBLISH_TO_HANDOFF_SECONDS.labels(channel.value, lane.value)
        for outcome in ("ok", "error"):
            PROVIDER_REQUEST_SECONDS.labels(channel.value, outcome)

    async def handle(self, msg: KafkaMessage, *, lane: Lane) -> None:
        """Processes one consumed batch (see the module docstring for the guarantees)."""
        decoded = await decode_records(
            msg, DeliveryTask, producer=self.producer, service=self.service
        )
        now = utcnow()
        receipts: list[DeliveryReceipt] = []
        live: list[DeliveryTask] = []
        seen: set[str] = set()  # the same task twice in one batch is handed off once
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
                DELIVERY_SKIPPED.labels(self.channel.value, lane.value, "expired").inc()
                receipts.append(
                    receipt_for(
                        task,
                        Outcome(ReceiptStatus.EXPIRED, detail="expired before hand-off"),
                        provider=self.provider,
                    )
                )
            elif task.task_id in seen:
                DELIVERY_SKIPPED.labels(self.channel.value, lane.value, "duplicate").inc()
            else:
                seen.add(task.task_id)
                live.append(task)

        candidates: list[DeliveryTask] = []
        in_flight = 0
        for task, state in zip(live, await task_states(self.redis, live), strict=True):
            if state is None:
                candidates.append(task)
            elif state.startswith(DONE):
                DELIVERY_SKIPPED.labels(self.channel.value, lane.value, "duplicate").inc()
                receipts.append(receipt_for(task, outcome_of(state), provider=self.provider))
            else:
                in_flight += 1

        leases = await self._lease(candidates)
        leased = [task for task, won in zip(candidates, leases, strict=True) if won]
        in_flight += len(candidates) - len(leased)
        try:
            handed = await asyncio.gather(*(self._hand_off(task, lane) for task in leased))
        except BaseException:
            # interrupted (shutdown): free the leases so the redelivery need not wait for them
            await self._release(leased, ignore_errors=True)
            raise
        settled = list(zip(leased, handed, strict=True))
        await self._settle(settled)
        receipts.extend(receipt_for(t, o, provider=self.provider) for t, o in settled)
        await emit_receipts(self.producer, receipts)
        if in_flight:
            log.info(
                "tasks in flight elsewhere; batch will be redelivered",
                extra={"channel": self.channel.value, "lane": lane.value, "count": in_flight},
            )
            await asyncio.sleep(self.in_flight_backoff_s)
            raise TasksInFlightError(f"{in_flight} task(s) of the batch are in flight")

    async def _lease(self, tasks: Sequence[DeliveryTask]) -> list[bool]:
        """Leases every task about to be handed off (`SET NX EX lease_s`), in one round trip;
        False where another worker holds it."""
        if not tasks:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for task in tasks:
                pipe.set(
                    f"{DEDUP_PREFIX}{task.task_id}",
                    f"{LEASE}|{task.attempt}",
                    nx=True,
                    ex=self.lease_s,
                )
            return [bool(won) for won in await pipe.execute()]

    async def _release(self, tasks: Sequence[DeliveryTask], *, ignore_errors: bool) -> None:
        """Drops the leases of tasks that were not handed off."""
        if not tasks:
            return
        try:
            await self.redis.delete(*(f"{DEDUP_PREFIX}{task.task_id}" for task in tasks))
        except Exception:
            if not ignore_errors:
                raise
            log.warning("could not release leases; they expire by themselves", exc_info=True)

    async def _settle(self, settled: Sequence[tuple[DeliveryTask, Outcome]]) -> None:
        """Marks final outcomes `done` and releases transiently failed tasks, in one round
        trip."""
        if not settled:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for task, outcome in settled:
                key = f"{DEDUP_PREFIX}{task.task_id}"
                if is_final(outcome):
                    pipe.set(key, done_mark(outcome), ex=self.dedup_ttl_s)
                else:
                    pipe.delete(key)
            await pipe.execute()

    async def _hand_off(self, task: DeliveryTask, lane: Lane) -> Outcome:
        """Hands one leased task to the provider (at most `concurrency` at once)."""
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
        PROVIDER_REQUEST_SECONDS.labels(self.channel.value, "error" if failed else "ok").observe(
            elapsed
        )
        DELIVERY_HANDOFFS.labels(
            self.channel.value,
            lane.value,
            outcome.status.value,
            outcome.error_class.value if outcome.error_class else "",
        ).inc()
        if not failed:
            PUBLISH_TO_HANDOFF_SECONDS.labels(self.channel.value, lane.value).observe(
                max(0.0, (utcnow() - task.published_at).total_seconds())
            )
        return outcome


def register_task_handlers(infra: Infra, pipeline: DeliveryPipeline, *, max_records: int) -> None:
    """Subscribes `delivery.<channel>.urgent` and `delivery.<channel>.bulk` with separate consumer
    groups (`<service>.urgent`, `<service>.bulk`), so urgent tasks never wait behind bulk ones.
    Batches, `NACK_ON_ERROR`: offsets are committed after `pipeline.handle()` returns."""
    for lane in Lane:
        _subscribe(infra, pipeline, lane, max_records=max_records)


def _subscribe(infra: Infra, pipeline: DeliveryPipeline, lane: Lane, *, max_records: int) -> None:
    @infra.broker.subscriber(
        delivery_topic(pipeline.channel, lane),
        group_id=infra.settings.group_id(lane.value),
        auto_offset_reset=infra.settings.kafka_offset_reset,
        batch=True,
        max_records=max_records,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_tasks(msg: KafkaMessage) -> None:
        await pipeline.handle(msg, lane=lane)


def delivery_worker(
    infra: Infra, settings: ChannelSettings, *, channel: Channel, provider: str, deliver: Deliver
) -> DeliveryPipeline:
    """Builds a channel worker's pipeline and registers its two lane subscribers on `infra`
    (call before `infra.start()`)."""
    pipeline = DeliveryPipeline(
        channel=channel,
        provider=provider,
        service=settings.service_name,
        producer=infra.producer,
        redis=infra.redis,
        deliver=deliver,
        concurrency=settings.provider_concurrency,
        dedup_ttl_s=settings.dedup_ttl_s,
        lease_s=settings.lease_s,
    )
    register_task_handlers(infra, pipeline, max_records=settings.batch_size)
    return pipeline


class ProviderClients(Protocol):
    """The provider clients of a worker (e.g. `sirene.runtime.twilio.TwilioClients`)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def worker_lifespan(
    infra: Infra, clients: ProviderClients
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A channel worker's lifespan: starts the provider clients inside the running event loop
    (their sessions belong to it), then `infra`; stops `infra` first, then the clients (also
    when start-up fails half-way)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await clients.start()
        try:
            await infra.start()
            try:
                yield
            finally:
                await infra.stop()
        finally:
            await clients.stop()

    return lifespan


__all__ = [
    "DEDUP_PREFIX",
    "ChannelSettings",
    "Deliver",
    "DeliveryPipeline",
    "Outcome",
    "ProviderClients",
    "TasksInFlightError",
    "count_receipts",
    "delivery_topics",
    "delivery_worker",
    "done_mark",
    "emit_receipts",
    "is_final",
    "outcome_of",
    "receipt_for",
    "register_task_handlers",
    "task_states",
    "worker_lifespan",
]
