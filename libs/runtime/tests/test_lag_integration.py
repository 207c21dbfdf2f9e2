"""The consumer-lag gauges follow a real consumer group: records waiting behind a busy handler
show as lag, and the lag drops to zero once they are processed and committed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from sirene.devstack.testing import InfraUrls
from sirene.runtime import Infra, ServiceSettings
from sirene.runtime.lag import CONSUMER_LAG

pytestmark = pytest.mark.integration


async def _gauge_reaches(group: str, topic: str, value: float, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        current = CONSUMER_LAG.labels("lagtest", group, topic)._value.get()
        if current == value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"lag of {group}/{topic} is {current}, expected {value}")
        await asyncio.sleep(0.1)


async def test_lag_counts_unprocessed_records_until_committed(sirene_infra: InfraUrls) -> None:
    topic = f"test.lag.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=sirene_infra.kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    settings = ServiceSettings.model_validate(
        {"service_name": "lagtest", **sirene_infra.settings_kwargs()}
    )
    infra = Infra(settings, mongo=False, redis=False)
    infra.lag._interval_s = 0.2
    release = asyncio.Event()
    handled: list[int] = []

    @infra.broker.subscriber(
        topic,
        group_id=settings.group_id("lag"),
        auto_offset_reset="earliest",
        batch=True,
        max_records=1,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def handle(batch: list[int], message: KafkaMessage) -> None:
        await release.wait()  # a busy handler: nothing is committed until it returns
        handled.extend(batch)

    await infra.start()
    try:
        await infra.wait_until_assigned()
        for n in range(7):
            await infra.producer.send(topic, str(n).encode(), key=b"one-partition")
        group = settings.group_id("lag")
        await _gauge_reaches(group, topic, 7)  # the first record is in the handler, uncommitted
        release.set()
        await _gauge_reaches(group, topic, 0)
        assert sorted(handled) == list(range(7))
    finally:
        await infra.stop()
