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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeAlias

from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from pydantic import Field
from redis.asyncio import Redis

from sirene.schemas import (
    DEAD_LETTER,
    DELIVERY_RECEIPT,
    RETRY_TIERS,
    Channel,
    DeliveryReceipt,
    DeliveryTask,
    ErrorClass,
    Lane,
    ReceiptStatus,
    delivery_topic,
    new_id,
    retry_topic,
    task_id_for,
    utcnow,
)

from .breaker import CircuitBreaker
from .consume import RawRecord, decode_records
from .infra import Infra
from .kafka import BatchProducer, dead_letter
from .metric_defs import (
    CIRCUIT_STATE,
    DEAD_LETTERS,
    DELIVERY_FALLBACKS,
    DELIVERY_GIVEN_UP,
    DELIVERY_HANDOFFS,
    DELIVERY_RECEIPTS,
    DELIVERY_RETRIES,
    DELIVERY_SKIPPED,
    PROVIDER_REQUEST_SECONDS,
    PUBLISH_TO_HANDOFF_SECONDS,
    RATE_LIMIT_WAIT_SECONDS,
)
from .priority import LANE_PRIORITY, PrioritySemaphore
from .ratelimit import RateLimiter
from .retry import (
    DEDUP_PREFIX,
    RETRY_MAX_POLL_INTERVAL_MS,
    Parked,
    RetryPolicy,
    dedup_key,
    parse_tiers,
    wait_until_due,
)
from .settings import ServiceSettings

log = logging.getLogger(__name__)


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
        "are reconciled with the provider (or sent again) after this.",
    )
    retry_max_attempts: int = Field(
        default=4, ge=1, le=20, description="Attempts per task (transient failures)."
    )
    retry_tiers: str = Field(
        default="10s,1m,10m",
        pattern=r"^(10s|1m|2m|10m)(,(10s|1m|2m|10m))*$",
        description="Retry tier after the 1st, 2nd, ... failed attempt (the last repeats).",
    )
    circuit_failure_threshold: int = Field(
        default=20, ge=1, description="Transient failures in a row that open the circuit."
    )
    circuit_open_s: float = Field(
        default=10.0, gt=0, description="How long an open circuit waits before probing."
    )
    rate_limit_per_s: float = Field(
        default=0.0,
        ge=0,
        description="Provider-account rate limit in units per second (SMS: segments, voice: "
        "calls); 0 = unlimited.",
    )
    rate_limit_burst: float | None = Field(
        default=None, gt=0, description="Bucket size (default a tenth of a second's rate, >= 1)."
    )
    fallback_tenants: str = Field(
        default="",
        description="Comma-separated tenants whose failed tasks fall back to SMS (push token "
        "gone → SMS to the task's fallback_address); '*' = all tenants.",
    )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts, tiers=parse_tiers(self.retry_tiers)
        )

    def fallback_enabled(self, tenant_id: str) -> bool:
        tenants = {t.strip() for t in self.fallback_tenants.split(",") if t.strip()}
        return "*" in tenants or tenant_id in tenants


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
    """The topics a channel worker creates at start-up: its two lanes, receipts, dead letters,
    its retry tiers and the SMS lanes (fallback target)."""
    return list(
        dict.fromkeys(
            [
                *(delivery_topic(channel, lane) for lane in Lane),
                DELIVERY_RECEIPT,
                DEAD_LETTER,
                *(retry_topic(channel, tier) for tier in RETRY_TIERS),
                *(delivery_topic(Channel.SMS, lane) for lane in Lane),
            ]
        )
    )


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
RETRY = "retry"


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
    raw = await redis.mget([dedup_key(task.task_id, task.attempt) for task in tasks])
    return [v.decode() if isinstance(v, bytes) else v for v in raw]


def is_final(outcome: Outcome) -> bool:
    """Whether a hand-off outcome ends the task (transient failures do not)."""
    return outcome.error_class is not ErrorClass.TRANSIENT


class TasksInFlightError(RuntimeError):
    """Some tasks of the batch are leased by an in-flight hand-off; redeliver the batch."""


Pair: TypeAlias = tuple[RawRecord, DeliveryTask]

Reconcile = Callable[[DeliveryTask, datetime], Awaitable[Outcome | None]]
"""Asks the provider whether it already took a task whose hand-off began at the given time
(before a crash); the outcome if so, None if not (the task is then sent)."""

