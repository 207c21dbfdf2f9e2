"""Kafka consumers of the fanout: alerts to expand, and the profile stream behind the index."""

from __future__ import annotations

import asyncio
import contextlib
import logging

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
from sirene.schemas import ALERT_PUBLISHED, CITIZEN_PROFILE, AlertPublished, CitizenProfile, Lane

from .metrics import PROFILES_APPLIED
from .recipients import RecipientLog
from .repository import AudienceIndex
from .service import expand_alert
from .settings import FanoutSettings

log = logging.getLogger(__name__)


def register_alert_handlers(infra: Infra, settings: FanoutSettings, index: AudienceIndex) -> None:
    """Expands `alert.published` events in two consumer groups, one per lane, so an urgent
    warning never waits behind the expansion of a large bulk post. Each group reads every alert
    and expands only its lane's; poison messages are dead-lettered once (by the urgent group).
    An infrastructure failure raises, so the batch is redelivered (expansion is idempotent)."""
    for lane in Lane:
        _subscribe_lane(infra, settings, index, lane)


def _subscribe_lane(
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
                await expand_alert(
                    alert=alert,
                    index=index,
                    producer=infra.producer,
                    chunk_size=settings.chunk_size,
                    log_=RecipientLog(infra.redis, settings.index_prefix),
                )


class ProfileFollower:
    """Follows the compacted `citizen.profile` topic into the audience index.

    It uses no consumer group: every fanout instance reads all partitions from the offsets
    stored in Redis next to the index (written in the same transaction), so an index that
    Redis lost is rebuilt from the beginning of the compacted topic."""

    def __init__(self, infra: Infra, settings: FanoutSettings, index: AudienceIndex) -> None:
        self._infra = infra
        self._settings = settings
        self._index = index
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka,
            client_id=f"{self._settings.service_name}-profiles",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        partitions = await self._infra.producer.partitions_for(CITIZEN_PROFILE)
        self.partitions = [TopicPartition(CITIZEN_PROFILE, p) for p in partitions]
        consumer.assign(self.partitions)
        stored = await self._index.offsets()
        for tp in self.partitions:
            if tp.partition in stored:
                consumer.seek(tp, stored[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="profile-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def lag(self) -> int:
        """Profile records not yet applied to the index (0 = the index is current)."""
        if self._consumer is None:
            return -1
        ends = await self._consumer.end_offsets(self.partitions)
        stored = await self._index.offsets()
        return sum(max(0, end - stored.get(tp.partition, 0)) for tp, end in ends.items())

    async def _run(self) -> None:
        if self._consumer is None:
            raise RuntimeError("start() the follower first")
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
                for tp, records in batches.items():
                    await self._apply(tp, records)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis or Kafka trouble: nothing was recorded as applied, so re-read from
                # the stored offsets after a pause instead of skipping anything.
                log.exception("profile follower failed; re-reading from stored offsets")
                await asyncio.sleep(2)
                stored = await self._index.offsets()
                for tp in self.partitions:
                    if tp.partition in stored:
                        self._consumer.seek(tp, stored[tp.partition])
                    else:
                        await self._consumer.seek_to_beginning(tp)

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
        outcome = await self._index.apply(changes, {tp.partition: next_offset})
        for name, count in outcome.items():
            PROFILES_APPLIED.labels(outcome=name).inc(count)
