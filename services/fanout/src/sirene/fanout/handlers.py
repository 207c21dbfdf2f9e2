"""Kafka consumers of the fanout: alerts to expand, and the profile stream behind the index."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from sirene.runtime import (
    Infra,
    PoisonMessageError,
    dead_letter,
    decode,
    decode_records,
    records_of,
)
from sirene.schemas import (
    ALERT_PUBLISHED,
    CITIZEN_PROFILE,
    AlertPublished,
    CitizenProfile,
    FanoutShard,
    Lane,
    fanout_shard_topic,
)

from .metrics import FOLLOWER_LEADER, PROFILES_APPLIED
from .repository import AudienceIndex, LeaseLostError
from .service import PriorityGate, plan_alert, release_due, run_shard
from .settings import FanoutSettings

log = logging.getLogger(__name__)


def register_alert_handlers(
    infra: Infra, settings: FanoutSettings, index: AudienceIndex, gate: PriorityGate | None = None
) -> None:
    """Plans `alert.published` events and expands their shards, per lane in its own consumer
    groups (`alerts-<lane>`, `shards-<lane>`) on its own shard topic, so an urgent warning never
    waits behind a large bulk post. Poison alerts are dead-lettered once (by the urgent group).
    An infrastructure failure raises, so the batch is redelivered (both steps are idempotent)."""
    gate = gate or PriorityGate()
    for lane in Lane:
        _subscribe_alerts(infra, settings, index, lane)
        _subscribe_shards(infra, settings, index, lane, gate)


def _subscribe_alerts(
    infra: Infra, settings: FanoutSettings, index: AudienceIndex, lane: Lane
) -> None:
    @infra.broker.subscriber(
        ALERT_PUBLISHED,
        group_id=settings.group_id(f"alerts-{lane.value}"),
        auto_offset_reset=settings.kafka_offset_reset,
        batch=True,
        max_records=settings.alerts_per_batch,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_alerts(msg: KafkaMessage) -> None:
        if lane is Lane.URGENT:
            alerts = [
                alert
                for _record, alert in await decode_records(
                    msg, AlertPublished, producer=infra.producer, service=settings.service_name
                )
            ]
        else:
            alerts = []
            for record in records_of(msg):
                try:
                    alerts.append(decode(AlertPublished, record.value))
                except PoisonMessageError:
                    continue  # the urgent group dead-letters it
        for alert in alerts:
            if alert.lane is lane:
                await plan_alert(
                    alert=alert,
                    index=index,
                    producer=infra.producer,
                    per_shard=settings.shard_size,
                    run_ttl_s=settings.run_ttl_s,
                )


def _subscribe_shards(
    infra: Infra, settings: FanoutSettings, index: AudienceIndex, lane: Lane, gate: PriorityGate
) -> None:
    @infra.broker.subscriber(
        fanout_shard_topic(lane),
        group_id=settings.group_id(f"shards-{lane.value}"),
        auto_offset_reset=settings.kafka_offset_reset,
        batch=True,
        max_records=settings.shards_per_batch,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # a shard of a big alert keeps the loop busy; on a loaded machine a short session
        # would expire mid-shard and the rebalance would hand the shards out again
        session_timeout_ms=45_000,
        heartbeat_interval_ms=3_000,
    )
    async def on_shards(msg: KafkaMessage) -> None:
        shards = await decode_records(
            msg, FanoutShard, producer=infra.producer, service=settings.service_name
        )
        # the batch's shards are expanded together: while one waits for Redis or Kafka, the
        # others encode
        await asyncio.gather(
            *(
                run_shard(
                    task=task,
                    index=index,
                    producer=infra.producer,
                    chunk_size=settings.chunk_size,
                    max_in_flight=settings.chunks_in_flight,
                    run_ttl_s=settings.run_ttl_s,
                    gate=gate,
                    zone=settings.zone,
                )
                for _record, task in shards
            )
        )


class ProfileFollower:
    """Follows the compacted `citizen.profile` topic into the audience index.

    It uses no consumer group: it reads every partition from the offsets stored in Redis next
    to the index (written in the same transaction), so an index that Redis lost is rebuilt from
    the beginning of the compacted topic. Of several fanout instances sharing one index, only
    the holder of the follower lease writes (renewed every third of `follower_lease_s`; every
    write is fenced by it), the others stand by and take over when it lapses."""

    def __init__(self, infra: Infra, settings: FanoutSettings, index: AudienceIndex) -> None:
        self._infra = infra
        self._settings = settings
        self._index = index
        self._task: asyncio.Task[None] | None = None
        self._renewal: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._instance = f"{settings.service_name}-{uuid.uuid4().hex[:12]}"
        self._leading = False
        self._renewed_at = 0.0
        self.partitions: list[TopicPartition] = []

    @property
    def leading(self) -> bool:
        """Whether this instance currently writes the index."""
        return self._leading

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka,
            client_id=f"{self._settings.service_name}-profiles",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # bounded fetch buffers: a rebuild of a million profiles must not balloon memory
            fetch_max_bytes=8 * 1024 * 1024,
            max_partition_fetch_bytes=1024 * 1024,
        )
        await consumer.start()
        partitions = await self._infra.producer.partitions_for(CITIZEN_PROFILE)
        self.partitions = [TopicPartition(CITIZEN_PROFILE, p) for p in partitions]
        consumer.assign(self.partitions)
        self._consumer = consumer
        await self._lead()
        self._task = asyncio.create_task(self._run(), name="profile-follower")
        self._renewal = asyncio.create_task(self._renew(), name="profile-follower-lease")

    async def stop(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
        if self._leading:
            with contextlib.suppress(Exception):  # it lapses on its own if Redis is gone
                await self._index.release_lease(self._instance)
            self._leading = False
            FOLLOWER_LEADER.set(0)

    async def lag(self) -> int:
        """Profile records not yet applied to the index (0 = the index is current)."""
        if self._consumer is None:
            return -1
        ends = await self._consumer.end_offsets(self.partitions)
        stored = await self._index.offsets()
        return sum(max(0, end - stored.get(tp.partition, 0)) for tp, end in ends.items())

    async def _lead(self) -> bool:
        """Takes or renews the lease when due; on taking it, checks the index layout and
        positions the consumer at the stored offsets. Returns whether this instance leads."""
        now = time.monotonic()
        lease_ms = int(self._settings.follower_lease_s * 1000)
        if self._leading and now - self._renewed_at < self._settings.follower_lease_s / 3:
            return True
        held = await self._index.hold_lease(self._instance, lease_ms)
        if held and not self._leading:
            if await self._index.ensure_layout():
                log.warning("audience index layout changed; rebuilding from the profile topic")
            await self._seek_to_stored()
            log.info("following the profile topic into the audience index")
        self._leading = held
        self._renewed_at = now
        FOLLOWER_LEADER.set(1 if held else 0)
        return held

    async def _renew(self) -> None:
        """Renews a held lease on its own schedule, so a long index write (a rebuild under
        load) does not let it lapse."""
        lease_ms = int(self._settings.follower_lease_s * 1000)
        while True:
            await asyncio.sleep(self._settings.follower_lease_s / 3)
            if not self._leading:
                continue
            try:
                if await self._index.hold_lease(self._instance, lease_ms):
                    self._renewed_at = time.monotonic()
            except Exception:
                log.warning("could not renew the profile follower lease", exc_info=True)

    async def _seek_to_stored(self) -> None:
        if self._consumer is None:
            raise RuntimeError("start() the follower first")
        stored = await self._index.offsets()
        for tp in self.partitions:
            if tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)

    async def _run(self) -> None:
        if self._consumer is None:
            raise RuntimeError("start() the follower first")
        while True:
            try:
                if not await self._lead():
                    await asyncio.sleep(min(2.0, self._settings.follower_lease_s / 3))
                    continue
                batches = await self._consumer.getmany(timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    await self._apply(tp, records)
            except asyncio.CancelledError:
                raise
            except LeaseLostError:
                log.warning("lost the profile follower lease; standing by")
                self._leading = False
                FOLLOWER_LEADER.set(0)
            except Exception:
                # Redis or Kafka trouble: nothing was recorded as applied, so re-read from
                # the stored offsets after a pause instead of skipping anything.
                log.exception("profile follower failed; re-reading from stored offsets")
                await asyncio.sleep(2)
                with contextlib.suppress(Exception):
                    await self._seek_to_stored()

    async def _apply(self, tp: TopicPartition, records: list[object]) -> None:
        changes: list[tuple[str, str, CitizenProfile | None]] = []
        for record in records:
            key = record.key.decode() if record.key else ""  # type: ignore[attr-defined]
            tenant, _, citizen = key.partition(":")
            try:
                if not tenant or not citizen:
                    raise PoisonMessageError("key is not '<tenant_id>:<citizen_id>'")
                value = record.value  # type: ignore[attr-defined]
                profile = None if value is None else decode(CitizenProfile, value)
                if profile is not None and (
                    profile.tenant_id != tenant or profile.citizen_id != citizen
                ):
                    raise PoisonMessageError("key does not match the profile's tenant/citizen")
            except PoisonMessageError as exc:
                PROFILES_APPLIED.labels(outcome="dead_lettered").inc()
                await dead_letter(
                    self._infra.producer,
                    service=self._settings.service_name,
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=record.offset,  # type: ignore[attr-defined]
                    key=record.key,  # type: ignore[attr-defined]
                    value=record.value,  # type: ignore[attr-defined]
                    reason=str(exc),
                )
                continue
            changes.append((tenant, citizen, profile))
        next_offset = records[-1].offset + 1  # type: ignore[attr-defined]
        outcome = await self._index.apply(
            changes, {tp.partition: next_offset}, lease=self._instance
        )
        for name, count in outcome.items():
            PROFILES_APPLIED.labels(outcome=name).inc(count)


class QuietHoursReleaser:
    """Every `release_interval_s`, emits release shards for the citizens whose quiet hours
    have ended (`service.release_due`); every instance runs one, an entry is claimed by one."""

    def __init__(self, infra: Infra, settings: FanoutSettings, index: AudienceIndex) -> None:
        self._infra = infra
        self._settings = settings
        self._index = index
        self._instance = f"{settings.service_name}-{uuid.uuid4().hex[:12]}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="quiet-hours-releaser")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._settings.release_interval_s)
            try:
                await release_due(
                    index=self._index, producer=self._infra.producer, instance=self._instance
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("releasing held-back deliveries failed; trying again")