Precheck = Callable[[Sequence[DeliveryTask]], Awaitable[list[Outcome | None]]]
"""Looks at the leased tasks of a batch at once before any is sent (e.g. push tokens known to
be gone), or prepares them in one round trip (e.g. the scripts of voice calls): an outcome for
a task that must not be sent, None for one that goes out. If it raises, the batch's leases are
released and the batch is redelivered."""

Fallback = Callable[[DeliveryTask, Outcome], DeliveryTask | None]
"""The task to send instead when a hand-off failed for good (e.g. push token gone → an SMS
task), or None."""


class DeliveryPipeline:
    """Runs batches of one channel's tasks through expiry, dedup, rate limit, circuit breaker,
    hand-off, retry/dead-letter/fallback and receipts."""

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
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        limiter: RateLimiter | None = None,
        cost: Callable[[DeliveryTask], float] | None = None,
        reconcile: Reconcile | None = None,
        fallback: Fallback | None = None,
        precheck: Precheck | None = None,
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
        self.retry = retry
        self.breaker = breaker
        self.limiter = limiter
        self.cost = cost
        self.reconcile = reconcile
        self.fallback = fallback
        self.precheck = precheck
        # urgent tasks (and their retries) take a freed provider slot before any bulk task
        self._slots = PrioritySemaphore(concurrency)
        # Expose the channel's latency series from the start (empty), not only after a send.
        for lane in Lane:
            PUBLISH_TO_HANDOFF_SECONDS.labels(channel.value, lane.value)
        for outcome in ("ok", "error"):
            PROVIDER_REQUEST_SECONDS.labels(channel.value, outcome)

    async def handle(self, msg: KafkaMessage, *, lane: Lane) -> None:
        """Processes one consumed batch of a lane (see the module docstring)."""
        decoded = await decode_records(
            msg, DeliveryTask, producer=self.producer, service=self.service
        )
        await self.process(decoded, label=lane.value)

    async def handle_retry(self, msg: KafkaMessage, *, tier: str) -> None:
        """Processes one consumed batch of a retry tier, once every record of it is due."""
        await wait_until_due(msg, tier)
        decoded = await decode_records(
            msg, DeliveryTask, producer=self.producer, service=self.service
        )
        await self.process(decoded, label=f"retry.{tier}")

    async def process(self, decoded: Sequence[Pair], *, label: str) -> None:
        """The pipeline after decoding; `label` names the lane or retry tier in logs."""
        now = utcnow()
        parked = Parked(self.channel, self.service)
        receipts: list[DeliveryReceipt] = []
        live: list[Pair] = []
        seen: set[str] = set()  # the same attempt of a task twice in one batch: handed off once
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
                DELIVERY_SKIPPED.labels(self.channel.value, task.lane.value, "expired").inc()
                receipts.append(
                    receipt_for(
                        task,
                        Outcome(ReceiptStatus.EXPIRED, detail="expired before hand-off"),
                        provider=self.provider,
                    )
                )
            elif (key := dedup_key(task.task_id, task.attempt)) in seen:
                DELIVERY_SKIPPED.labels(self.channel.value, task.lane.value, "duplicate").inc()
            else:
                seen.add(key)
                live.append((record, task))

        free: list[Pair] = []
        orphans: list[tuple[Pair, str]] = []
        in_flight = 0
        now_ms = int(time.time() * 1000)
        states = await task_states(self.redis, [task for _, task in live])
        for pair, state in zip(live, states, strict=True):
            task = pair[1]
            if state is None:
                free.append(pair)
            elif state.startswith(DONE):
                DELIVERY_SKIPPED.labels(self.channel.value, task.lane.value, "duplicate").inc()
                receipts.append(receipt_for(task, outcome_of(state), provider=self.provider))
            elif state.startswith(RETRY):
                # parked before a crash: park again (the next attempt dedups by its own key)
                DELIVERY_SKIPPED.labels(self.channel.value, task.lane.value, "duplicate").inc()
                parked.retry(self._next_attempt(task), state.split("|")[1], reason="transient")
            elif lease_expired(state, now_ms):
                orphans.append((pair, state))  # a crashed worker's hand-off
            else:
                in_flight += 1

        leased = await self._lease(free)
        taken = await self._take_over(orphans)
        in_flight += len(free) - len(leased) + len(orphans) - len(taken)
        recovered, to_send = await self._recover(taken)
        to_send.extend(leased)
        if self.precheck is not None and to_send:
            try:
                verdicts = await self.precheck([task for _, task in to_send])
            except BaseException:
                # nothing was sent: free the leases so the redelivery need not wait for them
                await self._release([task for _, task in to_send], ignore_errors=True)
                raise
            recovered.extend(
                (pair, verdict)
                for pair, verdict in zip(to_send, verdicts, strict=True)
                if verdict is not None
            )
            to_send = [
                pair for pair, verdict in zip(to_send, verdicts, strict=True) if verdict is None
            ]
        try:
            handed = await asyncio.gather(*(self._hand_off(task) for _, task in to_send))
        except BaseException:
            # interrupted (shutdown): free the leases so the redelivery need not wait for them
            await self._release([task for _, task in to_send], ignore_errors=True)
            raise
        settled = [*recovered, *zip(to_send, handed, strict=True)]
        await self._settle(settled, parked, receipts)
        await parked.flush(self.producer)
        await emit_receipts(self.producer, receipts)
        if in_flight:
            log.info(
                "tasks in flight elsewhere; batch will be redelivered",
                extra={"channel": self.channel.value, "lane": label, "count": in_flight},
            )
            await asyncio.sleep(self.in_flight_backoff_s)
            raise TasksInFlightError(f"{in_flight} task(s) of the batch are in flight")

    @staticmethod
    def _next_attempt(task: DeliveryTask) -> DeliveryTask:
        return task.model_copy(update={"attempt": task.attempt + 1, "event_id": new_id()})

    def _lease_value(self, task: DeliveryTask) -> str:
        now_ms = int(time.time() * 1000)
        return f"{LEASE}|{task.attempt}|{now_ms + self.lease_s * 1000}|{now_ms}"

    async def _lease(self, pairs: Sequence[Pair]) -> list[Pair]:
        """Leases every free task about to be handed off (`SET NX`), in one round trip; leaves
        out the ones another worker got first. The lease records when it ends and when the
        hand-off began; the key outlives it, so a crashed worker's lease stays recognisable."""
        if not pairs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, task in pairs:
                pipe.set(
                    dedup_key(task.task_id, task.attempt),
                    self._lease_value(task),
                    nx=True,
                    ex=self.dedup_ttl_s,
                )
            won = await pipe.execute()
        return [pair for pair, ok in zip(pairs, won, strict=True) if ok]

    async def _take_over(self, orphans: Sequence[tuple[Pair, str]]) -> list[tuple[Pair, str]]:
        """Takes over expired leases (compare-and-set, so only one worker wins each)."""
        if not orphans:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for (_, task), state in orphans:
                pipe.eval(
                    _TAKE_OVER,
                    1,
                    dedup_key(task.task_id, task.attempt),
                    state,
                    self._lease_value(task),
                    str(self.dedup_ttl_s),
                )
            won = await pipe.execute()
        return [orphan for orphan, ok in zip(orphans, won, strict=True) if int(ok)]

    async def _recover(
        self, taken: Sequence[tuple[Pair, str]]
    ) -> tuple[list[tuple[Pair, Outcome | None]], list[Pair]]:
        """Asks the provider (`reconcile`) about tasks whose hand-off began before a crash, so
        one the provider already took is recorded instead of sent a second time."""
        recovered: list[tuple[Pair, Outcome | None]] = []
        to_send: list[Pair] = []
        for pair, state in taken:
            found: Outcome | None = None
            if self.reconcile is not None:
                try:
                    found = await self.reconcile(pair[1], lease_started(state))
                except Exception:
                    log.warning(
                        "reconciliation with the provider failed; sending again",
                        extra={"channel": self.channel.value, "task_id": pair[1].task_id},
                        exc_info=True,
                    )
            if found is None:
                to_send.append(pair)
            else:
                DELIVERY_SKIPPED.labels(self.channel.value, pair[1].lane.value, "reconciled").inc()
                recovered.append((pair, found))
        return recovered, to_send

    async def _release(self, tasks: Sequence[DeliveryTask], *, ignore_errors: bool) -> None:
        """Drops the leases of tasks that were not handed off."""
        if not tasks:
            return
        try:
            await self.redis.delete(*(dedup_key(task.task_id, task.attempt) for task in tasks))
        except Exception:
            if not ignore_errors:
                raise
            log.warning("could not release leases; they expire by themselves", exc_info=True)

    async def _settle(
        self,
        settled: Sequence[tuple[Pair, Outcome | None]],
        parked: Parked,
        receipts: list[DeliveryReceipt],
    ) -> None:
        """Records every hand-off's result in Redis (one round trip) and decides what follows:
        a receipt; for a transient failure a retry tier, or giving up when attempts or time
        run out; for a permanent failure a dead letter and perhaps a fallback task. A task the
        circuit breaker held back (outcome None) waits on the circuit tier, attempt unspent."""
        if not settled:
            return
        now = utcnow()
        fallbacks: list[DeliveryTask] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for (record, task), outcome in settled:
                key = dedup_key(task.task_id, task.attempt)
                if outcome is None:  # held back by the open circuit
                    pipe.delete(key)
                    if self.retry is not None:
                        parked.retry(task, self.retry.circuit_tier, reason="circuit_open")
                    continue
                if is_final(outcome):
                    pipe.set(key, done_mark(outcome), ex=self.dedup_ttl_s)
                    receipts.append(receipt_for(task, outcome, provider=self.provider))
                    if outcome.status is ReceiptStatus.FAILED and self.retry is not None:
                        parked.give_up(
                            task,
                            reason_class=(outcome.error_class or ErrorClass.PERMANENT).value,
                            reason=failure_reason(outcome),
                            record=record,
                        )
                        other = self.fallback(task, outcome) if self.fallback else None
                        if other is not None:
                            fallbacks.append(other)
                    continue
                if self.retry is None:  # no retry tiers: the redelivered batch retries
                    pipe.delete(key)
                    receipts.append(receipt_for(task, outcome, provider=self.provider))
                    continue
                decision = self.retry_decision(task, now=now)
                if decision is None:
                    pipe.set(
                        key, f"{RETRY}|{self.retry.tier_after(task.attempt)}", ex=self.dedup_ttl_s
                    )
                    parked.retry(
                        self._next_attempt(task),
                        self.retry.tier_after(task.attempt),
                        reason="transient",
                    )
                    receipts.append(receipt_for(task, outcome, provider=self.provider))
                    continue
                status, reason_class, reason = decision
                final = replace(
                    outcome,
                    status=status,
                    detail=f"{reason}; last error: {outcome.error_code or outcome.detail or ''}",
                )
                pipe.set(key, done_mark(final), ex=self.dedup_ttl_s)
                receipts.append(receipt_for(task, final, provider=self.provider))
                parked.give_up(
                    task, reason_class=reason_class, reason=final.detail or reason, record=record
                )
            await pipe.execute()
        if fallbacks:
            await emit_fallbacks(self.producer, self.channel, fallbacks)

    def retry_decision(
        self, task: DeliveryTask, *, now: datetime
    ) -> tuple[ReceiptStatus, str, str] | None:
        """None if a transiently failed task gets another attempt; else the receipt status,
        reason class and reason of giving up."""
        if self.retry is None:
            return None
        if task.attempt >= self.retry.max_attempts:
            return (
                ReceiptStatus.FAILED,
                "attempts_exhausted",
                f"gave up after {task.attempt} attempt(s)",
            )
        delay = self.retry.delay_after(task.attempt)
        if now + timedelta(seconds=delay) >= task.expires:
            return (
                ReceiptStatus.EXPIRED,
                "expires_before_retry",
                f"alert expires before the next attempt (in {delay} s)",
            )
        return None

    async def _hand_off(self, task: DeliveryTask) -> Outcome | None:
        """Hands one leased task to the provider (at most `concurrency` at once), after the
        rate limiter let it through; None when the circuit breaker holds it back. Urgent tasks
        get a freed slot, and the next tokens, before bulk ones, whichever asked first."""
        async with self._slots.slot(LANE_PRIORITY[task.lane]):
            if self.breaker is not None and not self.breaker.allow():
                return None
            if self.limiter is not None:
                await self.limiter.acquire(
                    self.cost(task) if self.cost else 1.0, LANE_PRIORITY[task.lane]
                )
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
        if self.breaker is not None:
            self.breaker.record(outcome.error_class is not ErrorClass.TRANSIENT)
        failed = outcome.status is ReceiptStatus.FAILED
        PROVIDER_REQUEST_SECONDS.labels(self.channel.value, "error" if failed else "ok").observe(
            elapsed
        )
        DELIVERY_HANDOFFS.labels(
            self.channel.value,
            task.lane.value,
            outcome.status.value,
            outcome.error_class.value if outcome.error_class else "",
        ).inc()
        if not failed:
            PUBLISH_TO_HANDOFF_SECONDS.labels(self.channel.value, task.lane.value).observe(
                max(0.0, (utcnow() - task.published_at).total_seconds())
            )
        return outcome


async def emit_fallbacks(
    producer: BatchProducer, source: Channel, tasks: Sequence[DeliveryTask]
) -> None:
    """Sends re-routed tasks to their channel's lane topics (key: citizen id, like fanout)."""
    records = [
        (
            delivery_topic(task.channel, task.lane),
            task.citizen_id.encode(),
            task.model_dump_json().encode(),
        )
        for task in tasks
    ]
    await producer.send_grouped(records)
    for task in tasks:
        DELIVERY_FALLBACKS.labels(source.value, task.channel.value).inc()


def sms_fallback(task: DeliveryTask, *, body: str | None = None) -> DeliveryTask | None:
    """The SMS task that stands in for a failed task, if the task names the citizen's mobile."""
    if task.fallback_address is None or task.channel is Channel.SMS:
        return None
    text = body or (f"{task.title}: {task.body}" if task.title else task.body)
    return DeliveryTask(
        tenant_id=task.tenant_id,
        task_id=task_id_for(
            task.alert_id, task.citizen_id, Channel.SMS, f"fallback:{task.task_id}"
        ),
        alert_id=task.alert_id,
        citizen_id=task.citizen_id,
        channel=Channel.SMS,
        lane=task.lane,
        address=task.fallback_address,
        language=task.language,
        body=text,
        severity=task.severity,
        exercise=task.exercise,
        published_at=task.published_at,
        expires=task.expires,
    )


def failure_reason(outcome: Outcome) -> str:
    """The dead-letter reason of a failed hand-off, e.g. 'contact_dead failure 21211: ...'."""
    error_class = outcome.error_class.value if outcome.error_class else "permanent"
    return f"{error_class} failure {outcome.error_code or ''}: {outcome.detail or ''}".strip()


_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def lease_expired(state: str, now_ms: int) -> bool:
    """Whether a `lease|attempt|until_ms|started_ms` mark's lease has run out (a lease without
    an end, written by older workers, lasts as long as its key)."""
    parts = state.split("|")
    if parts[0] != LEASE or len(parts) < 3 or not parts[2].isdigit():
        return False
    return int(parts[2]) <= now_ms


def lease_started(state: str) -> datetime:
    """When the hand-off of a lease mark began (now, if the mark does not say)."""
    parts = state.split("|")
    if len(parts) >= 4 and parts[3].isdigit():
        return datetime.fromtimestamp(int(parts[3]) / 1000, tz=UTC)
    return utcnow()


def register_task_handlers(infra: Infra, pipeline: DeliveryPipeline, *, max_records: int) -> None:
    """Subscribes `delivery.<channel>.urgent` and `delivery.<channel>.bulk` with separate consumer
    groups (`<service>.urgent`, `<service>.bulk`), so urgent tasks never wait behind bulk ones,
    and each retry tier the pipeline's policy uses (`<service>.retry.<tier>`), so a task waiting
    10 minutes never holds up one waiting 10 seconds. Batches, `NACK_ON_ERROR`: offsets are
    committed after the handler returns."""
    for lane in Lane:
        _subscribe(infra, pipeline, lane, max_records=max_records)
    if pipeline.retry is not None:
        for tier in pipeline.retry.used_tiers():
            _subscribe_retry(infra, pipeline, tier, max_records=max_records)


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


def _subscribe_retry(
    infra: Infra, pipeline: DeliveryPipeline, tier: str, *, max_records: int
) -> None:
    @infra.broker.subscriber(
        retry_topic(pipeline.channel, tier),
        group_id=infra.settings.group_id(f"retry.{tier}"),
        auto_offset_reset=infra.settings.kafka_offset_reset,
        batch=True,
        max_records=max_records,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_poll_interval_ms=RETRY_MAX_POLL_INTERVAL_MS,
    )
    async def on_retries(msg: KafkaMessage) -> None:
        await pipeline.handle_retry(msg, tier=tier)


def delivery_worker(
    infra: Infra,
    settings: ChannelSettings,
    *,
    channel: Channel,
    provider: str,
    deliver: Deliver,
    rate_bucket: str | None = None,
    cost: Callable[[DeliveryTask], float] | None = None,
    reconcile: Reconcile | None = None,
    fallback: Fallback | None = None,
    precheck: Precheck | None = None,
) -> DeliveryPipeline:
    """Builds a channel worker's pipeline from its settings (retry policy, circuit breaker, rate
    limiter on the bucket `rate_bucket` — one per provider account) and registers its lane and
    retry-tier subscribers on `infra` (call before `infra.start()`)."""
    limiter = (
        RateLimiter(
            infra.redis,
            rate_bucket or f"{provider}:{settings.service_name}",
            rate_per_s=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
        )
        if settings.rate_limit_per_s > 0
        else None
    )
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
        retry=settings.retry_policy(),
        breaker=CircuitBreaker(
            channel=channel.value,
            provider=provider,
            failure_threshold=settings.circuit_failure_threshold,
            open_s=settings.circuit_open_s,
        ),
        limiter=limiter,
        cost=cost,
        reconcile=reconcile,
        fallback=_per_tenant(fallback, settings) if fallback else None,
        precheck=precheck,
    )
    register_task_handlers(infra, pipeline, max_records=settings.batch_size)
    _initialize_metrics(pipeline, infra.settings.service_name, limiter, fallback is not None)
    return pipeline


def _initialize_metrics(
    pipeline: DeliveryPipeline, service: str, limiter: RateLimiter | None, fallback: bool
) -> None:
    """Creates every known label set of the worker's metrics at zero, as Prometheus advises:
    a dashboard then shows "0 failures" instead of "no data", and `rate`/`increase` see the
    first failure as an increase from 0."""
    channel = pipeline.channel.value
    for lane in Lane:
        for error_class in ErrorClass:
            DELIVERY_HANDOFFS.labels(channel, lane.value, "failed", error_class.value)
        for reason in ("duplicate", "expired", "reconciled"):
            DELIVERY_SKIPPED.labels(channel, lane.value, reason)
        DEAD_LETTERS.labels(service=service, topic=delivery_topic(pipeline.channel, lane))
    if pipeline.retry is not None:
        for tier in {*pipeline.retry.tiers, pipeline.retry.circuit_tier}:
            for reason in ("transient", "circuit_open"):
                DELIVERY_RETRIES.labels(channel, tier, reason)
    if pipeline.breaker is not None:
        CIRCUIT_STATE.labels(channel, pipeline.provider).set(0)  # closed
    for error_class in ErrorClass:
        DELIVERY_RECEIPTS.labels(channel, ReceiptStatus.FAILED.value, error_class.value)
    DELIVERY_RECEIPTS.labels(channel, ReceiptStatus.EXPIRED.value, "")
    for reason in ("permanent", "contact_dead", "attempts_exhausted", "expires_before_retry"):
        DELIVERY_GIVEN_UP.labels(channel, reason)
    if limiter is not None:
        RATE_LIMIT_WAIT_SECONDS.labels(limiter.label)
    if fallback:
        DELIVERY_FALLBACKS.labels(channel, Channel.SMS.value)


def _per_tenant(fallback: Fallback, settings: ChannelSettings) -> Fallback:
    """`fallback`, only for the tenants that enabled it."""

    def guarded(task: DeliveryTask, outcome: Outcome) -> DeliveryTask | None:
        return fallback(task, outcome) if settings.fallback_enabled(task.tenant_id) else None

    return guarded


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
    "Fallback",
    "Outcome",
    "Precheck",
    "ProviderClients",
    "Reconcile",
    "TasksInFlightError",
    "count_receipts",
    "delivery_topics",
    "delivery_worker",
    "done_mark",
    "emit_fallbacks",
    "emit_receipts",
    "is_final",
    "lease_expired",
    "lease_started",
    "outcome_of",
    "receipt_for",
    "register_task_handlers",
    "sms_fallback",
    "task_states",
    "worker_lifespan",
]
